-- Purpose: the member state of every authority (a controller's, an actor's).
-- Inputs:  authorities.
-- Outputs: authority_id, member_state.
SELECT authority_id,
       member_state
FROM authorities
ORDER BY authority_id
