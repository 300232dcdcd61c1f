"""Plots of an event log (matplotlib); only this module and its helpers import matplotlib.

Each function computes its data with the rest of :mod:`analysis`, draws it on a figure of
its own (no pyplot: the global backend is never changed, so notebooks keep inline plots),
returns the :class:`~matplotlib.figure.Figure`, and writes it to ``path`` (PNG, SVG or PDF,
from the suffix) when one is given. Studies that optimise different metrics (or directions)
are refused on one axis.

>>> from analysis import plots
>>> fig = plots.anytime_plot("runs/", path="anytime.png")    # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from ._anytime import GroupBy, _curves, compare, study_info
from ._plot_more import importance_plot, parallel_plot, timeline_plot
from ._plot_pareto import hypervolume_plot, pareto_plot
from ._plot_trials import learning_curves_plot, scatter_plot
from ._plotting import FORMATS, finish, new_figure, one_objective, save
from ._views import AnalysisError, Source, views

__all__ = [
    "FORMATS",
    "KINDS",
    "anytime_plot",
    "hypervolume_plot",
    "importance_plot",
    "learning_curves_plot",
    "parallel_plot",
    "pareto_plot",
    "plot",
    "save",
    "scatter_plot",
    "timeline_plot",
]

_X_LABELS = {"elapsed": "study time (s, summed over sessions)", "n_finished": "finished trials"}
_LEGEND_TITLES = {
    "algorithm": "searcher + scheduler",
    "searcher": "searcher",
    "scheduler": "scheduler",
    "study": "study",
}


def anytime_plot(
    source: Source,
    studies: Sequence[str] | None = None,
    *,
    group_by: GroupBy = "algorithm",
    x: str = "elapsed",
    log_x: bool = False,
    log_y: bool = False,
    quantiles: tuple[float, float] = (0.25, 0.75),
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Any-time curves: the incumbent against study time (or finished trials).

    One colour per group (by default the algorithm: searcher + scheduler). A group of one
    study is its step curve; a group of several (seeds) is the median step curve with a
    ``quantiles`` band, and the legend says how many studies it holds. Each curve ends where
    its own studies end. Studies of different metrics or modes are refused.
    """
    con = views(source)
    objective = one_objective(study_info(con, studies))
    curves = _curves(con, studies, group_by, x)
    if not curves:
        raise AnalysisError("no studies to plot: the log is empty")
    groups = list(dict.fromkeys(c.group for c in curves))
    fig = new_figure(8, 5.5)
    ax = fig.add_subplot()
    colours = colormaps["tab10"]
    if len(curves) > len(groups):  # seeds: bands on a common grid
        bands = compare(con, [c.study for c in curves], group_by=group_by, x=x, grid=400,
                        quantiles=quantiles, log_grid=log_x).to_pylist()  # fmt: skip
        for i, group in enumerate(groups):
            members = [c for c in curves if c.group == group]
            n = len(members)
            end = max(max(c.end, float(c.x[-1]) if c.x.size else 0.0) for c in members)
            # from where every study of the group has a result (before that the median would
            # be over fewer studies and jump up as slower ones start) to the group's own end
            rows = [r for r in bands if r["group"] == group and r["n_studies"] == n]
            rows = [r for r in rows if r["x"] <= end]
            if not rows:
                continue
            xs = np.array([r["x"] for r in rows] + [end])
            colour = colours(i % 10)
            label = _label(group, members[0].algorithm)
            label += f": median of {n} studies" if n > 1 else f" ({members[0].study})"
            median = [r["median"] for r in rows]
            ax.step(xs, median + median[-1:], where="post", color=colour, lw=2, label=label)
            if n > 1:
                low, high = [r["q_low"] for r in rows], [r["q_high"] for r in rows]
                ax.fill_between(xs, low + low[-1:], high + high[-1:], step="post",
                                color=colour, alpha=0.2, lw=0)  # fmt: skip
            ax.plot([end], [median[-1]], "|", color=colour, ms=10, mew=2)
        lo, hi = quantiles
        default_title = (
            f"Any-time performance, {len(curves)} studies (bands: {lo:.0%}–{hi:.0%} quantiles)"
        )
    else:
        default_title = f"Any-time performance: {_study_list([c.study for c in curves])}"
        for i, curve in enumerate(curves):
            if not curve.x.size:
                continue
            end = max(curve.end, float(curve.x[-1]))
            xs = np.append(curve.x, end)
            ys = np.append(curve.best, curve.best[-1])
            label = _label(curve.group, curve.algorithm)
            if curve.group != curve.study:
                label += f" ({curve.study})"
            ax.step(xs, ys, where="post", color=colours(i % 10), lw=2, label=label)
            ax.plot(curve.x, curve.best, "o", color=colours(i % 10), ms=4)
    if log_x:
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(_X_LABELS.get(x, x))
    best = "lowest" if objective.mode == "min" else "highest"
    ax.set_ylabel(f"best {objective.metric} so far (incumbent, {best} is best)")
    ax.set_title(title or default_title)
    ax.grid(True, alpha=0.3)
    legend_title = _LEGEND_TITLES.get(group_by) if isinstance(group_by, str) else None
    # under the axes, never over a curve; a lone curve's label says what it is
    fig.legend(loc="outside lower center", fontsize=9, ncols=min(2, len(groups)),
               title=legend_title if len(groups) > 1 else None)  # fmt: skip
    return finish(fig, path)


def _label(group: str, algorithm: str) -> str:
    """The legend entry: the group, and the algorithm when the group does not name it."""
    return group if group == algorithm else f"{group}: {algorithm}"


def _study_list(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 3 else f"{len(names)} studies"


#: the kinds of :func:`plot` (``hpostore plot --kind``)
KINDS: dict[str, Callable[..., Figure]] = {
    "anytime": anytime_plot,
    "learning-curves": learning_curves_plot,
    "scatter": scatter_plot,
    "slice": scatter_plot,  # Optuna's name for it
    "parallel": parallel_plot,
    "importance": importance_plot,
    "timeline": timeline_plot,
}
_OPTIONS = {
    "anytime": ("group_by", "x", "log_x", "log_y", "title"),
    "learning-curves": ("log_y", "title"),
    "scatter": ("log_y", "title"),
    "slice": ("log_y", "title"),
}


def plot(source: Source, kind: str, studies: Sequence[str], **options: Any) -> Figure:
    """The plot ``kind`` (one of :data:`KINDS`) of ``studies``; ``options`` that the kind
    does not take are ignored. Every kind but ``anytime`` draws one study."""
    draw = KINDS.get(kind)
    if draw is None:
        raise AnalysisError(f"no plot kind {kind!r}: use one of {', '.join(KINDS)}")
    chosen = {k: v for k, v in options.items() if k in _OPTIONS.get(kind, ("title",))}
    if kind == "anytime":
        return draw(source, studies, **chosen)
    if len(studies) != 1:
        raise AnalysisError(f"--kind {kind} plots one study, got {len(studies)}")
    return draw(source, studies[0], **chosen)
