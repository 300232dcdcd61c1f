-- hpostore analysis view `anytime`: the incumbent (best error so far) of every study,
-- one row per improvement, against study time and against the number of results.
-- Input: a relation named `events` with the hpostore event-log columns (DESIGN.md,
-- "The event log"). Runs in the plain duckdb CLI:  .read anytime.sql
--
-- Columns: study, seq, elapsed (study time in s at the improving result: tuner wall-clock
-- summed over sessions, so downtime between sessions is not counted), n_finished (number
-- of evaluate events up to and including this one), trial (the new incumbent), best_error
-- (the first objective's value as measured: the lowest so far, the highest under mode max).
-- The incumbent holds until the next row of the same study: plot it as a step function.
CREATE OR REPLACE TEMP VIEW anytime AS
WITH signs AS (
    SELECT study, CASE WHEN coalesce(json_extract_string(payload, '$.mode[0]'),
                          json_extract_string(payload, '$.mode')) = 'max' THEN -1.0 ELSE 1.0 END AS sign
    FROM events
    WHERE kind = 'study'
),
results AS (
    SELECT
        e.study,
        e.seq,
        e.elapsed,
        e.trial,
        e.error,
        coalesce(s.sign, 1.0) * e.error AS loss,
        row_number() OVER w AS n_finished,
        min(coalesce(s.sign, 1.0) * e.error) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS previous_best
    FROM events AS e
    LEFT JOIN signs AS s USING (study)
    WHERE e.kind = 'evaluate' AND e.error IS NOT NULL
    WINDOW w AS (PARTITION BY e.study ORDER BY e.seq)
)
SELECT study, seq, elapsed, n_finished, trial, error AS best_error
FROM results
WHERE previous_best IS NULL OR loss < previous_best
ORDER BY study, seq;
