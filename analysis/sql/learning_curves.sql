-- hpostore analysis view `learning_curves`: every intermediate and final result of every
-- trial, from `report` and `evaluate` events.
-- Input: a relation named `events` with the hpostore event-log columns (DESIGN.md,
-- "The event log"). Runs in the plain duckdb CLI:  .read learning_curves.sql
--
-- Columns: study, trial, seq, elapsed (study time in s), kind ('report' | 'evaluate'),
-- resource (fidelity reached: epochs, steps; NULL when the objective reports none), error.
CREATE OR REPLACE TEMP VIEW learning_curves AS
SELECT study, trial, seq, elapsed, kind, resource, error
FROM events
WHERE kind IN ('report', 'evaluate') AND trial IS NOT NULL AND error IS NOT NULL;
