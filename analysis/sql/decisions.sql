-- hpostore analysis view `decisions`: the scheduler's decisions on trials.
-- Input: a relation named `events` with the hpostore event-log columns (DESIGN.md,
-- "The event log"). Runs in the plain duckdb CLI:  .read decisions.sql
--
-- Columns: study, seq, elapsed (study time in s), trial, decision ('stop' | 'promote' |
-- 'pause'), reason (the payload's "reason"), resource (of the event, when given), payload
-- (the whole JSON text).
CREATE OR REPLACE TEMP VIEW decisions AS
SELECT
    study,
    seq,
    elapsed,
    trial,
    kind AS decision,
    json_extract_string(payload, '$.reason') AS reason,
    resource,
    payload
FROM events
WHERE kind IN ('stop', 'promote', 'pause');
