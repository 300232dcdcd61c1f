-- hpostore analysis view `studies`: one row per study.
-- Input: a relation named `events` with the hpostore event-log columns (DESIGN.md,
-- "The event log"). Runs in the plain duckdb CLI:  .read studies.sql
-- Columns: study, scheduler, searcher (class names from the `study` event's spec), seed,
-- metric, mode, format_version, events, trials, finished (trials with a result), evaluations
-- (results: a trial resumed with more resource has one per rung), failed, sessions,
-- best_error, elapsed_s (study time: downtime between sessions is not counted), first_ts,
-- last_ts.
CREATE OR REPLACE TEMP VIEW studies AS
SELECT
    study,
    any_value(json_extract_string(payload, '$.scheduler.class')) FILTER (kind = 'study') AS scheduler,
    any_value(json_extract_string(payload, '$.scheduler.args.searcher.class')) FILTER (kind = 'study') AS searcher,
    any_value(TRY_CAST(json_extract_string(payload, '$.seed') AS BIGINT)) FILTER (kind = 'study') AS seed,
    any_value(json_extract_string(payload, '$.metric')) FILTER (kind = 'study') AS metric,
    any_value(json_extract_string(payload, '$.mode')) FILTER (kind = 'study') AS mode,
    any_value(TRY_CAST(json_extract_string(payload, '$.format_version') AS BIGINT)) FILTER (kind = 'study') AS format_version,
    count(*) AS events,
    count(*) FILTER (kind = 'suggest') AS trials,
    count(DISTINCT trial) FILTER (kind = 'evaluate') AS finished,
    count(*) FILTER (kind = 'evaluate') AS evaluations,
    count(*) FILTER (kind = 'fail') AS failed,
    count(*) FILTER (kind = 'session') AS sessions,
    min(error) FILTER (kind = 'evaluate') AS best_error,
    max(elapsed) AS elapsed_s,
    min(ts) AS first_ts,
    max(ts) AS last_ts
FROM events
GROUP BY study;
