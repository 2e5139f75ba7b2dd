-- Purpose: the data-subject requests as the dashboard and the reports show them (Regulation
--          2018/1725 Arts. 14, 17-24; IMI Art. 19).
-- Inputs:  dsr_requests, authorities.
-- Outputs: every column of a request, and member_state, its controller's ('' when unknown);
--          in the order of receipt.
SELECT r.*,
       coalesce(a.member_state, '') AS member_state
FROM dsr_requests r
LEFT JOIN authorities a ON a.authority_id = r.controller_id
ORDER BY r.received_at, r.request_id
