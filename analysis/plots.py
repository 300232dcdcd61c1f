"""Plots of an event log (matplotlib, Agg backend): the only module that imports matplotlib.

Each function computes its data with the rest of :mod:`analysis`, draws it, returns the
:class:`~matplotlib.figure.Figure`, and writes it to ``path`` (PNG, SVG or PDF, from the
suffix) when one is given.

>>> from analysis import plots
>>> fig = plots.anytime_plot("runs/", path="anytime.png")    # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display needed, safe in workers and CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ._anytime import GroupBy, _curves, compare, study_info  # noqa: E402
from ._views import AnalysisError, Source, _table, views  # noqa: E402

FORMATS = (".png", ".svg", ".pdf")
_X_LABELS = {"elapsed": "study time (s, summed over sessions)", "n_finished": "finished trials"}


def save(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 150) -> None:
    """Write ``fig`` to ``path``; the format is the suffix (.png, .svg or .pdf)."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in FORMATS:
        raise AnalysisError(
            f"cannot save a plot as {suffix or 'no suffix'!r}: use one of {FORMATS}"
        )
    fig.savefig(path, dpi=dpi, bbox_inches="tight")


def _finish(fig: Figure, path: str | os.PathLike[str] | None) -> Figure:
    if path is not None:
        save(fig, path)
    return fig


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
    """Any-time curves: the incumbent error against study time (or finished trials).

    One colour per group (by default the algorithm: searcher + scheduler). A group of one
    study is its step curve; a group of several (seeds) is the median step curve with a
    ``quantiles`` band, and the legend says how many studies it holds.
    """
    con = views(source)
    curves = _curves(con, studies, group_by, x)
    if not curves:
        raise AnalysisError("no studies to plot: the log is empty")
    groups = list(dict.fromkeys(c.group for c in curves))
    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    colours = plt.get_cmap("tab10")
    if len(curves) > len(groups):  # seeds: bands on a common grid
        bands = compare(con, [c.study for c in curves], group_by=group_by, x=x, grid=400,
                        quantiles=quantiles, log_grid=log_x)  # fmt: skip
        for i, group in enumerate(groups):
            members = [c for c in curves if c.group == group]
            n = len(members)
            # from where every study of the group has a result: before that the median
            # would be over fewer studies and jump up as slower ones start
            rows = [r for r in bands.to_pylist() if r["group"] == group and r["n_studies"] == n]
            if not rows:
                continue
            xs = np.array([r["x"] for r in rows])
            colour = colours(i % 10)
            label = _label(group, members[0].algorithm)
            label += f": median of {n} studies" if n > 1 else f" ({members[0].study})"
            ax.step(xs, [r["median"] for r in rows], where="post", color=colour, lw=2, label=label)
            if n > 1:
                ax.fill_between(xs, [r["q_low"] for r in rows], [r["q_high"] for r in rows],
                                step="post", color=colour, alpha=0.2, lw=0)  # fmt: skip
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
    ax.set_ylabel("best error so far (incumbent)")
    ax.set_title(title or default_title)
    ax.grid(True, alpha=0.3)
    ax.legend(title="searcher + scheduler", fontsize=9, loc="upper right")
    return _finish(fig, path)


def _label(group: str, algorithm: str) -> str:
    """The legend entry: the group, and the algorithm when the group does not name it."""
    return group if group == algorithm else f"{group}: {algorithm}"


