"""Asynchronous multi-fidelity schedulers: ASHA and Hyperband (and the rung levels).

They read every trial fact (config, ``suggest`` payload, status, results per rung, learning
curve) from the study's fold (see :mod:`hpostore.schedulers._fold`) and keep only indexes
derived from it: per rung the sorted results (or first reports) and the paused trials not yet
promoted. A decision costs ``O(log n)`` in the number of trials.

Promotion gives a configuration a larger resource (``config[resource_attr]``, e.g.
``max_epochs``) and logs a ``promote`` event on the trial that earned it. Synchronous
successive halving re-runs the configuration as a new trial (the textbook's); promotion-type
ASHA and Hyperband *resume* the paused trial: the same trial id starts again with the larger
resource, and an objective that takes a ``checkpoint_dir`` continues from its checkpoint.
"""

from __future__ import annotations

import bisect
import heapq
import json
import math
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgument
from ..searchers.base import HPOSearcher, trial_uniforms
from ._fold import FoldScheduler, has_result, payload_of
from ._index import SortedList
from .base import CONTINUE, Action, Decision, Suggestion

if TYPE_CHECKING:
    from ..study import TrialState

__all__ = [
    "ASHAScheduler",
    "HyperbandScheduler",
    "rung_levels",
]


def rung_levels(r_min: float, r_max: float, eta: float) -> tuple[float, ...]:
    """``r_min * eta**k`` up to ``r_max``, and ``r_max`` itself (the textbook's rung levels).

    >>> rung_levels(2, 10, 2)
    (2, 4, 8, 10)
    >>> rung_levels(1, 9, 3)
    (1, 3, 9)
    """
    levels = [r_min]
    while levels[-1] * eta <= r_max * (1 + 1e-12):
        levels.append(levels[-1] * eta)
    if levels[-1] < r_max:
        levels.append(r_max)
    return tuple(levels)


