"""What the plot kinds share: figures without pyplot, saving, axis scales, trials, objective.

Axis scales come from the logged config space; the trials are those with a result; studies
drawn together must share one objective.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ._anytime import study_info
from ._views import AnalysisError, _table

FORMATS = (".png", ".svg", ".pdf")

#: scipy.stats families whose samples spread over decades: their axes are logarithmic
LOG_FAMILIES = frozenset({"loguniform", "reciprocal", "lognorm"})


def new_figure(width: float, height: float) -> Figure:
    """A figure of its own (no pyplot, no global backend): shown inline by notebooks,
    drawn by Agg when saved."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 150) -> None:
    """Write ``fig`` to ``path``; the format is the suffix (.png, .svg or .pdf)."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in FORMATS:
        raise AnalysisError(
            f"cannot save a plot as {suffix or 'no suffix'!r}: use one of {FORMATS}"
        )
    fig.savefig(path, dpi=dpi, bbox_inches="tight")


def finish(fig: Figure, path: str | os.PathLike[str] | None) -> Figure:
    if path is not None:
        save(fig, path)
    return fig


@dataclass(frozen=True)
class Objective:
    """The metric the studies optimise and its direction."""

    metric: str
    mode: str

    @property
    def sign(self) -> float:
        """1 when smaller is better, -1 when larger is."""
        return -1.0 if self.mode == "max" else 1.0


def one_objective(info: Any) -> Objective:
    """The objective every study in ``info`` (the studies view) shares; refuses a mix, which
    would put unlike numbers on one axis."""
    pairs = [
        (m or "error", d or "min")
        for m, d in zip(info.column("metric").to_pylist(), info.column("mode").to_pylist())
    ]
    kinds = sorted(set(pairs))
    if len(kinds) > 1:
        names = info.column("study").to_pylist()
        example = {k: next(n for n, p in zip(names, pairs) if p == k) for k in kinds}
        listed = "; ".join(f"{m} ({d}): e.g. {example[(m, d)]!r}" for m, d in kinds)
        raise AnalysisError(
            f"these studies optimise different objectives ({listed}): one axis cannot show "
            "them; plot each objective's studies separately"
        )
    metric, mode = kinds[0] if kinds else ("error", "min")
    return Objective(metric, mode)


def study_objective(con: duckdb.DuckDBPyConnection, study: str) -> tuple[Any, Objective]:
    info = study_info(con, [study])
    return info, one_objective(info)


@dataclass(frozen=True)
class Param:
    """A hyperparameter as a plot draws it."""

    name: str
    values: list[Any]  # per trial with a result; None where the trial has no such key
    scale: str  # "log", "linear" or "category"


@dataclass(frozen=True)
class Results:
    """The trials of a study with a result, and their hyperparameters."""

    trials: list[int]
    status: list[str]
    errors: list[float]
    params: list[Param]  # those that vary
    constant: dict[str, Any]  # name -> the one value the others all had


def results(con: duckdb.DuckDBPyConnection, study: str, names: Sequence[str] | None) -> Results:
    rows = _table(
        con,
        "SELECT trial, status, config, error FROM trials "
        "WHERE study = ? AND error IS NOT NULL ORDER BY trial",
        [study],
    ).to_pylist()
    if not rows:
        raise AnalysisError(f"study {study!r} has no trial with a result to plot")
    configs = [json.loads(r["config"]) if r["config"] else {} for r in rows]
    if names is None:
        names = list(dict.fromkeys(k for c in configs for k in c))
    space = logged_space(con, study)
    params, constant = [], {}
    for name in names:
        values = [c.get(name) for c in configs]
        distinct = {json.dumps(v, sort_keys=True) for v in values if v is not None}
        if len(distinct) <= 1:
            constant[name] = next((v for v in values if v is not None), None)
            continue
        numeric = all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values if v is not None
        )
        if not numeric:
            scale = "category"
        elif _family(space.get(name)) in LOG_FAMILIES and all(
            v > 0 for v in values if v is not None
        ):
            scale = "log"
        else:
            scale = "linear"
        params.append(Param(name, values, scale))
    return Results(
        [r["trial"] for r in rows],
        [r["status"] for r in rows],
        [float(r["error"]) for r in rows],
        params,
        constant,
    )


def constant_note(constant: dict[str, Any]) -> str:
    """The line that says which hyperparameters got no panel or axis, and why."""
    if not constant:
        return ""
    shown = ", ".join(f"{k}={v}" for k, v in list(constant.items())[:6])
    more = f" and {len(constant) - 6} more" if len(constant) > 6 else ""
    return f"one value in every trial, not drawn: {shown}{more}"


def logged_space(con: duckdb.DuckDBPyConnection, study: str) -> dict[str, Any]:
    """The config space of the study's ``study`` event (JSON domains), or {} if none."""
    rows = _table(
        con, "SELECT payload FROM events WHERE study = ? AND kind = 'study' LIMIT 1", [study]
    ).to_pylist()
    try:
        space = json.loads(rows[0]["payload"]).get("space") or {}
    except (IndexError, TypeError, ValueError, AttributeError):
        return {}
    return space if isinstance(space, dict) else {}


def _family(domain: Any) -> str | None:
    """The scipy.stats family of a logged domain (also inside a conditional wrapper)."""
    for _ in range(4):
        if not isinstance(domain, dict):
            return None
        if "dist" in domain:
            return str(domain["dist"])
        domain = domain.get("domain")
    return None
