"""Any-time curves: the incumbent against study time, aligned across studies.

Compute functions return Arrow tables (``.to_pandas()`` for pandas); drawing is in
:mod:`analysis.plots`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from ._stepcurves import StepCurve, grid_points, mean_over
from ._stepcurves import summarise as summarise
from ._views import AnalysisError, Source, _table, views

# the step-curve helpers under the names hpostore.serve._panels imports from here
_Curve = StepCurve
_grid = grid_points

#: How studies are grouped: a column of the ``studies`` view ("algorithm" = searcher +
#: scheduler, "searcher", "scheduler", "study"), a mapping study -> group, or a function.
GroupBy = str | Mapping[str, str] | Callable[[str], str]

X_AXES = ("elapsed", "n_finished")


def short_class(name: str | None) -> str:
    """``hpostore.searchers.random.RandomSearcher`` -> ``RandomSearcher``."""
    return "?" if not name else name.rsplit(".", 1)[-1]


def algorithm_label(searcher: str | None, scheduler: str | None) -> str:
    """The legend label of a study's algorithm: ``RandomSearcher + BasicScheduler``."""
    if searcher is None:
        return short_class(scheduler)
    return f"{short_class(searcher)} + {short_class(scheduler)}"


def study_info(source: Source, studies: Sequence[str] | None = None) -> pa.Table:
    """The ``studies`` view (one row per study) with an ``algorithm`` label column added."""
    con = views(source)
    if studies is None:
        table = _table(con, "SELECT * FROM studies ORDER BY first_ts, study")
    else:
        table = _table(
            con,
            "SELECT * FROM studies WHERE list_contains(?, study) ORDER BY first_ts, study",
            [list(studies)],
        )
        missing = sorted(set(studies) - set(table.column("study").to_pylist()))
        if missing:
            known = _table(con, "SELECT study FROM studies ORDER BY study")
            raise AnalysisError(
                f"no study {missing[0]!r} in the log; its studies: "
                f"{known.column('study').to_pylist()}"
            )
    labels = [
        algorithm_label(se, sc)
        for se, sc in zip(
            table.column("searcher").to_pylist(), table.column("scheduler").to_pylist()
        )
    ]
    return table.append_column("algorithm", pa.array(labels, pa.string()))


def anytime(source: Source, studies: Sequence[str] | None = None) -> pa.Table:
    """The ``anytime`` view for ``studies`` (default: all): one row per improvement.

    Columns: study, seq, elapsed (s of study time), n_finished, trial, best_error.

    >>> anytime("runs.duckdb", ["asha-seed0"]).to_pandas()  # doctest: +SKIP
    """
    con = views(source)
    if studies is None:
        return _table(con, "SELECT * FROM anytime ORDER BY study, seq")
    return _table(
        con,
        "SELECT * FROM anytime WHERE list_contains(?, study) ORDER BY study, seq",
        [list(studies)],
    )


def _curves(
    source: Source, studies: Sequence[str] | None, group_by: GroupBy, x: str
) -> list[StepCurve]:
    if x not in X_AXES:
        raise AnalysisError(f"x must be one of {X_AXES}, got {x!r}")
    con = views(source)
    info = study_info(con, studies)
    names = info.column("study").to_pylist()
    groups = _groups(info, group_by)
    # the n_finished axis counts results (evaluate events), as the anytime view does
    end_column = "elapsed_s" if x == "elapsed" else "evaluations"
    ends = dict(zip(names, info.column(end_column).to_pylist()))
    algorithms = dict(zip(names, info.column("algorithm").to_pylist()))
    table = anytime(con, names)
    study_col = np.asarray(table.column("study").to_pylist(), dtype=object)
    xs = table.column(x).to_numpy().astype(float)
    best = table.column("best_error").to_numpy()
    curves = []
    for name in names:
        mask = study_col == name
        end = float(ends[name] or 0.0)
        curves.append(StepCurve(name, groups[name], xs[mask], best[mask], end, algorithms[name]))
    return curves


def _groups(info: pa.Table, group_by: GroupBy) -> dict[str, str]:
    names = info.column("study").to_pylist()
    if isinstance(group_by, str):
        if group_by not in info.column_names:
            raise AnalysisError(
                f"group_by={group_by!r} is not a column of the studies view; use one of "
                f"{info.column_names}, a dict study -> group, or a function"
            )
        values = info.column(group_by).to_pylist()
        if group_by in ("searcher", "scheduler"):
            values = [short_class(v) for v in values]
        return {n: str(v) for n, v in zip(names, values)}
    if isinstance(group_by, Mapping):
        missing = [n for n in names if n not in group_by]
        if missing:
            raise AnalysisError(f"group_by has no group for the studies {missing}")
        return {n: str(group_by[n]) for n in names}
    return {n: str(group_by(n)) for n in names}


