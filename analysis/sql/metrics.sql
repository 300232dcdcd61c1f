-- hpostore analysis views `objectives`, `metrics` and `pareto` (event-log format v2).
-- Input: a relation named `events` with the hpostore event-log columns (DESIGN.md,
-- "The event log") and the `trial_status` view of studies.sql (read studies.sql first in the
-- plain duckdb CLI). Runs in the plain duckdb CLI:  .read metrics.sql
--
-- objectives: study, k (1, 2 ...), metric, mode ('min' | 'max'), sign (1 | -1): the study's
--   objectives from its spec; a v1 study (or one naming none) has one, ('error', 'min').
-- metrics: study, trial, seq, kind ('report' | 'evaluate'), elapsed, resource, metric, value
--   (DOUBLE): every metric of every result and report, one row each. The `error` column is
--   the first objective's value as measured; a result that logged more (a dict of metrics)
--   carries them all in its payload's `metrics` (v2), so a v1 log gives one row per result.
-- pareto: study, trial, config, error, metrics (JSON text of the latest result's metrics,
--   NULL when it logged only its error): the trials with a result (finished, paused,
--   stopped) whose objectives no other such trial's dominate. Under one objective, the
--   trials that share the best value.
CREATE OR REPLACE TEMP VIEW objectives AS
WITH spec AS (
    SELECT
        study,
        CASE WHEN json_type(payload, '$.metric') = 'ARRAY'
             THEN json_extract_string(payload, '$.metric[*]')
             ELSE [coalesce(json_extract_string(payload, '$.metric'), 'error')] END AS metric,
        CASE WHEN json_type(payload, '$.mode') = 'ARRAY'
             THEN json_extract_string(payload, '$.mode[*]')
             ELSE [coalesce(json_extract_string(payload, '$.mode'), 'min')] END AS mode
    FROM events
    WHERE kind = 'study'
)
SELECT study, k, metric, mode, CASE WHEN mode = 'max' THEN -1 ELSE 1 END AS sign
FROM (
    SELECT
        study,
        unnest(generate_series(1, len(metric))) AS k,
        unnest(metric) AS metric,
        unnest(mode) AS mode
    FROM spec
);

CREATE OR REPLACE TEMP VIEW metrics AS
WITH results AS (
    SELECT
        study, trial, seq, kind, elapsed, resource, error,
        json_transform(payload::JSON -> 'metrics', '"MAP(VARCHAR, DOUBLE)"') AS logged
    FROM events
    WHERE kind IN ('report', 'evaluate') AND error IS NOT NULL
),
unnested AS (
    SELECT study, trial, seq, kind, elapsed, resource,
           unnest(map_keys(logged)) AS metric, unnest(map_values(logged)) AS value
    FROM results
    WHERE logged IS NOT NULL
)
SELECT * FROM unnested
UNION ALL
SELECT r.study, r.trial, r.seq, r.kind, r.elapsed, r.resource, o.metric, r.error AS value
FROM results AS r
JOIN objectives AS o ON o.study = r.study AND o.k = 1
WHERE r.logged IS NULL OR NOT map_contains(r.logged, o.metric)
ORDER BY 1, 3, 7;

CREATE OR REPLACE TEMP VIEW pareto AS
WITH latest AS (
    SELECT study, trial, max(seq) AS seq
    FROM events
    WHERE kind = 'evaluate' AND error IS NOT NULL
    GROUP BY study, trial
),
candidates AS (
    SELECT l.study, l.trial, l.seq
    FROM latest AS l
    JOIN trial_status AS s USING (study, trial)
    WHERE s.status IN ('finished', 'paused', 'stopped')
),
losses AS (
    SELECT c.study, c.trial, o.k, o.sign * m.value AS loss
    FROM candidates AS c
    JOIN objectives AS o USING (study)
    JOIN metrics AS m ON m.study = c.study AND m.seq = c.seq AND m.metric = o.metric
),
n_objectives AS (
    SELECT study, count(*) AS n FROM objectives GROUP BY study
),
complete AS (
    SELECT l.study, l.trial
    FROM losses AS l
    JOIN n_objectives AS n USING (study)
    GROUP BY l.study, l.trial, n.n
    HAVING count(*) = n.n
),
dominated AS (
    SELECT DISTINCT a.study, a.trial
    FROM losses AS a
    JOIN losses AS b ON b.study = a.study AND b.k = a.k AND b.trial <> a.trial
    JOIN complete AS cb ON cb.study = b.study AND cb.trial = b.trial
    JOIN n_objectives AS n ON n.study = a.study
    GROUP BY a.study, a.trial, b.trial, n.n
    HAVING count(*) = n.n AND bool_and(b.loss <= a.loss) AND bool_or(b.loss < a.loss)
)
SELECT
    c.study,
    c.trial,
    (SELECT arg_max(e.config, e.seq) FROM events AS e
     WHERE e.study = c.study AND e.trial = c.trial AND e.config IS NOT NULL
       AND e.kind IN ('suggest', 'start')) AS config,
    e.error,
    json_extract(e.payload, '$.metrics')::VARCHAR AS metrics
FROM complete AS c
JOIN events AS e ON e.study = c.study AND e.seq = (
    SELECT l.seq FROM latest AS l WHERE l.study = c.study AND l.trial = c.trial)
WHERE NOT EXISTS (SELECT 1 FROM dominated AS d WHERE d.study = c.study AND d.trial = c.trial)
ORDER BY c.study, c.trial;
