"""More plots of one study: parallel coordinates, hyperparameter importance, worker timeline.

The worker timeline shows which trial ran where and when.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ._importance import importance
from ._plotting import Param, constant_note, finish, new_figure, results, study_objective
from ._views import AnalysisError, Source, _table, views


def parallel_plot(
    source: Source,
    study: str,
    params: Sequence[str] | None = None,
    *,
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Parallel coordinates: one vertical axis per hyperparameter that varies, and the
    result last; each trial with a result is a line across them, coloured by its result
    (the best drawn on top). Log-scale parameters (from the logged space) are placed on a
    log scale; categories evenly."""
    con = views(source)
    _, objective = study_objective(con, study)
    res = results(con, study, params)
    if not res.params:
        raise AnalysisError(f"study {study!r} has no hyperparameter that varies to draw")
    errors = np.array(res.errors, dtype=float)
    columns = [_unit(p) for p in res.params]
    columns.append(_unit(Param(objective.metric, list(res.errors), "linear")))
    names = [p.name for p in res.params] + [objective.metric]
    fig = new_figure(max(6.0, 1.6 * len(names) + 1.5), 5)
    ax = fig.add_subplot()
    norm = Normalize(vmin=float(errors.min()), vmax=float(errors.max()) or 1.0)
    cmap = colormaps["viridis_r" if objective.mode == "min" else "viridis"]
    xs = np.arange(len(names))
    for i in np.argsort(-objective.sign * errors):  # the best last, on top
        ys = np.array([c[0][i] for c in columns], dtype=float)
        ax.plot(xs, ys, color=cmap(norm(errors[i])), lw=1, alpha=0.7)
    for k, (_, ticks) in enumerate(columns):
        ax.axvline(k, color="0.3", lw=1)
        for y, text in ticks:
            ax.text(k + 0.04, y, text, fontsize=8, va="center", ha="left")
    ax.set_xticks(xs, [n + (" (log)" if k < len(res.params) and res.params[k].scale == "log"
                            else "") for k, n in enumerate(names)])  # fmt: skip
    ax.set_yticks([])
    ax.set_xlim(-0.2, len(names) - 0.6)
    ax.set_ylim(-0.05, 1.05)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=objective.metric)
    note = constant_note(res.constant)
    ax.set_title((title or f"Parallel coordinates: {study}, {len(res.trials)} trials with a "
                  "result") + (f"\n{note}" if note else ""))  # fmt: skip
    return finish(fig, path)


def _unit(param: Param) -> tuple[list[float], list[tuple[float, str]]]:
    """The values placed on [0, 1] (NaN where missing) and the axis's tick labels."""
    if param.scale == "category":
        cats = sorted({str(v) for v in param.values if v is not None})
        step = 1.0 / max(1, len(cats) - 1)
        pos = {c: i * step if len(cats) > 1 else 0.5 for i, c in enumerate(cats)}
        values = [pos[str(v)] if v is not None else float("nan") for v in param.values]
        return values, [(pos[c], c) for c in cats]
    raw = np.array([v if v is not None else np.nan for v in param.values], dtype=float)
    t = np.log10(raw) if param.scale == "log" else raw
    lo, hi = float(np.nanmin(t)), float(np.nanmax(t))
    span = hi - lo or 1.0
    values = ((t - lo) / span).tolist()
    low, high = float(np.nanmin(raw)), float(np.nanmax(raw))
    return values, [(0.0, f"{low:.3g}"), (1.0, f"{high:.3g}")]


