-- hpostore analysis view `anytime`: the incumbent (best error so far) of every study,
-- one row per improvement, against study time and against the number of results.
-- Input: a relation named `events` with the hpostore event-log columns (DESIGN.md,
-- "The event log"). Runs in the plain duckdb CLI:  .read anytime.sql
--
-- Columns: study, seq, elapsed (study time in s at the improving result: tuner wall-clock
-- summed over sessions, so downtime between sessions is not counted), n_finished (number
-- of evaluate events up to and including this one), trial (the new incumbent), best_error.
-- The incumbent holds until the next row of the same study: plot it as a step function.
CREATE OR REPLACE TEMP VIEW anytime AS
WITH results AS (
    SELECT
        study,
        seq,
        elapsed,
        trial,
        error,
        row_number() OVER w AS n_finished,
        min(error) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS previous_best
    FROM events
    WHERE kind = 'evaluate' AND error IS NOT NULL
    WINDOW w AS (PARTITION BY study ORDER BY seq)
)
SELECT study, seq, elapsed, n_finished, trial, error AS best_error
FROM results
WHERE previous_best IS NULL OR error < previous_best;
