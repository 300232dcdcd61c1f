"""Step curves of the incumbent: evaluated on a grid, summarised across studies, integrated."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._views import AnalysisError

__all__ = ["StepCurve", "grid_points", "mean_over", "summarise"]


@dataclass(frozen=True, slots=True)
class StepCurve:
    """One study's incumbent as a step function of x, held after its last improvement."""

    study: str
    group: str
    x: np.ndarray  # where the incumbent improved
    best: np.ndarray  # the incumbent from there on
    end: float  # the study's last x
    algorithm: str  # searcher + scheduler

    def at(self, grid: np.ndarray) -> np.ndarray:
        """The incumbent at each grid point (NaN before the first result)."""
        i = np.searchsorted(self.x, grid, side="right") - 1
        out = np.where(i >= 0, self.best[np.clip(i, 0, None)], np.nan)
        return out.astype(float)


def summarise(
    curves: Sequence[StepCurve], points: np.ndarray, quantiles: tuple[float, float]
) -> dict[str, np.ndarray]:
    """The step curves at ``points``, summarised across curves: n_studies (with a result
    there), median, q_low, q_high (the ``quantiles``) and mean (NaN before any result).
    Shared by :func:`analysis.compare` and the dashboard's quantile bands."""
    values = np.vstack([c.at(points) for c in curves]) if curves else np.zeros((0, len(points)))
    if not values.size:
        empty = np.full(len(points), np.nan)
        return {"n_studies": np.zeros(len(points), np.int64), "median": empty,
                "q_low": empty, "q_high": empty, "mean": empty}  # fmt: skip
    # a grid point before any result of the group is NaN on purpose: no warning
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        median, q_low, q_high = np.nanquantile(values, [0.5, *quantiles], axis=0)
        mean = np.nanmean(values, axis=0)
    n = np.sum(~np.isnan(values), axis=0)
    return {"n_studies": n, "median": median, "q_low": q_low, "q_high": q_high, "mean": mean}


def grid_points(curves: list[StepCurve], grid: int | Sequence[float], log_grid: bool) -> np.ndarray:
    if not isinstance(grid, int):
        points = np.asarray(grid, dtype=float)
        if points.ndim != 1 or points.size == 0 or np.any(np.diff(points) < 0):
            raise AnalysisError("grid must be a positive int or a non-empty increasing sequence")
        return points
    if grid < 2:
        raise AnalysisError(f"grid must be at least 2 points, got {grid}")
    firsts = [c.x[0] for c in curves if c.x.size]
    if not firsts:
        return np.zeros(0)
    start = min(firsts)
    stop = max(max(c.end, c.x[-1]) for c in curves if c.x.size)
    if log_grid:
        start = max(start, 1e-9)
        return np.geomspace(start, max(stop, start), grid)
    return np.linspace(start, max(stop, start), grid)


def mean_over(curve: StepCurve, lo: float, hi: float) -> float | None:
    """Exact integral of the step curve over [lo, hi] / (hi - lo); None if undefined at lo."""
    if not curve.x.size or curve.x[0] > lo:
        return None
    knots = np.concatenate(([lo], curve.x[(curve.x > lo) & (curve.x < hi)], [hi]))
    values = curve.at(knots[:-1])
    return float(np.sum(values * np.diff(knots)) / (hi - lo))
