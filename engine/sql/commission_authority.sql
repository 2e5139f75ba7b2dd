-- Purpose: the Commission's authority (the first of kind `commission` by identifier), whose
--          DPO reads the report to the EDPS.
-- Inputs:  authorities.
-- Outputs: authority_id; no row when the store has no Commission authority.
SELECT authority_id
FROM authorities
WHERE kind = 'commission'
ORDER BY authority_id
LIMIT 1
