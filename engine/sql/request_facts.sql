-- Purpose: the facts every Scoreboard indicator and benchmark is computed from: one row per
--          `request` case sent in the years asked, in the domains asked, with its responding
--          authority (the first `responding` participant by id) and the
--          durations the Scoreboard measures. A request nobody was asked to answer (no
--          `responding` participant) was received by no one and is left out.
-- Inputs:  cases, case_participants, authorities; parameters
--          $1 first year and $2 last year (of `sent_at` in Brussels time: the Commission's
--          reports count a year from 00:00 Brussels on 1 January);
--          $3 the domains counted (list of text);
--          $4 true: answer days counted from acceptance; false: from sending (Scoreboard);
--          $5 true: "by the agreed date" means by 24:00 of the agreed day in the responding
--             authority's legal time (as RT-LATE); false: by the agreed instant itself;
--          $6 the as-of instant: an unanswered request is late once its agreed day ended
--             before it.
-- Outputs: case_id, year, domain, authority_id, member_state, accept_days, answer_days
--          (fractional days, null when not accepted / answered), accepted_in_7_days, has_due,
--          answered_on_time (null without an agreed date), late, rating_timeliness,
--          rating_effort.
WITH responders AS (
    SELECT case_id, min(authority_id) AS authority_id
    FROM case_participants
    WHERE role = 'responding'
    GROUP BY case_id
),
requests AS (
    SELECT c.case_id,
           local_year(c.sent_at, 'EU') AS year,
           c.domain,
           r.authority_id,
           a.member_state,
           c.sent_at,
           c.accepted_at,
           c.answered_at,
           CASE WHEN $5 THEN end_of_local_day(c.due_at, a.member_state) ELSE c.due_at END AS due_end,
           c.rating_timeliness,
           c.rating_effort
    FROM cases c
    JOIN responders r ON r.case_id = c.case_id
    JOIN authorities a ON a.authority_id = r.authority_id
    WHERE c.procedure = 'request'
      AND c.sent_at IS NOT NULL
      AND local_year(c.sent_at, 'EU') BETWEEN $1 AND $2
      AND array_has($3, c.domain)
)
SELECT case_id,
       year,
       domain,
       authority_id,
       member_state,
       extract(epoch FROM accepted_at - sent_at) / 86400.0 AS accept_days,
       extract(epoch FROM answered_at - CASE WHEN $4 THEN accepted_at ELSE sent_at END) / 86400.0 AS answer_days,
       accepted_at IS NOT NULL AND accepted_at <= sent_at + INTERVAL '7 days' AS accepted_in_7_days,
       due_end IS NOT NULL AS has_due,
       CASE WHEN due_end IS NOT NULL THEN answered_at IS NOT NULL AND answered_at <= due_end END AS answered_on_time,
       due_end IS NOT NULL AND (answered_at > due_end OR (answered_at IS NULL AND due_end < $6)) AS late,
       rating_timeliness,
       rating_effort
FROM requests
