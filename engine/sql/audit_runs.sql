-- Purpose: which policy set produced the latest whole audit's findings, and when it ran.
-- Inputs:  ntk_findings.
-- Outputs: policy_hash, run_at (the last run, as text); one row per policy set.
SELECT policy_hash,
       CAST(max(run_at) AS VARCHAR) AS run_at
FROM ntk_findings
GROUP BY policy_hash
ORDER BY policy_hash
