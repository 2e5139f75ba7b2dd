-- Purpose: the use of IMI in one year (IMI Art. 25(1)): cases created, by domain, procedure
--          and member state of the requesting authority.
-- Inputs:  cases, authorities; parameter $1 the year (of `created_at`, UTC).
-- Outputs: domain, procedure, member_state, cases.
SELECT c.domain,
       c.procedure,
       a.member_state,
       count(*) AS cases
FROM cases c
JOIN authorities a ON a.authority_id = c.requesting_authority
WHERE date_part('year', c.created_at) = $1
GROUP BY c.domain, c.procedure, a.member_state
ORDER BY c.domain, c.procedure, a.member_state
