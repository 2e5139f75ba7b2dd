-- Purpose: data-subject requests with their controller's member state, whose calendar and
--          time zone count for their deadlines (DSR-* rules).
-- Inputs:  dsr_requests, authorities.
-- Outputs: the columns of `dsr_requests`, then controller_state.
SELECT t.*, a.member_state AS controller_state
FROM dsr_requests t
LEFT JOIN authorities a ON a.authority_id = t.controller_id
