"""The dashboard's quantile bands of overlaid studies, contour of two parameters, Pareto front.

Like :mod:`hpostore.serve._charts`: small JSON-ready records, free of NaN, whose size is
bounded by the number of finished trials (and capped), never by the number of events.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import duckdb
import numpy as np

from analysis._anytime import _Curve, _grid, algorithm_label, summarise

from ..errors import HPOStoreError

#: Most grid points of a quantile band (the union of the curves' steps, or an even grid).
BAND_POINTS = 1000
#: The band drawn around the median of repeated studies.
BAND_QUANTILES = (0.25, 0.75)
#: Most cells along each axis of the contour (fewer when there are few trials).
CONTOUR_BINS = 20
#: Pareto plot: results sent besides the front (the most recent ones).
PARETO_POINTS = 2000
#: A parameter of these kinds can be an axis of the contour.
NUMERIC = ("float", "int", "log")


class UnknownParameter(HPOStoreError):
    """A contour asked of a parameter the study has not, or one that is not numeric."""


def _floats(values: np.ndarray) -> list[float | None]:
    return [None if not math.isfinite(v) else float(v) for v in values.tolist()]


def bands(
    curves: Sequence[dict[str, Any]], rows: dict[str, dict[str, Any]], x: str
) -> list[dict[str, Any]]:
    """Median and 25–75% band of each group of overlaid studies that repeat one setup (the
    same searcher, scheduler, metric and mode: seeds, say), on ``x`` (``elapsed`` or
    ``n_finished``). ``curves`` are :func:`~hpostore.serve._charts.anytime` records, ``rows``
    the studies' records (:func:`~hpostore.serve._data.studies`). A group of one study gets no
    band. Each step curve is held from its improvements to the last study's end; the grid is
    the union of the group's steps, so the band is exact (an even grid past ``BAND_POINTS``)."""
    groups: dict[tuple[Any, ...], list[_Curve]] = {}
    end_key = "end_elapsed" if x == "elapsed" else "end_finished"
    metrics = {(rows.get(c["study"]) or {}).get("metric") for c in curves}
    for c in curves:
        row = rows.get(c["study"]) or {}
        label = algorithm_label(row.get("searcher"), row.get("scheduler"))
        if len(metrics) > 1:  # studies of different objectives are never pooled silently
            label += f" ({row.get('metric') or 'error'})"
        key = (row.get("searcher"), row.get("scheduler"), row.get("metric"), row.get("mode"))
        xs = np.asarray(c[x], dtype=float)
        end = float(c[end_key]) if c[end_key] is not None else (xs[-1] if xs.size else 0.0)
        best = np.asarray(c["best_error"], dtype=float)
        groups.setdefault(key, []).append(_Curve(c["study"], label, xs, best, end, label))
    out = []
    for members in groups.values():
        if len(members) < 2:
            continue
        knots = np.unique(np.concatenate([np.append(m.x, m.end) for m in members]))
        points = knots if knots.size <= BAND_POINTS else _grid(members, BAND_POINTS, False)
        band = summarise(members, points, BAND_QUANTILES)
        out.append(
            {
                "group": members[0].group,
                "studies": [m.study for m in members],
                "quantiles": list(BAND_QUANTILES),
                "x": _floats(points),
                "n_studies": band["n_studies"].tolist(),
                **{k: _floats(band[k]) for k in ("median", "q_low", "q_high")},
            }
        )
    return out


def default_pair(params: Sequence[dict[str, Any]], ranked: Sequence[dict[str, Any]]) -> list[str]:
    """The two numeric parameters the importance ranks highest (fewer if there are fewer)."""
    numeric = [p["name"] for p in params if p["kind"] in NUMERIC]
    order = [r["param"] for r in ranked if r["param"] in numeric]
    return (order + [n for n in numeric if n not in order])[:2]


