"""Plots of one study's trials: learning curves with decisions, result against each parameter.

The learning curves carry the scheduler's decisions; the result against each hyperparameter
is a scatter.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from ._plotting import constant_note, finish, new_figure, results, study_objective
from ._views import AnalysisError, Source, _table, views

__all__ = ["learning_curves_plot", "scatter_plot"]

# decision -> (marker, legend label, colour, size); pauses are many (every trial at every
# rung of an asynchronous scheduler) and small, hollow and light so the curves stay visible
_MARKS = {
    "stop": ("x", "stopped", "tab:red", 7),
    "promote": ("^", "promoted", "tab:green", 6),
    "pause": ("s", "paused", "tab:orange", 4),
}


def learning_curves_plot(
    source: Source,
    study: str,
    *,
    log_y: bool = False,
    max_trials: int | None = 200,
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Learning curves: the metric against resource per trial, coloured by the trial's final
    value, with the scheduler's stop (×), promote (▲) and pause (□) decisions where they were
    taken.

    ``max_trials`` keeps the best ones when a study has more (None: all); the title then
    says how many of how many are drawn.
    """
    con = views(source)
    info, objective = study_objective(con, study)
    points = _table(
        con,
        "SELECT trial, seq, kind, resource, error FROM learning_curves WHERE study = ? ORDER BY trial, seq",
        [study],
    ).to_pylist()
    if not points:
        raise AnalysisError(f"study {study!r} has no reported or evaluated results to plot")
    curves: dict[int, list[dict[str, Any]]] = {}
    for p in points:
        curves.setdefault(p["trial"], []).append(p)
    if max(len(ps) for ps in curves.values()) < 2:
        raise AnalysisError(
            f"study {study!r} has one result per trial and no intermediate `report` events: "
            "there are no learning curves to draw (plot it with the anytime or scatter kind)"
        )
    final = {t: ps[-1]["error"] for t, ps in curves.items()}
    total = len(curves)
    if max_trials is not None and total > max_trials:
        keep = set(sorted(final, key=lambda t: objective.sign * final[t])[:max_trials])
        curves = {t: ps for t, ps in curves.items() if t in keep}
    fig = new_figure(9, 5.5)
    ax = fig.add_subplot()
    errors = np.array([final[t] for t in curves])
    norm = Normalize(vmin=float(errors.min()), vmax=float(errors.max()) or 1.0)
    cmap = colormaps["viridis_r" if objective.mode == "min" else "viridis"]
    no_resource = all(p["resource"] is None for ps in curves.values() for p in ps)
    # the best on top
    for trial in sorted(curves, key=lambda t: -objective.sign * final[t]):
        ps = curves[trial]
        xs = [_resource(p, i) for i, p in enumerate(ps)]
        ys = [p["error"] for p in ps]
        ax.plot(xs, ys, "-o", color=cmap(norm(final[trial])), lw=1.2, ms=2.5, alpha=0.85,
                zorder=2)  # fmt: skip
    _decision_marks(ax, con, study, curves)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax,
                 label=f"final {objective.metric} of the trial")  # fmt: skip
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("result number" if no_resource else "resource (epochs / steps reached)")
    ax.set_ylabel(objective.metric)
    which = (
        f"the best {len(curves):,} of {total:,} trials"
        if len(curves) < total
        else (f"{total:,} trials")
    )
    ax.set_title(title or f"Learning curves of {which}: {study} ({_algorithm(info)})")
    ax.grid(True, alpha=0.3)
    return finish(fig, path)


def _decision_marks(ax: Any, con: Any, study: str, curves: dict[int, list[dict[str, Any]]]) -> None:
    decisions = _table(
        con,
        "SELECT trial, decision, seq FROM decisions WHERE study = ? ORDER BY seq",
        [study],
    ).to_pylist()
    placed: dict[str, set[tuple[float, float]]] = {k: set() for k in _MARKS}
    counts = dict.fromkeys(_MARKS, 0)
    for d in decisions:
        curve = curves.get(d["trial"])
        if not curve or d["decision"] not in _MARKS:
            continue
        before = [(i, p) for i, p in enumerate(curve) if p["seq"] <= d["seq"]] or [(0, curve[0])]
        i, p = before[-1]
        placed[d["decision"]].add((_resource(p, i), float(p["error"])))
        counts[d["decision"]] += 1
    for decision, spots in placed.items():
        if not spots:
            continue
        marker, label, colour, size = _MARKS[decision]
        xs, ys = zip(*sorted(spots))  # one mark per spot, however many decisions fell on it
        pause = decision == "pause"
        ax.plot(xs, ys, marker, ls="none", color=colour, ms=size, mew=1 if pause else 2,
                mfc="none", alpha=0.6 if pause else 0.9, zorder=1 if pause else 3,
                label=f"{label} ({counts[decision]})")  # fmt: skip
    if any(placed.values()):
        ax.figure.legend(loc="outside lower center", ncols=3, fontsize=9,
                         title="scheduler decisions")  # fmt: skip


