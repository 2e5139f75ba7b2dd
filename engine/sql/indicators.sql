-- Purpose: the Single Market Scoreboard's five IMI indicators for one year, per member state
--          of the responding authority and domain, per member state, per domain and overall
--          (rules.md "Indicators"). Colours and scores are given to these values in
--          `indicator.rs`.
-- Inputs:  request_facts (engine/sql/request_facts.sql); parameter $1 the year.
-- Outputs: level (`member_state_domain`, `member_state`, `domain`, `overall`), member_state,
--          domain (null where the level spans them), received, accepted_in_7_days, ind1 (%),
--          answered, ind2 (average days), with_due, on_time, ind3 (%), rated_timeliness,
--          negative_timeliness, ind4 (%), rated_effort, negative_effort, ind5 (%).
--          An indicator is null where its denominator is zero; a year without requests has
--          one `overall` row of zero counts.
SELECT CASE grouping(member_state) * 2 + grouping(domain)
           WHEN 0 THEN 'member_state_domain'
           WHEN 1 THEN 'member_state'
           WHEN 2 THEN 'domain'
           ELSE 'overall'
       END AS level,
       member_state,
       domain,
       count(*) AS received,
       coalesce(sum(CASE WHEN accepted_in_7_days THEN 1 ELSE 0 END), 0) AS accepted_in_7_days,
       100.0 * sum(CASE WHEN accepted_in_7_days THEN 1 ELSE 0 END) / count(*) AS ind1,
       count(answer_days) AS answered,
       avg(answer_days) AS ind2,
       coalesce(sum(CASE WHEN has_due THEN 1 ELSE 0 END), 0) AS with_due,
       coalesce(sum(CASE WHEN answered_on_time THEN 1 ELSE 0 END), 0) AS on_time,
       100.0 * sum(CASE WHEN answered_on_time THEN 1 ELSE 0 END)
           / nullif(sum(CASE WHEN has_due THEN 1 ELSE 0 END), 0) AS ind3,
       count(rating_timeliness) AS rated_timeliness,
       coalesce(sum(CASE WHEN rating_timeliness = 'negative' THEN 1 ELSE 0 END), 0) AS negative_timeliness,
       100.0 * sum(CASE WHEN rating_timeliness = 'negative' THEN 1 ELSE 0 END)
           / nullif(count(rating_timeliness), 0) AS ind4,
       count(rating_effort) AS rated_effort,
       coalesce(sum(CASE WHEN rating_effort = 'negative' THEN 1 ELSE 0 END), 0) AS negative_effort,
       100.0 * sum(CASE WHEN rating_effort = 'negative' THEN 1 ELSE 0 END)
           / nullif(count(rating_effort), 0) AS ind5
FROM request_facts
WHERE year = $1
GROUP BY GROUPING SETS ((member_state, domain), (member_state), (domain), ())
ORDER BY level, member_state, domain