def importance_plot(
    source: Source,
    study: str,
    params: Sequence[str] | None = None,
    *,
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Hyperparameter importance: for each hyperparameter that varies, the share of the
    result's variance it explains on its own (correlation ratio η² over up to 10 equal-count
    bins of at least 5 trials, or its categories). Interactions are not seen."""
    con = views(source)
    _, objective = study_objective(con, study)
    res = results(con, study, params)
    if not res.params:
        raise AnalysisError(f"study {study!r} has no hyperparameter that varies to rank")
    scores = importance({p.name: p.values for p in res.params}, res.errors)[::-1]
    fig = new_figure(7, 1.2 + 0.45 * len(scores))
    ax = fig.add_subplot()
    ax.barh([n for n, _ in scores], [s for _, s in scores], color="tab:blue")
    for y, (_, s) in enumerate(scores):
        ax.text(s + 0.01, y, f"{s:.2f}", va="center", fontsize=9)
    ax.set_xlim(0, 1.08)
    ax.set_xlabel(f"share of the variance of {objective.metric} explained alone (η²)")
    note = constant_note(res.constant)
    ax.set_title((title or f"Hyperparameter importance: {study}, {len(res.trials)} trials") +
                 (f"\n{note}" if note else ""))  # fmt: skip
    ax.grid(True, axis="x", alpha=0.3)
    return finish(fig, path)


# how a run (a start of a trial) ended -> legend label and colour
_OUTCOMES = {
    "evaluate": ("finished", "tab:blue"),
    "fail": ("failed", "tab:red"),
    "interrupt": ("interrupted", "0.55"),
    "pause": ("paused by the scheduler", "tab:orange"),
    "stop": ("stopped by the scheduler", "tab:purple"),
    None: ("running, or its process died", "0.8"),
}


def timeline_plot(
    source: Source,
    study: str,
    *,
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """The worker timeline: one row per worker, one bar per run of a trial (from its start
    to its result, failure, interruption, pause or stop), coloured by how it ended, against
    study time — the picture of (a)synchronous scheduling. In a process pool a run starts
    when the tuner hands the trial out, so it includes any wait for a free worker."""
    con = views(source)
    runs = _table(
        con,
        """
        WITH starts AS (
            SELECT trial, seq, elapsed, worker FROM events WHERE study = ? AND kind = 'start'
        ),
        ends AS (
            SELECT trial, seq, elapsed, kind, worker FROM events
            WHERE study = ? AND kind IN ('evaluate', 'fail', 'interrupt', 'pause', 'stop', 'start')
        ),
        runs AS (
            SELECT s.seq, s.trial, s.worker, s.elapsed AS t0,
                   arg_min(e.elapsed, e.seq) AS t1,
                   arg_min(e.kind, e.seq) AS outcome,
                   arg_min(e.worker, e.seq) AS end_worker
            FROM starts s LEFT JOIN ends e ON e.trial = s.trial AND e.seq > s.seq
            GROUP BY s.seq, s.trial, s.worker, s.elapsed
        )
        -- a pool names the worker on the result, a single process on the start
        SELECT trial, coalesce(worker, end_worker, '?') AS worker, t0, t1, outcome
        FROM runs ORDER BY seq
        """,
        [study, study],
    ).to_pylist()
    if not runs:
        raise AnalysisError(f"study {study!r} has no started trial to draw")
    last = _table(con, "SELECT max(elapsed) AS t FROM events WHERE study = ?", [study])
    study_end = float(last.column("t")[0].as_py() or 0.0)
    workers = sorted({r["worker"] for r in runs})
    row = {w: i for i, w in enumerate(workers)}
    fig = new_figure(10, 1.5 + 0.4 * len(workers))
    ax = fig.add_subplot()
    seen: set[Any] = set()
    for r in runs:
        # a next start of the same trial: its process died and the trial was run again
        outcome = r["outcome"] if r["outcome"] != "start" else None
        t1 = r["t1"] if r["t1"] is not None else study_end
        _, colour = _OUTCOMES.get(outcome, _OUTCOMES[None])
        width = max(float(t1) - float(r["t0"]), study_end * 1e-3)
        ax.broken_barh([(float(r["t0"]), width)], (row[r["worker"]] - 0.4, 0.8),
                       facecolors=colour, edgecolors="white", lw=0.5)  # fmt: skip
        seen.add(outcome if outcome in _OUTCOMES else None)
    ax.set_yticks(range(len(workers)), workers)
    ax.set_xlabel("study time (s, summed over sessions)")
    ax.set_ylabel("worker")
    ax.set_title(title or f"Worker timeline: {study}, {len(runs)} runs of "
                 f"{len({r['trial'] for r in runs})} trials on {len(workers)} worker(s)")  # fmt: skip
    ax.grid(True, axis="x", alpha=0.3)
    handles = [Patch(color=c, label=label) for k, (label, c) in _OUTCOMES.items() if k in seen]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=9)
    return finish(fig, path)