def _resource(point: dict[str, Any], index: int) -> float:
    return float(point["resource"]) if point["resource"] is not None else float(index + 1)


def _algorithm(info: Any) -> str:
    return str(info.column("algorithm").to_pylist()[0])


def scatter_plot(
    source: Source,
    study: str,
    params: Sequence[str] | None = None,
    *,
    log_y: bool = False,
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """The result of each trial against each hyperparameter (one panel per parameter that
    takes more than one value; the constant ones are named under the title).

    A numeric parameter gets a log axis when the logged config space samples it from a
    log-scale family (loguniform), never from the span of the values; a categorical one a
    category axis. The best trial is circled.
    """
    con = views(source)
    info, objective = study_objective(con, study)
    res = results(con, study, params)
    if not res.params:
        raise AnalysisError(
            f"study {study!r} has no hyperparameter that varies to plot against"
            + (f" ({constant_note(res.constant)})" if res.constant else "")
        )
    cols = min(3, len(res.params))
    nrows = math.ceil(len(res.params) / cols)
    fig = new_figure(4.2 * cols, 3.6 * nrows + 0.6)
    axes = fig.subplots(nrows, cols, squeeze=False, sharey=True)
    errors = np.array(res.errors, dtype=float)
    stopped = np.array([s == "stopped" for s in res.status])
    ranked = np.where(stopped, np.inf, objective.sign * errors)
    best = int(np.argmin(ranked if not stopped.all() else objective.sign * errors))
    for k, param in enumerate(res.params):
        ax = axes[k // cols][k % cols]
        present = [i for i, v in enumerate(param.values) if v is not None]
        vs = [param.values[i] for i in present]
        es = errors[present]
        if param.scale == "category":
            cats = sorted({str(v) for v in vs})
            pos = {c: i for i, c in enumerate(cats)}
            jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(vs))
            xs = np.array([pos[str(v)] for v in vs]) + jitter
            ax.set_xticks(range(len(cats)), cats)
        else:
            xs = np.array(vs, dtype=float)
            if param.scale == "log":
                ax.set_xscale("log")
        _points(ax, xs, es, stopped[present], first=k == 0)
        if best in present:
            j = present.index(best)
            label = f"best (trial {res.trials[best]})" if k == 0 else None
            ax.scatter([xs[j]], [es[j]], s=120, facecolors="none", edgecolors="tab:red", lw=2,
                       label=label)  # fmt: skip
        ax.set_xlabel(param.name + (" (log scale)" if param.scale == "log" else ""))
        if k % cols == 0:
            ax.set_ylabel(f"final {objective.metric}")
        if log_y:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
    for k in range(len(res.params), nrows * cols):
        axes[k // cols][k % cols].set_visible(False)
    fig.legend(loc="outside lower center", ncols=3, fontsize=9)
    heading = title or (
        f"{objective.metric} against each hyperparameter: {study} ({_algorithm(info)}, "
        f"{len(res.trials)} trials with a result)"
    )
    note = constant_note(res.constant)
    fig.suptitle(heading + (f"\n{note}" if note else ""))
    return finish(fig, path)


def _points(ax: Any, xs: np.ndarray, es: np.ndarray, stopped: np.ndarray, *, first: bool) -> None:
    done = ~stopped
    ax.scatter(xs[done], es[done], s=18, alpha=0.75, color="tab:blue",
               label="finished" if first else None)  # fmt: skip
    if stopped.any():
        ax.scatter(xs[stopped], es[stopped], s=18, alpha=0.75, facecolors="none",
                   edgecolors="0.45", label="stopped early (value at its last resource)" if first else None)  # fmt: skip
