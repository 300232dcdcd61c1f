-- hpostore analysis view `trials`: one row per trial of every study.
-- Input: a relation named `events` with the hpostore event-log columns (DESIGN.md,
-- "The event log"). Runs in the plain duckdb CLI:  .read trials.sql
--
-- Columns: study, trial, status, error (of the last evaluate), resource (highest reached
-- by report/evaluate), runtime (s), attempts (number of starts), reports, suggested_at /
-- started_at / finished_at (study time in s, summed over sessions), session and worker (of
-- the last start), message (of a failure), config (the JSON text as logged; for a trial that
-- a scheduler resumed with more resource, the config of its latest start), then one typed
-- column per hyperparameter: the union over all studies of the keys of the suggested
-- configs, NULL where a trial has no such key. A hyperparameter named like a column before
-- it gets a suffix (`error_1`).
--
-- status is the trial's status in hpostore's one vocabulary (suggested, running, finished,
-- paused, stopped, failed, interrupted), from the `trial_status` view that studies.sql
-- defines (read studies.sql first in the plain duckdb CLI); see there for the definitions.
--
-- The hyperparameter columns are fixed when this file runs (a session variable holds the
-- union of config keys): run it again after new hyperparameters appear in the log.
SET VARIABLE hpostore_config_structure = (
    -- integers as BIGINT; a log without any hyperparameter (no suggest event, or every
    -- config `{}`, whose structure is the bare '"JSON"') gets one NULL placeholder column
    -- (DuckDB has no empty STRUCT)
    SELECT CASE WHEN structure LIKE '{_%}' THEN structure
                ELSE '{"no_hyperparameters":"VARCHAR"}' END
    FROM (
        SELECT replace(json_group_structure(config::JSON)::VARCHAR, '"UBIGINT"', '"BIGINT"')
            AS structure
        FROM events
        WHERE kind = 'suggest' AND config IS NOT NULL
    )
);

CREATE OR REPLACE TEMP VIEW trials AS
WITH per_trial AS (
    SELECT
        study,
        trial,
        arg_max(config, seq) FILTER (kind IN ('suggest', 'start') AND config IS NOT NULL) AS config,
        count(*) FILTER (kind = 'start') AS attempts,
        count(*) FILTER (kind = 'report') AS reports,
        arg_max(error, seq) FILTER (kind = 'evaluate') AS error,
        max(resource) FILTER (kind IN ('report', 'evaluate')) AS resource,
        arg_max(runtime, seq) FILTER (kind IN ('evaluate', 'fail')) AS runtime,
        min(elapsed) FILTER (kind = 'suggest') AS suggested_at,
        arg_max(elapsed, seq) FILTER (kind = 'start') AS started_at,
        arg_max(elapsed, seq) FILTER (kind IN ('evaluate', 'fail')) AS finished_at,
        arg_max(session, seq) FILTER (kind = 'start') AS session,
        arg_max(worker, seq) FILTER (kind = 'start') AS worker,
        json_extract_string(arg_max(payload, seq) FILTER (kind = 'fail'), '$.message') AS message
    FROM events
    WHERE trial IS NOT NULL
      AND kind IN ('suggest', 'start', 'report', 'evaluate', 'fail')
    GROUP BY study, trial
)
SELECT
    t.study,
    t.trial,
    s.status,
    t.error,
    t.resource,
    t.runtime,
    t.attempts,
    t.reports,
    t.suggested_at,
    t.started_at,
    t.finished_at,
    t.session,
    t.worker,
    t.message,
    t.config,
    unnest(json_transform(t.config, getvariable('hpostore_config_structure')))
FROM per_trial AS t
JOIN trial_status AS s USING (study, trial);
