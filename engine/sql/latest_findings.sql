-- Purpose: the need-to-know findings of the store's latest whole audit, as the dashboard and
--          the reports show them.
-- Inputs:  ntk_findings (the latest whole audit's files only, as the session registers them).
-- Outputs: every column of a finding, in the order of the events' instants.
SELECT *
FROM ntk_findings
ORDER BY ts, event_id, rule
