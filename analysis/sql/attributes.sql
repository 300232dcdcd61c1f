-- hpostore analysis view `attributes`: the user attributes of studies and trials
-- (`tuner.set_study_attr(key, value)`, `tuner.set_trial_attr(trial, key, value)`; `attr` events).
-- Input: a relation named `events` with the hpostore event-log columns (DESIGN.md,
-- "The event log"). Runs in the plain duckdb CLI:  .read attributes.sql
--
-- Columns: study, trial (NULL: an attribute of the study), key, value (JSON text of the latest
-- value set), seq and elapsed (study time in s) of the event that set it.
CREATE OR REPLACE TEMP VIEW attributes AS
SELECT study, trial, key, value, seq, elapsed
FROM (
    SELECT
        study,
        trial,
        json_extract_string(payload, '$.key') AS key,
        CAST(json_extract(payload, '$.value') AS VARCHAR) AS value,
        seq,
        elapsed,
        row_number() OVER (
            PARTITION BY study, trial, json_extract_string(payload, '$.key') ORDER BY seq DESC
        ) AS newest
    FROM events
    WHERE kind = 'attr'
)
WHERE newest = 1;
