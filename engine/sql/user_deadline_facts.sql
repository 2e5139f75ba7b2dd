-- Purpose: every IMI user with what the user rules depend on: RET-USER-BLOCK and
--          RET-USER-DELETE (after deactivation), USR-RIGHTS (access rights outside the
--          authority's areas) and USR-DORMANT (the last granted login).
-- Inputs:  users, authorities, access_log.
-- Params:  $1 the check's instant: logins after it are not yet known.
-- Outputs: the columns of `users`, then authority_state and authority_domains (the member
--          state and areas of competence of the user's authority) and last_login (the last
--          granted login at or before $1, null when none).
-- Plan:    the logins are grouped by the user's number before meeting the users, so the
--          join sees one row per user who ever logged in.
WITH logins AS (
  SELECT user_key, MAX(ts) AS last_login
  FROM access_log
  WHERE action = 'login' AND outcome = 'granted' AND ts <= $1
  GROUP BY user_key
)
SELECT
  u.* EXCLUDE (user_key, authority_key),
  a.member_state AS authority_state,
  a.domains AS authority_domains,
  l.last_login
FROM users u
LEFT JOIN authorities a ON a.authority_key = u.authority_key
LEFT JOIN logins l ON l.user_key = u.user_key
