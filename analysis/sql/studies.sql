-- hpostore analysis views `trial_status` and `studies`.
-- Input: a relation named `events` with the hpostore event-log columns (DESIGN.md,
-- "The event log"). Runs in the plain duckdb CLI:  .read studies.sql  (trials.sql uses
-- `trial_status`: read this file first).
--
-- `trial_status`: study, trial, status, one row per suggested trial. The status is the one
-- vocabulary of hpostore (the fold in hpostore/study.py, `hpostore trials/show/studies`):
--   suggested    proposed, never started
--   running      started in the session still open
--   finished     its last attempt returned a result (an `evaluate`)
--   paused       finished, and the last decision since its last start is `pause`: it waits
--                at a rung and a scheduler may resume it (a later `promote` ends the wait)
--   stopped      finished, and the last decision since its last start is `stop`
--   failed       the objective raised or returned something unusable (`fail`)
--   interrupted  it was in flight when its session ended or died (an `interrupt` event, or a
--                later `session`/`end` event after its last start); a resume re-runs it
--
-- `studies`: one row per study. Columns: study, scheduler, searcher (class names from the
-- `study` event's spec), seed, metric, mode, format_version, events, trials (suggested),
-- finished, paused, stopped, failed, interrupted, running, suggested (trials with that
-- status: they add up to trials), evaluations (results: a trial resumed with more resource
-- has one per rung), sessions, best_error (the incumbent's: the lowest error of any result,
-- the highest under mode max; the first objective of a multi-objective study),
-- incumbent_trial (the trial of the first result with that error), elapsed_s (study time:
-- downtime between sessions is not counted), first_ts, last_ts.
CREATE OR REPLACE TEMP VIEW trial_status AS
WITH per_trial AS (
    SELECT
        study,
        trial,
        arg_max(kind, seq) FILTER (kind IN ('start', 'evaluate', 'fail', 'interrupt')) AS last_kind,
        max(seq) FILTER (kind = 'start') AS last_start_seq,
        arg_max(kind, seq) FILTER (kind IN ('stop', 'pause', 'promote')) AS decision,
        max(seq) FILTER (kind IN ('stop', 'pause', 'promote')) AS decision_seq
    FROM events
    WHERE trial IS NOT NULL
      AND kind IN ('suggest', 'start', 'evaluate', 'fail', 'interrupt', 'stop', 'pause', 'promote')
    GROUP BY study, trial
    HAVING count(*) FILTER (kind = 'suggest') > 0
),
boundaries AS (  -- the last session start or end of each study
    SELECT study, max(seq) AS boundary_seq
    FROM events
    WHERE kind IN ('session', 'end')
    GROUP BY study
)
SELECT
    t.study,
    t.trial,
    CASE
        WHEN t.last_kind IS NULL THEN 'suggested'
        WHEN t.last_kind = 'start' AND coalesce(b.boundary_seq, 0) > t.last_start_seq THEN 'interrupted'
        WHEN t.last_kind = 'start' THEN 'running'
        WHEN t.last_kind = 'interrupt' THEN 'interrupted'
        WHEN t.last_kind = 'fail' THEN 'failed'
        WHEN t.decision_seq > t.last_start_seq AND t.decision = 'stop' THEN 'stopped'
        WHEN t.decision_seq > t.last_start_seq AND t.decision = 'pause' THEN 'paused'
        ELSE 'finished'
    END AS status
FROM per_trial AS t
LEFT JOIN boundaries AS b USING (study);

CREATE OR REPLACE TEMP VIEW studies AS
WITH signs AS (
    SELECT study, CASE WHEN coalesce(json_extract_string(payload, '$.mode[0]'),
                          json_extract_string(payload, '$.mode')) = 'max' THEN -1.0 ELSE 1.0 END AS sign
    FROM events
    WHERE kind = 'study'
),
per_study AS (
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
        count(*) FILTER (kind = 'evaluate') AS evaluations,
        count(*) FILTER (kind = 'session') AS sessions,
        arg_min(error, coalesce(sign, 1.0) * error) FILTER (kind = 'evaluate') AS best_error,
        first(trial ORDER BY coalesce(sign, 1.0) * error, seq) FILTER (kind = 'evaluate') AS incumbent_trial,
        max(elapsed) AS elapsed_s,
        min(ts) AS first_ts,
        max(ts) AS last_ts
    FROM events
    LEFT JOIN signs USING (study)
    GROUP BY study
),
per_status AS (
    SELECT
        study,
        count(*) FILTER (status = 'finished') AS finished,
        count(*) FILTER (status = 'paused') AS paused,
        count(*) FILTER (status = 'stopped') AS stopped,
        count(*) FILTER (status = 'failed') AS failed,
        count(*) FILTER (status = 'interrupted') AS interrupted,
        count(*) FILTER (status = 'running') AS running,
        count(*) FILTER (status = 'suggested') AS suggested
    FROM trial_status
    GROUP BY study
)
SELECT
    s.study, s.scheduler, s.searcher, s.seed, s.metric, s.mode, s.format_version, s.events,
    s.trials,
    coalesce(c.finished, 0) AS finished,
    coalesce(c.paused, 0) AS paused,
    coalesce(c.stopped, 0) AS stopped,
    coalesce(c.failed, 0) AS failed,
    coalesce(c.interrupted, 0) AS interrupted,
    coalesce(c.running, 0) AS running,
    coalesce(c.suggested, 0) AS suggested,
    s.evaluations, s.sessions, s.best_error, s.incumbent_trial, s.elapsed_s, s.first_ts,
    s.last_ts
FROM per_study AS s
LEFT JOIN per_status AS c USING (study);
