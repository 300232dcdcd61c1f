"""Plots of multi-objective studies: the Pareto front and the hypervolume any-time curve."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from matplotlib.figure import Figure

from ._pareto import _objectives, hypervolume
from ._plotting import finish, new_figure
from ._views import AnalysisError, Source, _table, views


def pareto_plot(
    source: Source,
    study: str,
    *,
    objectives: Sequence[str] | None = None,
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Every result of ``study`` in the plane of two objectives (default: its first two), the
    non-dominated ones (the ``pareto`` view) joined as a step line. Axes in measured units."""
    con = views(source)
    names, _ = _objectives(con, study)
    pair = list(objectives) if objectives is not None else names[:2]
    if len(pair) != 2:
        raise AnalysisError(
            f"study {study!r} has objectives {names}: a Pareto plot needs two; pass "
            "objectives=[name1, name2] (any two logged metrics)"
        )
    rows = _table(
        con,
        "SELECT trial, metric, value FROM metrics WHERE study = ? AND kind = 'evaluate' "
        "AND list_contains(?, metric) ORDER BY seq",
        [study, pair],
    ).to_pylist()
    points: dict[int, dict[str, float]] = {}
    for r in rows:  # the latest result of each trial
        points.setdefault(r["trial"], {})[r["metric"]] = r["value"]
    both = {t: (p[pair[0]], p[pair[1]]) for t, p in points.items() if len(p) == 2}
    if not both:
        raise AnalysisError(f"study {study!r} has no result with both {pair[0]!r} and {pair[1]!r}")
    front_rows = _table(con, "SELECT trial, metrics FROM pareto WHERE study = ?", [study])
    front = [
        both[t] for t in front_rows.column("trial").to_pylist() if t in both
    ]  # fmt: skip
    fig = new_figure(5.5, 4.5)
    ax = fig.add_subplot()
    xs, ys = zip(*both.values())
    ax.scatter(xs, ys, s=14, alpha=0.5, color="0.5", label="results")
    if front:
        fx, fy = zip(*sorted(front))
        ax.step(fx, fy, where="post", color="C3", linewidth=1.2)
        ax.scatter(fx, fy, s=24, color="C3", label="Pareto front")
    ax.set_xlabel(pair[0])
    ax.set_ylabel(pair[1])
    ax.set_title(title or f"{study}: Pareto front ({len(front)} of {len(both)} results)")
    ax.legend(loc="best", fontsize="small")
    return finish(fig, path)


def hypervolume_plot(
    source: Source,
    study: str,
    reference: Sequence[float],
    *,
    x: str = "n_finished",
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """The hypervolume any-time curve of ``study`` (:func:`analysis.hypervolume`) as a step
    plot against finished results (``x="n_finished"``) or study time (``x="elapsed"``)."""
    if x not in ("n_finished", "elapsed"):
        raise AnalysisError(f"x must be 'n_finished' or 'elapsed', got {x!r}")
    table = hypervolume(source, study, reference)
    if not table.num_rows:
        raise AnalysisError(f"study {study!r} has no results to plot")
    fig = new_figure(6.0, 4.0)
    ax = fig.add_subplot()
    ax.step(table.column(x).to_pylist(), table.column("hypervolume").to_pylist(), where="post")
    ax.set_xlabel("finished trials" if x == "n_finished" else "study time (s)")
    ax.set_ylabel(f"hypervolume (reference {json.dumps(list(reference))})")
    ax.set_title(title or f"{study}: hypervolume")
    return finish(fig, path)