def compare(
    source: Source,
    studies: Sequence[str] | None = None,
    *,
    group_by: GroupBy = "algorithm",
    x: str = "elapsed",
    grid: int | Sequence[float] = 200,
    quantiles: tuple[float, float] = (0.25, 0.75),
    log_grid: bool = False,
) -> pa.Table:
    """Any-time curves of several studies aligned on a common grid, summarised per group.

    Each study's incumbent is a step function of ``x`` (study time in seconds, or the number
    of results, ``evaluate`` events, with ``x="n_finished"``), held after the study's last result. On
    ``grid`` (a number of points from the first result to the last study's end, log-spaced
    with ``log_grid``, or the points themselves) every group gets the median and the
    ``quantiles`` band over its studies (e.g. seeds), ignoring studies without a result yet.

    Columns: group, x, n_studies (with a result at x), median, q_low, q_high, mean.

    >>> bands = compare("runs/", group_by="algorithm")             # doctest: +SKIP
    >>> bands.to_pandas().query("group == 'RandomSearcher + BasicScheduler'")  # doctest: +SKIP
    """
    lo, hi = quantiles
    if not 0 <= lo <= hi <= 1:
        raise AnalysisError(f"`0 <= q_low <= q_high <= 1` must hold, but got quantiles={quantiles}")
    curves = _curves(source, studies, group_by, x)
    points = grid_points(curves, grid, log_grid)
    group_names = list(dict.fromkeys(c.group for c in curves))
    out: dict[str, list[Any]] = {
        k: [] for k in ("group", "x", "n_studies", "median", "q_low", "q_high", "mean")
    }
    for group in group_names:
        band = summarise([c for c in curves if c.group == group], points, (lo, hi))
        out["group"] += [group] * len(points)
        out["x"] += points.tolist()
        out["n_studies"] += band["n_studies"].tolist()
        for key in ("median", "q_low", "q_high", "mean"):
            out[key] += [None if math.isnan(v) else float(v) for v in band[key]]
    return pa.table(
        {
            "group": pa.array(out["group"], pa.string()),
            "x": pa.array(out["x"], pa.float64()),
            "n_studies": pa.array(out["n_studies"], pa.int64()),
            "median": pa.array(out["median"], pa.float64()),
            "q_low": pa.array(out["q_low"], pa.float64()),
            "q_high": pa.array(out["q_high"], pa.float64()),
            "mean": pa.array(out["mean"], pa.float64()),
        }
    )


def time_to_target(
    source: Source,
    target: float,
    studies: Sequence[str] | None = None,
    *,
    group_by: GroupBy = "algorithm",
) -> pa.Table:
    """When each study first reached ``best_error <= target`` (``>=`` under mode max).

    Columns: study, group, elapsed (s of study time; null if never), n_finished (results
    until then; null if never), reached (bool).
    """
    con = views(source)
    info = study_info(con, studies)
    names = info.column("study").to_pylist()
    groups = _groups(info, group_by)
    hits = _table(
        con,
        """
            SELECT a.study, min(a.elapsed) AS elapsed, min(a.n_finished) AS n_finished
            FROM anytime AS a JOIN objectives AS o ON o.study = a.study AND o.k = 1
            WHERE o.sign * a.best_error <= o.sign * $1 AND list_contains($2, a.study)
            GROUP BY a.study
            """,
        [float(target), names],
    )
    found = {
        s: (e, n)
        for s, e, n in zip(
            hits.column("study").to_pylist(),
            hits.column("elapsed").to_pylist(),
            hits.column("n_finished").to_pylist(),
        )
    }
    return pa.table(
        {
            "study": pa.array(names, pa.string()),
            "group": pa.array([groups[s] for s in names], pa.string()),
            "elapsed": pa.array([found.get(s, (None, None))[0] for s in names], pa.float64()),
            "n_finished": pa.array([found.get(s, (None, None))[1] for s in names], pa.int64()),
            "reached": pa.array([s in found for s in names], pa.bool_()),
        }
    )


def area_under_curve(
    source: Source,
    studies: Sequence[str] | None = None,
    *,
    group_by: GroupBy = "algorithm",
    x: str = "elapsed",
    start: float | None = None,
    stop: float | None = None,
) -> pa.Table:
    """The area under each study's any-time curve over a common window, divided by its width.

    The window is [``start``, ``stop``]; by default from the latest first result among the
    studies (so every curve is defined over all of it) to the end of the longest study
    (curves are held after their study's end). The normalised area is the mean incumbent
    error over the window: lower is better, and it rewards getting good early.

    Columns: study, group, start, stop, auc.
    """
    curves = _curves(source, studies, group_by, x)
    defined = [c for c in curves if c.x.size]
    lo = start if start is not None else max((c.x[0] for c in defined), default=0.0)
    hi = stop if stop is not None else max((max(c.end, c.x[-1]) for c in defined), default=lo)
    if not hi > lo:
        raise AnalysisError(
            f"`start < stop` must hold for the window, but got start={lo}, stop={hi}"
        )
    aucs = [mean_over(c, lo, hi) for c in curves]
    n = len(curves)
    return pa.table(
        {
            "study": pa.array([c.study for c in curves], pa.string()),
            "group": pa.array([c.group for c in curves], pa.string()),
            "start": pa.array([lo] * n, pa.float64()),
            "stop": pa.array([hi] * n, pa.float64()),
            "auc": pa.array(aucs, pa.float64()),
        }
    )


def state_at(
    source: Any,
    study: str,
    *,
    seq: int | None = None,
    elapsed: float | None = None,
) -> Any:
    """Time travel: the :class:`hpostore.StudyState` of ``study`` as of event ``seq`` or study
    time ``elapsed`` (seconds), replayed from that prefix of its log.

    >>> state_at("runs.duckdb", "lenet", elapsed=3600).incumbent_error  # doctest: +SKIP
    """
    from hpostore.log.fold import replay_table

    if (seq is None) == (elapsed is None):
        raise AnalysisError("give exactly one of seq= or elapsed=")
    con = views(source)
    if not _table(con, "SELECT 1 FROM events WHERE study = ? LIMIT 1", [study]).num_rows:
        raise AnalysisError(f"no study {study!r} in the log")
    if seq is None:
        # the prefix up to the last event at or before that time (elapsed never decreases)
        last = con.execute(
            "SELECT coalesce(max(seq), 0) FROM events WHERE study = ? AND elapsed <= ?",
            [study, float(elapsed)],  # type: ignore[arg-type]
        ).fetchall()[0][0]
    else:
        last = int(seq)
    table = _table(
        con, "SELECT * FROM events WHERE study = ? AND seq <= ? ORDER BY seq", [study, last]
    )
    return replay_table(study, table)
