-- Purpose: every case with what its deadlines depend on, for the deadline rules
--          (policies/rules/deadline/): its own columns, its domain's retention period, basis
--          for special categories and repository, the member state of the requesting
--          authority, and every responding participant known then (who must answer, and in
--          whose legal time, is decided per responder by the check: RT-LATE).
-- Inputs:  cases, domains, authorities, case_participants.
-- Params:  $1 the check's instant: a responding participant who joined after it is not yet
--          known then, so it cannot be one that must answer.
-- Outputs: one row per case: the columns of `cases`, then domain_retention_months,
--          special_categories_basis, domain_repository, requester_state, and `responders`,
--          a list of {authority_id, member_state, joined_at, left_at} (null when none).
-- Plan:    cases meet their participants and requesting authority by number (`case_key`,
--          `requesting_key`), not by text.
WITH responders AS (
  SELECT
    p.case_key,
    array_agg(named_struct(
      'authority_id', a.authority_id,
      'member_state', a.member_state,
      'joined_at', p.joined_at,
      'left_at', p.left_at
    ) ORDER BY a.authority_id, p.joined_at) AS responders
  FROM case_participants p
  JOIN authorities a ON a.authority_key = p.authority_key
  WHERE p.role = 'responding' AND p.joined_at <= $1
  GROUP BY p.case_key
)
SELECT
  c.* EXCLUDE (case_key, requesting_key),
  d.retention_months AS domain_retention_months,
  d.special_categories_basis,
  d.repository AS domain_repository,
  ra.member_state AS requester_state,
  r.responders
FROM cases c
LEFT JOIN domains d ON d.domain = c.domain
LEFT JOIN authorities ra ON ra.authority_key = c.requesting_key
LEFT JOIN responders r ON r.case_key = c.case_key
