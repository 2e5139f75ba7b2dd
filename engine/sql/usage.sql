-- Purpose: the use of IMI in one period (IMI Art. 25(1)): cases created, by domain, procedure
--          and member state of the requesting authority.
-- Inputs:  cases, authorities; parameters $1 and $2, the half-open period [from, to) of
--          `created_at` (a report's year runs from 00:00 Brussels on 1 January).
-- Outputs: domain, procedure, member_state, cases.
SELECT c.domain,
       c.procedure,
       a.member_state,
       count(*) AS cases
FROM cases c
JOIN authorities a ON a.authority_id = c.requesting_authority
WHERE c.created_at >= $1 AND c.created_at < $2
GROUP BY c.domain, c.procedure, a.member_state
ORDER BY c.domain, c.procedure, a.member_state
