"""Synchronous successive halving (the textbook's), reading its trials from the fold.

Its index is the newest round's trials per rung (a round holds ``eta**K`` configs per rung at
most), so a decision costs ``O(eta**K)``, not a scan of every trial; statuses and errors are read
from the fold. A promotion re-runs the configuration as a new trial with a ``promote`` event
on the source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..searchers.base import HPOSearcher
from ._fold import FoldScheduler, has_result, payload_of, settled
from .base import Action, Decision, Suggestion
from .multi_fidelity import check_fidelity, rung_levels

if TYPE_CHECKING:
    from ..study import TrialState

__all__ = ["SuccessiveHalvingScheduler"]


class SuccessiveHalvingScheduler(FoldScheduler):
    """Synchronous successive halving (the textbook's): rounds of ``eta**K`` configs.

    Each round starts ``eta**K`` fresh configs at ``r_min``; when all results of a rung are in,
    the best ``1/eta`` are re-run at the next rung level (``config[resource_attr]``, a new trial
    with a ``promote`` event on the source); the round ends at ``r_max`` and a new one starts.
    With parallel workers, :meth:`suggest_trial` returns None while a rung is incomplete.

    >>> from scipy import stats
    >>> from hpostore import RandomSearcher
    >>> sh = SuccessiveHalvingScheduler(RandomSearcher({"x": stats.uniform()}, seed=0), 2, 2, 10)
    >>> sh.rung_levels
    (2, 4, 8, 10)
    """

    eta: float
    r_min: float
    r_max: float
    resource_attr: str

    def __init__(
        self,
        searcher: HPOSearcher,
        eta: float = 2,
        r_min: float = 1,
        r_max: float = 4,
        resource_attr: str = "max_epochs",
    ) -> None:
        self.save_hyperparameters()
        check_fidelity(eta, r_min, r_max)
        self.rung_levels = rung_levels(r_min, r_max, eta)
        self.K = len(self.rung_levels) - 1
        self._init_fold()

    def _quota(self, i: int) -> int:
        return int(self.eta ** (self.K - i))

    # --- index: the trials of the newest round, per rung (a round holds at most 2 eta**K) ----
    def _reset_index(self) -> None:
        self._round = 0
        self._at: dict[float, list[tuple[int, int]]] = {}  # rung -> (trial, origin)
        self._seen = 0  # trial ids below this are indexed

    def _catch_up(self) -> None:
        state = self.state
        for trial in range(self._seen, state.next_trial):
            t = state.trials.get(trial)
            if t is None:
                continue
            payload = payload_of(t)
            j = payload.get("round", 0)
            if j > self._round:
                self._round, self._at = j, {}
            if j == self._round:
                origin = payload.get("origin", trial)
                self._at.setdefault(payload.get("rung", -1.0), []).append((trial, origin))
        self._seen = max(self._seen, state.next_trial)

    def _index_snapshot(self) -> Any:
        return [self._round, sorted((str(float(r)), list(ts)) for r, ts in self._at.items())]

    def suggest_trial(self, trial: int) -> Suggestion | None:
        self._catch_up()
        trials = self.state.trials
        j = self._round
        expected = self._quota(0)
        for i, level in enumerate(self.rung_levels):
            at = self._at.get(level, [])
            if i == 0 and len(at) < expected:
                return self._fresh(trial, {"round": j, "rung": level}, level)
            if i > 0:
                below = self.rung_levels[i - 1]
                ranked = sorted(
                    (t.error, s, origin)
                    for s, origin in self._at.get(below, ())
                    if has_result(t := trials[s]) and t.error is not None
                )
                expected = min(self._quota(i), len(ranked))
                have = {origin for _, origin in at}
                for rank, (error, source, origin) in enumerate(ranked[:expected], 1):
                    if origin not in have:
                        reason = (
                            f"error {error:.6g} ranks {rank} of {len(ranked)} at rung {below} "
                            f"(round {j}); the best {expected} go on to {level}"
                        )
                        payload = {
                            "round": j,
                            "rung": level,
                            "origin": origin,
                            "promoted_from": source,
                        }
                        return self._promote(trial, source, level, payload, reason)
            if sum(settled(trials[t]) for t, _ in at) < expected:
                return None  # the rung is incomplete: wait for its results
            if expected == 0:
                break
        return self._fresh(
            trial, {"round": j + 1, "rung": self.rung_levels[0]}, self.rung_levels[0]
        )

    def _decide_result(self, t: TrialState) -> list[tuple[int, Decision]]:
        payload = payload_of(t)
        level = payload.get("rung")
        if not has_result(t) or level is None or level >= self.r_max:
            return []
        i = self.rung_levels.index(level)
        reason = (
            f"reached rung {level} (round {payload.get('round', 0)}); waits until the "
            f"rung's {self._quota(i)} results are in"
        )
        return [(t.trial, Decision(Action.PAUSE, reason))]
