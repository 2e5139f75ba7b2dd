-- Purpose: breaches with their controller's member state, whose calendar and time zone
--          count for their deadlines (BRE-* rules).
-- Inputs:  breaches, authorities.
-- Outputs: the columns of `breaches`, then controller_state.
SELECT t.*, a.member_state AS controller_state
FROM breaches t
LEFT JOIN authorities a ON a.authority_id = t.controller_id
