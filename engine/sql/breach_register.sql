-- Purpose: the breach register as the dashboard and the reports show it (Regulation
--          2018/1725 Arts. 34, 35).
-- Inputs:  breaches, authorities.
-- Outputs: every column of a breach, and member_state, its controller's ('' when unknown);
--          in the order of awareness.
SELECT b.*,
       coalesce(a.member_state, '') AS member_state
FROM breaches b
LEFT JOIN authorities a ON a.authority_id = b.controller_id
ORDER BY b.aware_at, b.breach_id
