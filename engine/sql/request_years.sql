-- Purpose: the first and last Brussels years in which requests were sent: the years the
--          indicators are computed for.
-- Inputs:  cases.
-- Outputs: lo, hi (null when no request was sent).
SELECT min(local_year(sent_at, 'EU')) AS lo,
       max(local_year(sent_at, 'EU')) AS hi
FROM cases
WHERE procedure = 'request' AND sent_at IS NOT NULL