def _study_list(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 3 else f"{len(names)} studies"


def learning_curves_plot(
    source: Source,
    study: str,
    *,
    log_y: bool = False,
    max_trials: int | None = 200,
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Learning curves: error against resource per trial, coloured by the trial's final error,
    with the scheduler's stop (×) and promote (▲) decisions where they were taken.

    ``max_trials`` keeps the best ones when a study has more (None: all).
    """
    con = views(source)
    info = study_info(con, [study])
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
    if max_trials is not None and len(curves) > max_trials:
        keep = set(sorted(final, key=lambda t: final[t])[:max_trials])
        curves = {t: ps for t, ps in curves.items() if t in keep}
    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    errors = np.array([final[t] for t in curves])
    norm = matplotlib.colors.Normalize(vmin=float(errors.min()), vmax=float(errors.max()) or 1.0)
    cmap = plt.get_cmap("viridis_r")
    no_resource = all(p["resource"] is None for ps in curves.values() for p in ps)
    for trial, ps in curves.items():
        xs = [_resource(p, i) for i, p in enumerate(ps)]
        ys = [p["error"] for p in ps]
        ax.plot(xs, ys, "-o", color=cmap(norm(final[trial])), lw=1.2, ms=3, alpha=0.85)
    decisions = _table(
        con,
        "SELECT d.trial, d.decision, d.seq, d.resource FROM decisions d WHERE d.study = ?",
        [study],
    ).to_pylist()
    marks = {"stop": ("x", "stopped", "tab:red"), "promote": ("^", "promoted", "tab:green"),
             "pause": ("s", "paused", "tab:orange")}  # fmt: skip
    shown: set[str] = set()
    for d in decisions:
        curve = curves.get(d["trial"])
        if not curve:
            continue
        before = [(i, p) for i, p in enumerate(curve) if p["seq"] <= d["seq"]] or [(0, curve[0])]
        i, p = before[-1]
        marker, label, colour = marks[d["decision"]]
        ax.plot([_resource(p, i)], [p["error"]], marker, color=colour, ms=9, mew=2,
                label=label if d["decision"] not in shown else None, zorder=5)  # fmt: skip
        shown.add(d["decision"])
    sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=ax, label="final error of the trial")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("result number" if no_resource else "resource (epochs / steps reached)")
    ax.set_ylabel("error")
    label = _algorithm(info)
    ax.set_title(title or f"Learning curves of {len(curves)} trials: {study} ({label})")
    ax.grid(True, alpha=0.3)
    if shown:
        ax.legend(title="scheduler decisions", fontsize=9)
    return _finish(fig, path)


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
    """Error of each finished trial against each hyperparameter (one panel per parameter).

    A numeric parameter that the config space samples log-uniformly, or that spans more than
    two decades of positive values, gets a log axis; a categorical one a category axis. The
    best trial is circled.
    """
    con = views(source)
    info = study_info(con, [study])
    rows = _table(
        con,
        "SELECT trial, status, config, error FROM trials WHERE study = ? AND error IS NOT NULL ORDER BY trial",
        [study],
    ).to_pylist()
    if not rows:
        raise AnalysisError(f"study {study!r} has no trial with a result to plot")
    configs = [json.loads(r["config"]) for r in rows]
    names = (
        list(params) if params is not None else list(dict.fromkeys(k for c in configs for k in c))
    )
    if not names:
        raise AnalysisError(f"study {study!r} has no hyperparameters to plot against")
    log_names = _log_uniform(con, study)
    cols = min(3, len(names))
    nrows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.6 * nrows), squeeze=False,
                             sharey=True, layout="constrained")  # fmt: skip
    errors = np.array([r["error"] for r in rows], dtype=float)
    stopped = np.array([r["status"] == "stopped" for r in rows])
    best = int(np.argmin(np.where(stopped, np.inf, errors) if not stopped.all() else errors))
    for k, name in enumerate(names):
        ax = axes[k // cols][k % cols]
        values = [c.get(name) for c in configs]
        present = [i for i, v in enumerate(values) if v is not None]
        vs = [values[i] for i in present]
        es = errors[present]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vs):
            xs = np.array(vs, dtype=float)
            _points(ax, xs, es, stopped[present], first=k == 0)
            positive = xs[xs > 0]
            if name in log_names or (
                positive.size == xs.size and xs.size and positive.max() / positive.min() > 100
            ):
                ax.set_xscale("log")
        else:
            cats = sorted({str(v) for v in vs})
            pos = {c: i for i, c in enumerate(cats)}
            jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(vs))
            xs = np.array([pos[str(v)] for v in vs]) + jitter
            _points(ax, xs, es, stopped[present], first=k == 0)
            ax.set_xticks(range(len(cats)), cats)
        if best in present:
            j = present.index(best)
            label = f"best (trial {rows[best]['trial']})" if k == 0 else None
            ax.scatter([xs[j]], [es[j]], s=120, facecolors="none", edgecolors="tab:red", lw=2,
                       label=label)  # fmt: skip
        ax.set_xlabel(name)
        if k % cols == 0:
            ax.set_ylabel("final error")
        if log_y:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
    for k in range(len(names), nrows * cols):
        axes[k // cols][k % cols].set_visible(False)
    fig.legend(loc="outside lower center", ncols=3, fontsize=9)
    fig.suptitle(
        title
        or f"Error against each hyperparameter: {study} ({_algorithm(info)}, {len(rows)} trials with a result)"
    )
    return _finish(fig, path)


def _points(ax: Any, xs: np.ndarray, es: np.ndarray, stopped: np.ndarray, *, first: bool) -> None:
    done = ~stopped
    ax.scatter(xs[done], es[done], s=18, alpha=0.75, color="tab:blue",
               label="finished" if first else None)  # fmt: skip
    if stopped.any():
        ax.scatter(xs[stopped], es[stopped], s=18, alpha=0.75, facecolors="none",
                   edgecolors="0.45", label="stopped early (error at its last resource)" if first else None)  # fmt: skip


def _log_uniform(con: Any, study: str) -> set[str]:
    """Hyperparameters the study's config space samples log-uniformly (from its spec)."""
    rows = _table(
        con, "SELECT payload FROM events WHERE study = ? AND kind = 'study'", [study]
    ).to_pylist()
    try:
        space = json.loads(rows[0]["payload"]).get("space") or {}
    except (IndexError, TypeError, ValueError, AttributeError):
        return set()
    if not isinstance(space, dict):
        return set()
    return {
        name
        for name, domain in space.items()
        if isinstance(domain, dict) and domain.get("dist") in ("loguniform", "reciprocal")
    }


def plot(source: Source, kind: str, studies: Sequence[str], **options: Any) -> Figure:
    """The plot ``kind`` of ``studies`` (``hpostore plot --kind``); ``options`` that the kind
    does not take are ignored."""
    if kind == "anytime":
        keys = ("group_by", "x", "log_x", "log_y", "title")
        return anytime_plot(source, studies, **{k: v for k, v in options.items() if k in keys})
    kinds: dict[str, Callable[..., Figure]] = {
        "learning-curves": learning_curves_plot,
        "scatter": scatter_plot,
    }
    draw = kinds.get(kind)
    if draw is None:
        raise AnalysisError(f"no plot kind {kind!r}: use one of anytime, learning-curves, scatter")
    if len(studies) != 1:
        raise AnalysisError(f"--kind {kind} plots one study, got {len(studies)}")
    return draw(source, studies[0], **{k: v for k, v in options.items() if k in ("log_y", "title")})