def _axis(values: Sequence[Any], log: bool, bins: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """The values on the binning scale (NaN where missing), the bin edges, and whether the
    scale is log (a log-uniform parameter whose values are all positive)."""
    raw = np.array(
        [v if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan for v in values],
        dtype=float,
    )
    finite = raw[np.isfinite(raw)]
    log = log and finite.size > 0 and bool(np.all(finite > 0))
    with np.errstate(all="ignore"):
        t = np.log10(raw) if log else raw
    ok = t[np.isfinite(t)]
    lo, hi = (float(ok.min()), float(ok.max())) if ok.size else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return t, np.linspace(lo, hi, bins + 1), log


def contour(
    points: dict[str, Any], params: Sequence[dict[str, Any]], mode: str | None, x: str, y: str
) -> dict[str, Any]:
    """The mean result of the trials in each cell of a grid over parameters ``x`` and ``y``
    (``points`` of :func:`~hpostore.serve._data.points`): cell centres on the parameters'
    scales (log10 for log-uniform ones: then ``log`` is true), ``z[row][col]`` the mean for
    y-bin ``row`` and x-bin ``col`` (None where no trial fell), ``range`` the outer edges of
    the grid, ``count`` the trials placed. ``sqrt(n/2)`` cells a side for ``n`` trials (3 to
    ``CONTOUR_BINS``): about two trials a cell when they spread evenly."""
    kinds = {p["name"]: p["kind"] for p in params}
    for name in (x, y):
        if kinds.get(name) not in NUMERIC:
            numeric = [n for n, k in kinds.items() if k in NUMERIC]
            raise UnknownParameter(
                f"{name[:60]!r} is no numeric hyperparameter of this study; use one of {numeric}"
            )
    errors = np.array([e if e is not None else np.nan for e in points["error"]], dtype=float)
    n = int(np.isfinite(errors).sum())
    bins = int(min(CONTOUR_BINS, max(3, round(math.sqrt(n / 2)))))
    tx, ex, log_x = _axis(points["params"].get(x, []), kinds[x] == "log", bins)
    ty, ey, log_y = _axis(points["params"].get(y, []), kinds[y] == "log", bins)
    keep = np.isfinite(tx) & np.isfinite(ty) & np.isfinite(errors)
    col = np.clip(np.searchsorted(ex, tx[keep], side="right") - 1, 0, bins - 1)
    row = np.clip(np.searchsorted(ey, ty[keep], side="right") - 1, 0, bins - 1)
    sums = np.zeros((bins, bins))
    counts = np.zeros((bins, bins))
    np.add.at(sums, (row, col), errors[keep])
    np.add.at(counts, (row, col), 1)
    with np.errstate(all="ignore"):
        means = np.where(counts > 0, sums / counts, np.nan)

    def axis(name: str, edges: np.ndarray, log: bool) -> dict[str, Any]:
        raw = np.power(10.0, edges) if log else edges
        centres = (edges[:-1] + edges[1:]) / 2
        return {
            "name": name,
            "log": log,
            "centres": (np.power(10.0, centres) if log else centres).tolist(),
            "range": [float(raw[0]), float(raw[-1])],
        }

    return {
        "x": axis(x, ex, log_x),
        "y": axis(y, ey, log_y),
        "z": [_floats(r) for r in means],
        "count": int(keep.sum()),
        "mode": mode or "min",
    }


def _dominated_by(dominators: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each of ``rows``: does some row of ``dominators`` dominate it (losses)?"""
    if not len(dominators):
        return np.zeros(len(rows), dtype=bool)
    a, b = dominators[:, None, :], rows[None, :, :]
    return np.any(np.all(a <= b, axis=2) & np.any(a < b, axis=2), axis=0)


def _front_mask(losses: np.ndarray, block: int = 64) -> np.ndarray:
    """Which rows no other row dominates (all objectives minimised; equal rows do not
    dominate each other). Rows are taken in lexicographic order, where a dominator always
    comes first. Two objectives: one sort and a running minimum. More: blocks of rows, each
    checked against itself and the front found before it (whatever dominates a row is on
    that front or dominated by a point that is)."""
    n, k = losses.shape
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    order = np.lexsort(losses.T[::-1])
    ranked = losses[order]
    if k == 2:
        a, b = ranked[:, 0], ranked[:, 1]
        start = np.searchsorted(a, a, side="left")  # first row with the same first loss
        best_b = np.minimum.accumulate(b)
        before = np.where(start > 0, best_b[np.maximum(start - 1, 0)], np.inf)
        mask[order] = ~((before <= b) | (b[start] < b))
        return mask
    front = np.zeros((0, k))
    for i in range(0, n, block):
        rows = ranked[i : i + block]
        keep = ~(_dominated_by(front, rows) | _dominated_by(rows, rows))
        mask[order[i : i + block][keep]] = True
        front = np.vstack([front, rows[keep]])
    return mask


# the latest result of each trial; its metrics read by JSON pointers (/metrics/<name>), which
# costs a fifth of turning each payload into a map
_RESULTS = """
WITH latest AS (
    SELECT trial, arg_max(error, seq) AS error, max(seq) AS seq, arg_max(payload, seq) AS payload
    FROM events WHERE study = ? AND kind = 'evaluate' AND error IS NOT NULL
    GROUP BY trial
)
SELECT l.trial, l.error, json_extract_string(l.payload, ?) FROM latest AS l
JOIN trial_status AS s ON s.study = ? AND s.trial = l.trial
WHERE s.status IN ('finished', 'paused', 'stopped')
ORDER BY l.seq
"""


def _number(text: str | None) -> float:
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _losses_row(error: float, found: Sequence[str | None]) -> list[float]:
    """A result's objectives as measured: its logged metrics, the error column for the first
    objective when its metrics do not name it."""
    first = _number(found[0]) if found[0] is not None else float(error)
    return [first, *(_number(v) for v in found[1:])]


def pareto(con: duckdb.DuckDBPyConnection, study: str) -> dict[str, Any] | None:
    """The results of a multi-objective study in the plane of its first two objectives (as
    measured) and its Pareto front: the trials with a result (finished, paused, stopped; the
    latest result of each, as the ``pareto`` view) whose objectives no other's dominate, under
    each objective's mode. None for a single-objective study. ``front`` is sorted along the
    first objective; ``points`` holds the rest, the ``PARETO_POINTS`` most recent."""
    objectives = con.execute(
        "SELECT metric, mode, sign FROM objectives WHERE study = ? ORDER BY k", [study]
    ).fetchall()
    if len(objectives) < 2:
        return None
    pointers = ["/metrics/" + m.replace("~", "~0").replace("/", "~1") for m, _o, _s in objectives]
    rows = con.execute(_RESULTS, [study, pointers, study]).fetchall()
    trials = np.array([r[0] for r in rows], dtype=np.int64)
    # as the metrics view: the error column is the first objective when the result logged
    # only its error; the others come from its metrics (a value that is no number counts as
    # missing)
    k = len(objectives)
    values = np.array(
        [_losses_row(error, found or [None] * k) for _t, error, found in rows], dtype=float
    ).reshape(len(rows), k)
    complete = np.all(np.isfinite(values), axis=1)  # a result missing an objective is no point
    trials, values = trials[complete], values[complete]
    signs = np.array([float(s) for _m, _mode, s in objectives])
    on_front = _front_mask(values * signs)
    front = np.flatnonzero(on_front)
    front = front[np.lexsort((values[front, 1], values[front, 0]))]
    rest = np.flatnonzero(~on_front)[-PARETO_POINTS:]

    def record(index: np.ndarray) -> dict[str, Any]:
        return {
            "trial": trials[index].tolist(),
            "x": _floats(values[index, 0]),
            "y": _floats(values[index, 1]),
        }

    return {
        "objectives": [{"metric": m, "mode": mode} for m, mode, _s in objectives],
        "front": record(front),
        "points": record(rest),
        "total": int(len(trials)),
    }