def check_fidelity(eta: Any, r_min: Any, r_max: Any) -> None:
    def number(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

    if not (number(eta) and eta >= 2):
        raise InvalidArgument(f"`eta >= 2` must hold, but got eta={eta!r}")
    if not (number(r_min) and number(r_max) and 0 < r_min <= r_max):
        raise InvalidArgument(
            f"`0 < r_min <= r_max` must hold, but got (r_min={r_min!r}, r_max={r_max!r})"
        )


class ASHAScheduler(FoldScheduler):
    """Asynchronous successive halving (Li et al., 2020), promotion or stopping type.

    ``type="promotion"``: fresh trials run with ``config[resource_attr] = r_min``; a finished
    trial pauses at its rung, and as soon as it ranks in the top ``1/eta`` of its rung it is
    *resumed*: the same trial starts again with the next rung level (a ``promote`` event, then a
    ``start`` carrying the new config; an objective that takes ``checkpoint_dir`` continues from
    its checkpoint). A free worker never waits. ``type="stopping"``: every trial runs with
    ``r_max`` and reports as it goes; at each rung level it continues only while its error is
    within the top ``1/eta`` (rounded up) of the errors reported at that rung so far, else it
    is stopped.

    Promotion budget: at most ``floor(n / eta)`` of a rung's ``n`` results are ever promoted.
    The published rule (promote any top-``n/eta`` trial not yet promoted) can exceed that when
    good trials arrive late; here such a trial waits until the rung has grown enough.

    >>> from scipy import stats
    >>> from hpostore import RandomSearcher
    >>> asha = ASHAScheduler(RandomSearcher({"x": stats.uniform()}, seed=0), eta=3, r_max=9)
    >>> asha.rung_levels, asha.suggest_trial(0).config["max_epochs"]
    ((1, 3, 9), 1)
    """

    eta: float
    r_min: float
    r_max: float
    type: str
    resource_attr: str

    def __init__(
        self,
        searcher: HPOSearcher,
        eta: float = 3,
        r_min: float = 1,
        r_max: float = 9,
        type: str = "promotion",
        resource_attr: str = "max_epochs",
    ) -> None:
        self.save_hyperparameters()
        check_fidelity(eta, r_min, r_max)
        if type not in ("promotion", "stopping"):
            raise InvalidArgument(f"type must be 'promotion' or 'stopping', got {type!r}")
        self.rung_levels = rung_levels(r_min, r_max, eta)
        self.brackets: tuple[int, ...] = (0,)
        self._init_fold()

    def _bracket_for(self, trial: int) -> int:
        return 0

    def _levels(self, bracket: int) -> tuple[float, ...]:
        return self.rung_levels[bracket:]

    # --- per-rung indexes: sorted (error, trial) of the results / first reports at a rung -------
    def _reset_index(self) -> None:
        self._ranked: dict[tuple[int, float], SortedList] = {}
        #: promotion type: results at a rung whose trial waits there, best first (a heap)
        self._waiting: dict[tuple[int, float], list[tuple[float, int]]] = {}
        self._promoted: dict[tuple[int, float], int] = {}  # promotions out of each rung
        self._results_seen = 0  # state.evaluations below this are indexed
        self._curves_indexed = False  # stopping type: the fold's curves are indexed

    def _rank(self, bracket: int, level: float, error: float, trial: int) -> SortedList:
        ranked = self._ranked.get((bracket, level))
        if ranked is None:
            ranked = self._ranked[bracket, level] = SortedList()
        ranked.add((error, trial))
        return ranked

    def _catch_up(self) -> None:
        state = self.state
        if self.type == "stopping":
            if not self._curves_indexed:  # restore: the first report at or beyond each rung
                self._curves_indexed = True
                for t in state.trials.values():
                    if t.curve:
                        bracket = payload_of(t).get("bracket", 0)
                        for level in self._levels(bracket)[:-1]:
                            first = next((e for r, e in t.curve if r >= level), None)
                            if first is not None:
                                self._rank(bracket, level, first, t.trial)
            return
        evaluations = state.evaluations_since(self._results_seen)
        for trial, config, error, _, resource in evaluations:
            t = state.trials[trial]
            payload = payload_of(t)
            rung = (
                resource if resource is not None else self._target_of(json.loads(config), payload)
            )
            if rung is None:
                continue
            key = (payload.get("bracket", 0), rung)
            self._rank(*key, error, trial)
            target = self._target(t)
            if target is not None and target > rung:  # promoted out of it already (restore)
                self._promoted[key] = self._promoted.get(key, 0) + 1
            else:
                heapq.heappush(self._waiting.setdefault(key, []), (error, trial))
        self._results_seen += len(evaluations)

    def _index_snapshot(self) -> Any:
        def keyed(d: dict[tuple[int, float], Any]) -> list[Any]:
            return sorted((f"{b}:{float(level)}", v) for (b, level), v in d.items())

        return {
            "ranked": keyed({k: list(v) for k, v in self._ranked.items()}),
            "waiting": keyed({k: sorted(v) for k, v in self._waiting.items() if v}),
            "promoted": keyed(self._promoted),
        }

    def suggest_trial(self, trial: int) -> Suggestion | None:
        if self.type == "promotion":
            self._catch_up()
            promotion = self._next_promotion()
            if promotion is not None:
                return promotion
        bracket = self._bracket_for(trial)
        if self.type == "stopping":
            return self._fresh(trial, {"bracket": bracket}, self.r_max)
        first = self._levels(bracket)[0]
        return self._fresh(trial, {"bracket": bracket}, first)

    def _next_promotion(self) -> Suggestion | None:
        """Resume the best paused trial that ranks in the top 1/eta of its rung, if any."""
        trials = self.state.trials
        for bracket in self.brackets:
            levels = self._levels(bracket)
            for i in reversed(range(len(levels) - 1)):
                level, nxt = levels[i], levels[i + 1]
                key = (bracket, level)
                ranked = self._ranked.get(key)
                k = 0 if ranked is None else int(len(ranked) // self.eta)
                if ranked is None or self._promoted.get(key, 0) >= k:
                    continue  # 1/eta of the rung is promoted already: the budget is spent
                waiting = self._waiting.get(key, [])
                while waiting:  # the best trial that still waits at this rung
                    t = trials[waiting[0][1]]
                    if has_result(t) and self._target(t) == level:
                        break
                    heapq.heappop(waiting)
                if not waiting:
                    continue
                error, source = waiting[0]
                rank = ranked.rank((error, source))
                if rank >= k:
                    continue  # the best waiting trial is not in the top 1/eta: none is
                heapq.heappop(waiting)
                self._promoted[key] = self._promoted.get(key, 0) + 1
                config = trials[source].config
                config[self.resource_attr] = nxt
                reason = (
                    f"error {error:.6g} ranks {rank + 1} of {len(ranked)} at rung {level}; "
                    f"the top {k} (1/{self.eta}) go on to {nxt}: resumed"
                )
                return self._resume(source, config, nxt, reason)
        return None

    def _decide_report(self, t: TrialState, resource: float, error: float) -> Decision:
        if self.type != "stopping":
            return CONTINUE
        if not self._curves_indexed:  # (restore's one pass; then every report is indexed here)
            self._catch_up()
        curve = t.curve  # holds this report already (the fold applies it first)
        before = max([r for r, _ in curve[:-1]], default=-math.inf)
        # is a rung of any bracket crossed (before < level <= resource)? Most reports cross
        # none: two bisections over the sorted levels say so (a NaN crosses nothing)
        inner = self.rung_levels[:-1]
        if not before < resource or bisect.bisect_right(inner, resource) <= bisect.bisect_right(
            inner, before
        ):
            return CONTINUE
        bracket = payload_of(t).get("bracket", 0)
        crossed = [lv for lv in self._levels(bracket)[:-1] if before < lv <= resource]
        if not crossed:
            return CONTINUE
        for level in crossed:  # the first report at or beyond a rung is the trial's error there
            ranked = self._rank(bracket, level, error, t.trial)
        level = crossed[-1]
        rank = ranked.rank((error, -1))  # results strictly better
        k = math.ceil(len(ranked) / self.eta)
        if rank < k:
            return Decision(
                Action.CONTINUE,
                f"error {error:.6g} ranks {rank + 1} of {len(ranked)} at rung {level}",
            )
        return Decision(
            Action.STOP,
            f"error {error:.6g} at rung {level} ranks {rank + 1} of {len(ranked)}; only the "
            f"top {k} (1/{self.eta}) continue",
        )

    def _decide_result(self, t: TrialState) -> list[tuple[int, Decision]]:
        level = self._target(t)
        if self.type != "promotion" or not has_result(t) or level is None or level >= self.r_max:
            return []
        reason = f"reached rung {level}; paused until it ranks in the top 1/{self.eta} there"
        return [(t.trial, Decision(Action.PAUSE, reason))]


class HyperbandScheduler(ASHAScheduler):
    """Hyperband over ASHA brackets: bracket ``b`` starts at rung level ``rung_levels[b]``.

    Each fresh trial draws its bracket with Hyperband's weights (bracket ``s`` from the top has
    ``(s_max+1)/(s+1) * eta**s`` configs per iteration) from the study's logged seed
    (:func:`~hpostore.searchers.trial_uniforms` of ``(seed, -1 - trial)``: independent of the
    searcher's draws), so resume and parallel runs draw the same brackets.

    >>> from scipy import stats
    >>> from hpostore import RandomSearcher
    >>> hb = HyperbandScheduler(RandomSearcher({"x": stats.uniform()}, seed=0), eta=3, r_max=9)
    >>> hb.brackets, [round(w, 3) for w in hb.bracket_weights]
    ((0, 1, 2), [0.545, 0.273, 0.182])
    """

    def __init__(
        self,
        searcher: HPOSearcher,
        eta: float = 3,
        r_min: float = 1,
        r_max: float = 9,
        type: str = "stopping",
        resource_attr: str = "max_epochs",
    ) -> None:
        super().__init__(searcher, eta, r_min, r_max, type, resource_attr)
        s_max = len(self.rung_levels) - 1
        self.brackets = tuple(range(s_max + 1))
        raw = [(s_max + 1) / (s_max - b + 1) * eta ** (s_max - b) for b in self.brackets]
        self.bracket_weights = [w / sum(raw) for w in raw]

    def _bracket_for(self, trial: int) -> int:
        u = trial_uniforms(self._seed, -1 - trial, 1)[0]
        acc = 0.0
        for bracket, weight in zip(self.brackets, self.bracket_weights):
            acc += weight
            if u < acc:
                return bracket
        return self.brackets[-1]
