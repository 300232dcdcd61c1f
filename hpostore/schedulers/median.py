"""The median-stopping rule, with running medians per resource level (O(log n) per report)."""

from __future__ import annotations

import bisect
import math
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgument
from ..searchers.base import HPOSearcher
from ._fold import FoldScheduler
from ._index import SortedList
from .base import CONTINUE, Action, Decision, Suggestion

if TYPE_CHECKING:
    from ..study import TrialState

__all__ = ["MedianStoppingScheduler"]


class _Level:
    """The trials that reached one resource level, by their best error up to it."""

    __slots__ = ("errors", "value")

    def __init__(self) -> None:
        self.errors = SortedList()  # (best error up to the level, trial)
        self.value: dict[int, float] = {}  # trial -> its entry's error

    def put(self, trial: int, error: float) -> None:
        old = self.value.get(trial)
        if old is not None:
            if error >= old:
                return
            self.errors.remove((old, trial))
        self.value[trial] = error
        self.errors.add((error, trial))

    def median_of_others(self, trial: int) -> tuple[float, int]:
        """The median of every entry but ``trial``'s, and how many entries that is."""
        skip = self.errors.rank((self.value[trial], trial)) if trial in self.value else None
        n = len(self.errors) - (skip is not None)

        def at(i: int) -> float:  # the i-th smallest of the others
            return float(self.errors[i if skip is None or i < skip else i + 1][0])

        if n == 0:
            return math.nan, 0
        median = at(n // 2) if n % 2 else (at(n // 2 - 1) + at(n // 2)) / 2
        return median, n


class MedianStoppingScheduler(FoldScheduler):
    """The median-stopping rule (Golovin et al., 2017): stop a trial whose best error so far is
    worse than the median of the other trials' best errors up to the same resource.

    Applies from ``grace_resource`` on and once ``min_trials`` other trials reached that
    resource. Configs run as the searcher proposes them (with ``config[resource_attr] = r_max``
    when both are given).

    Index: per resource level that some report named (epochs, usually), the sorted best error
    up to that level of every trial that reached it; a report updates the levels it reaches and
    reads one median. A level seen for the first time is filled in one pass over the trials.

    >>> from scipy import stats
    >>> from hpostore import RandomSearcher
    >>> med = MedianStoppingScheduler(RandomSearcher({"x": stats.uniform()}, seed=0), 1, 2)
    >>> for t, e in enumerate([0.2, 0.4, 0.9]):
    ...     _ = med.suggest_trial(t)
    ...     decision = med.on_report(t, 1, e)
    >>> decision.action.value
    'stop'
    """

    grace_resource: float
    min_trials: int
    r_max: float | None

    def __init__(
        self,
        searcher: HPOSearcher,
        grace_resource: float = 1,
        min_trials: int = 3,
        resource_attr: str | None = None,
        r_max: float | None = None,
    ) -> None:
        self.save_hyperparameters()
        if not isinstance(min_trials, int) or min_trials < 1:
            raise InvalidArgument(f"`min_trials >= 1` must hold, but got min_trials={min_trials!r}")
        self._init_fold()

    def suggest_trial(self, trial: int) -> Suggestion | None:
        return self._fresh(trial, {}, self.r_max)

    # --- the index ----------------------------------------------------------------------------
    def _reset_index(self) -> None:
        self._levels: list[float] = []  # sorted
        self._at: dict[float, _Level] = {}
        self._indexed = False

    def _catch_up(self) -> None:
        state = self.state
        if self._indexed:
            return  # reports come through on_report; only restore reads the curves
        self._indexed = True
        levels = sorted({r for t in state.trials.values() for r, _ in t.curve})
        self._levels = levels
        self._at = {level: _Level() for level in levels}
        for t in state.trials.values():
            best, j = math.inf, 0
            reach = max((r for r, _ in t.curve), default=-math.inf)
            points = sorted(t.curve, key=lambda p: p[0])
            for level in levels:
                if level > reach:
                    break
                while j < len(points) and points[j][0] <= level:
                    best = min(best, points[j][1])
                    j += 1
                if best < math.inf:
                    self._at[level].put(t.trial, best)

    def _new_level(self, level: float) -> None:
        """Index a resource no report named before: every trial that reached it."""
        bisect.insort(self._levels, level)
        entry = self._at[level] = _Level()
        for t in self.state.trials.values():
            if any(r >= level for r, _ in t.curve):
                upto = min((e for r, e in t.curve if r <= level), default=None)
                if upto is not None:
                    entry.put(t.trial, upto)

    def _index_snapshot(self) -> Any:
        return [[level, list(self._at[level].errors)] for level in self._levels]

    def _decide_report(self, t: TrialState, resource: float, error: float) -> Decision:
        self._catch_up()
        curve = t.curve  # holds this report already (the fold applies it first)
        before = curve[:-1]
        reach = max([r for r, _ in before], default=-math.inf)
        best_before = min([e for _, e in before], default=math.inf)
        if resource not in self._at:
            self._new_level(resource)  # this trial included
        levels = self._levels
        if resource > reach:  # newly reached levels: the best error up to each
            for level in levels[
                bisect.bisect_right(levels, reach) : bisect.bisect_right(levels, resource)
            ]:
                upto = best_before if level < resource else min(best_before, error)
                if upto < math.inf:
                    self._at[level].put(t.trial, upto)
        else:  # a report below the trial's reach (a re-run): it may lower the levels above it
            for level in levels[
                bisect.bisect_left(levels, resource) : bisect.bisect_right(levels, reach)
            ]:
                self._at[level].put(t.trial, error)
        if resource < self.grace_resource:
            return CONTINUE
        entry = self._at[resource]
        best = entry.value[t.trial]
        median, n = entry.median_of_others(t.trial)
        if n < self.min_trials:
            return CONTINUE
        if best > median:
            return Decision(
                Action.STOP,
                f"best error {best:.6g} by resource {resource} is worse than the median "
                f"{median:.6g} of {n} other trials",
            )
        return CONTINUE
