-- Purpose: benchmarking of responding authorities and of member states against their peers
--          (same domain, same year): requests received, median and 90th-percentile days to
--          accept and to answer, share late (RT-LATE), rank and percentile among peers, and
--          the change against the previous year.
-- Inputs:  request_facts (engine/sql/request_facts.sql, covering $1 - 1 to $1); parameter
--          $1 the year.
-- Outputs: level (`authority`, `member_state`), authority_id (null at member-state level),
--          member_state, domain, received, accept_median, accept_p90, answer_median,
--          answer_p90 (days), with_due, late, share_late (0-1, null without agreed dates),
--          peers, rank (1 = shortest median answer; no answer ranks last), percentile
--          (100 = fastest), answer_median_change and share_late_change against $1 - 1 (null
--          without figures for that year).
WITH per_year AS (
    SELECT CASE WHEN grouping(authority_id) = 0 THEN 'authority' ELSE 'member_state' END AS level,
           authority_id,
           member_state,
           domain,
           year,
           count(*) AS received,
           median(accept_days) AS accept_median,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY accept_days) AS accept_p90,
           median(answer_days) AS answer_median,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY answer_days) AS answer_p90,
           sum(CASE WHEN has_due THEN 1 ELSE 0 END) AS with_due,
           sum(CASE WHEN late THEN 1 ELSE 0 END) AS late,
           1.0 * sum(CASE WHEN late THEN 1 ELSE 0 END) / nullif(sum(CASE WHEN has_due THEN 1 ELSE 0 END), 0)
               AS share_late
    FROM request_facts
    WHERE year BETWEEN $1 - 1 AND $1
    GROUP BY GROUPING SETS ((authority_id, member_state, domain, year), (member_state, domain, year))
),
this_year AS (SELECT * FROM per_year WHERE year = $1),
last_year AS (SELECT * FROM per_year WHERE year = $1 - 1)
SELECT t.level,
       t.authority_id,
       t.member_state,
       t.domain,
       t.received,
       t.accept_median,
       t.accept_p90,
       t.answer_median,
       t.answer_p90,
       t.with_due,
       t.late,
       t.share_late,
       count(*) OVER (PARTITION BY t.level, t.domain) AS peers,
       rank() OVER (PARTITION BY t.level, t.domain ORDER BY t.answer_median ASC NULLS LAST) AS rank,
       100.0 * (1.0 - percent_rank() OVER (PARTITION BY t.level, t.domain ORDER BY t.answer_median ASC NULLS LAST))
           AS percentile,
       t.answer_median - l.answer_median AS answer_median_change,
       t.share_late - l.share_late AS share_late_change
FROM this_year t
LEFT JOIN last_year l
    ON l.level = t.level
   AND l.member_state = t.member_state
   AND l.domain = t.domain
   AND (l.authority_id = t.authority_id OR (l.authority_id IS NULL AND t.authority_id IS NULL))
ORDER BY t.level, t.domain, rank, t.member_state, t.authority_id
