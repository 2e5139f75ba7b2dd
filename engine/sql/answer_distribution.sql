-- Purpose: how long requests of one year took to be answered, in the bands the reports show,
--          per member state of the responding authority.
-- Inputs:  request_facts (engine/sql/request_facts.sql); parameter $1 the year.
-- Outputs: member_state, band_order (1-6), band (`0-7 days`, `8-15 days`, `16-25 days`,
--          `26-40 days`, `over 40 days`, `unanswered`), requests.
SELECT member_state,
       CASE
           WHEN answer_days IS NULL THEN 6
           WHEN answer_days <= 7 THEN 1
           WHEN answer_days <= 15 THEN 2
           WHEN answer_days <= 25 THEN 3
           WHEN answer_days <= 40 THEN 4
           ELSE 5
       END AS band_order,
       CASE
           WHEN answer_days IS NULL THEN 'unanswered'
           WHEN answer_days <= 7 THEN '0-7 days'
           WHEN answer_days <= 15 THEN '8-15 days'
           WHEN answer_days <= 25 THEN '16-25 days'
           WHEN answer_days <= 40 THEN '26-40 days'
           ELSE 'over 40 days'
       END AS band,
       count(*) AS requests
FROM request_facts
WHERE year = $1
GROUP BY 1, 2, 3
ORDER BY member_state, band_order
