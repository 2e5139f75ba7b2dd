-- Purpose: every case with what its deadlines depend on, for the deadline rules
--          (policies/rules/deadline/): its own columns, its domain's retention period and
--          basis for special categories, and the member states of the requesting and the
--          responding authority (whose calendars and time zones count).
-- Inputs:  cases, domains, authorities, case_participants.
-- Params:  $1 the check's instant: a responding participant who joined after it is not yet
--          known then, so it cannot be the one that must answer.
-- Outputs: one row per case: the columns of `cases`, then domain_retention_months,
--          special_categories_basis, requester_state, responder, responder_state.
-- Plan:    cases meet their participants and requesting authority by number (`case_key`,
--          `requesting_key`), not by text.
-- Note:    where a case names several responding authorities, the first by identifier is
--          taken as the one that must answer.
WITH responder AS (
  SELECT case_key, MIN(authority_id) AS authority_id
  FROM case_participants
  WHERE role = 'responding' AND joined_at <= $1
  GROUP BY case_key
)
SELECT
  c.* EXCLUDE (case_key, requesting_key),
  d.retention_months AS domain_retention_months,
  d.special_categories_basis,
  ra.member_state AS requester_state,
  r.authority_id AS responder,
  pa.member_state AS responder_state
FROM cases c
LEFT JOIN domains d ON d.domain = c.domain
LEFT JOIN authorities ra ON ra.authority_key = c.requesting_key
LEFT JOIN responder r ON r.case_key = c.case_key
LEFT JOIN authorities pa ON pa.authority_id = r.authority_id
