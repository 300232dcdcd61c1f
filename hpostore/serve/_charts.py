"""The dashboard's time series: any-time curves, learning curves with decisions, worker timeline.

Like :mod:`hpostore.serve._data`: fixed, parameterised SQL over the analysis views, results
capped (each record says how many it left out) and free of NaN.
"""

from __future__ import annotations

from typing import Any

import duckdb

from ._data import (
    CURVES_BEST,
    CURVES_RECENT,
    POINTS_PER_CURVE,
    TIMELINE_BARS,
    _rows,
)

#: Improvements kept per any-time curve (they are few: roughly log of the trials).
ANYTIME_ROWS = 2000


def anytime(con: duckdb.DuckDBPyConnection, study: str) -> dict[str, Any]:
    """The incumbent after each improvement (step function) and where the study is now."""
    rows = con.execute(
        "SELECT elapsed, n_finished, trial, best_error FROM anytime WHERE study = ? "
        "ORDER BY seq LIMIT ?",
        [study, ANYTIME_ROWS],
    ).fetchall()
    now = con.execute(
        "SELECT max(elapsed), count(*) FILTER (kind = 'evaluate') FROM events WHERE study = ?",
        [study],
    ).fetchall()[0]
    return {
        "study": study,
        "elapsed": [r[0] for r in rows],
        "n_finished": [r[1] for r in rows],
        "trial": [r[2] for r in rows],
        "best_error": [r[3] for r in rows],
        "end_elapsed": now[0],
        "end_finished": now[1],
    }


_CURVES = """
WITH lc AS (SELECT trial, seq, resource, error, kind FROM learning_curves WHERE study = ?),
per AS (SELECT trial, {best}(error) AS best, max(seq) AS last FROM lc GROUP BY trial),
chosen AS (
    SELECT trial FROM (SELECT trial FROM per ORDER BY best {order}, trial LIMIT ?)
    UNION
    SELECT trial FROM (SELECT trial FROM per ORDER BY last DESC LIMIT ?)
)
SELECT trial, seq, resource, error, kind FROM lc
WHERE trial IN (SELECT trial FROM chosen) ORDER BY trial, seq
"""


def curves(con: duckdb.DuckDBPyConnection, study: str, mode: str | None) -> dict[str, Any]:
    """Learning curves of the best and the most recent trials, with the scheduler's
    decisions (stop, promote, pause) marked on them. x is the resource when the objective
    reports one, else the number of the report."""
    order = "DESC" if mode == "max" else "ASC"  # one of two literals, never user text
    total = con.execute(
        "SELECT count(DISTINCT trial) FROM learning_curves WHERE study = ?", [study]
    ).fetchall()[0][0]
    lines: dict[int, dict[str, Any]] = {}
    seqs: dict[int, list[int]] = {}
    for trial, seq, resource, error, _kind in con.execute(
        _CURVES.format(order=order, best="max" if mode == "max" else "min"),
        [study, CURVES_BEST, CURVES_RECENT],
    ).fetchall():
        line = lines.setdefault(trial, {"trial": trial, "x": [], "y": []})
        line["x"].append(resource if resource is not None else len(line["x"]) + 1)
        line["y"].append(error)
        seqs.setdefault(trial, []).append(seq)
    marks = []
    for row in _rows(
        con,
        "SELECT trial, seq, decision, reason, resource FROM decisions WHERE study = ? ORDER BY seq",
        [study],
    ):
        trial = row["trial"]
        if trial not in lines:
            continue
        # the decision is drawn at the trial's last result before it
        before = [i for i, s in enumerate(seqs[trial]) if s < row["seq"]]
        if not before:
            continue
        i = before[-1]
        x = lines[trial]["x"][i] if row["resource"] is None else row["resource"]
        marks.append({"trial": trial, "decision": row["decision"], "reason": row["reason"],
                      "x": x, "y": lines[trial]["y"][i]})  # fmt: skip
    for line in lines.values():
        n = len(line["x"])
        if n > POINTS_PER_CURVE:  # evenly thinned, the last point kept
            step = n / POINTS_PER_CURVE
            keep = sorted({int(k * step) for k in range(POINTS_PER_CURVE)} | {n - 1})
            line["x"] = [line["x"][k] for k in keep]
            line["y"] = [line["y"][k] for k in keep]
    return {"lines": list(lines.values()), "marks": marks, "total": total}


_TIMELINE = """
WITH ev AS (
    SELECT seq, elapsed, kind, trial, worker, session,
        sum(CASE WHEN kind = 'start' THEN 1 ELSE 0 END)
            OVER (PARTITION BY trial ORDER BY seq ROWS UNBOUNDED PRECEDING) AS attempt
    FROM events
    WHERE study = ? AND trial IS NOT NULL
      AND kind IN ('start', 'evaluate', 'fail', 'stop', 'pause', 'interrupt')
), attempts AS (
    SELECT trial, attempt, min(seq) AS first_seq,
        -- a pool's start does not know its worker yet; the result names it
        coalesce(arg_min(worker, seq) FILTER (kind = 'start'),
                 arg_min(worker, seq) FILTER (kind IN ('evaluate', 'fail', 'pause', 'interrupt')),
                 'unknown') AS worker,
        arg_min(session, seq) AS session,
        min(elapsed) AS start,
        arg_min(elapsed, seq) FILTER (kind IN ('evaluate', 'fail', 'pause', 'interrupt')) AS "end",
        arg_min(kind, seq) FILTER (kind IN ('evaluate', 'fail', 'pause', 'interrupt')) AS ended_by,
        bool_or(kind = 'stop') AS stopped,
        attempt = max(attempt) OVER (PARTITION BY trial) AS latest
    FROM ev WHERE attempt >= 1
    GROUP BY trial, attempt
)
SELECT trial, attempt, worker, session, start, "end",
    CASE WHEN ended_by IS NULL AND latest THEN 'open'
         WHEN ended_by IS NULL THEN 'lost'
         WHEN stopped AND ended_by = 'evaluate' THEN 'stop'
         ELSE ended_by END AS outcome
FROM attempts ORDER BY first_seq DESC LIMIT ?
"""


def timeline(con: duckdb.DuckDBPyConnection, study: str) -> dict[str, Any]:
    """One bar per attempt of a trial: the worker, when it started and how it ended
    (``evaluate``; ``stop`` when it returned after a stop decision; ``fail``, ``pause``,
    ``interrupt``; ``open`` while it runs or when its process died; ``lost`` when the trial
    started again with no outcome logged).
    Times are study time (s). Open bars have no ``end``: draw them to ``end_elapsed``."""
    total = con.execute(
        "SELECT count(*) FROM events WHERE study = ? AND kind = 'start'", [study]
    ).fetchall()[0][0]
    bars = _rows(con, _TIMELINE, [study, TIMELINE_BARS])
    bars.reverse()
    end = con.execute("SELECT max(elapsed) FROM events WHERE study = ?", [study]).fetchall()
    return {"bars": bars, "total": total, "end_elapsed": end[0][0]}
