"""Multi-fidelity schedulers: successive halving, ASHA, Hyperband, the median-stopping rule.

Each scheduler keeps one record per trial (config, ``suggest`` payload, status, error, learning
curve, results per rung, stopped) and derives every decision from those records alone. The
records are exactly what the log holds, so :meth:`restore` rebuilds them from a replayed study
in one pass and a resumed study decides as the uninterrupted one would.

Promotion gives a configuration a larger resource (``config[resource_attr]``, e.g.
``max_epochs``) and logs a ``promote`` event on the trial that earned it. Synchronous
successive halving re-runs the configuration as a new trial (the textbook's); promotion-type
ASHA and Hyperband *resume* the paused trial: the same trial id starts again with the larger
resource, and an objective that takes a ``checkpoint_dir`` continues from its checkpoint.
"""

from __future__ import annotations

import bisect
import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgument, ReplayDivergence
from ..searchers.base import HPOSearcher, trial_uniforms
from ..space import to_native
from .base import CONTINUE, Action, Decision, Suggestion, TrialScheduler

if TYPE_CHECKING:
    from ..study import StudyState

__all__ = [
    "ASHAScheduler",
    "HyperbandScheduler",
    "MedianStoppingScheduler",
    "SuccessiveHalvingScheduler",
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


def _check_fidelity(eta: Any, r_min: Any, r_max: Any) -> None:
    def number(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

    if not (number(eta) and eta >= 2):
        raise InvalidArgument(f"`eta >= 2` must hold, but got eta={eta!r}")
    if not (number(r_min) and number(r_max) and 0 < r_min <= r_max):
        raise InvalidArgument(
            f"`0 < r_min <= r_max` must hold, but got (r_min={r_min!r}, r_max={r_max!r})"
        )


@dataclass(slots=True)
class _Record:
    config: dict[str, Any]
    payload: dict[str, Any]
    status: str = "running"  # running | finished | failed
    error: float | None = None
    curve: list[tuple[float, float]] = field(default_factory=list)
    stopped: bool = False
    #: resource -> error of each result (a resumed trial has one per rung it finished)
    rungs: dict[float, float] = field(default_factory=dict)

    @property
    def origin(self) -> int | None:
        value = self.payload.get("origin")
        return value if isinstance(value, int) else None

    def first_error_at(self, level: float) -> float | None:
        """The error of the first report that reached ``level`` (None if none did)."""
        return next((e for r, e in self.curve if r >= level), None)


class _RecordScheduler(TrialScheduler):
    """Shared bookkeeping: records per trial, searcher calls, restore and snapshot."""

    resource_attr: str | None
    _records: dict[int, _Record]
    _seed: int

    def _init_records(self) -> None:
        if not isinstance(self.searcher, HPOSearcher) and not callable(
            getattr(self.searcher, "sample_configuration", None)
        ):
            raise InvalidArgument(
                f"searcher must have a sample_configuration() method, got {type(self.searcher).__name__}"
            )
        self._records = {}
        self._seed = 0

    def bind_seed(self, seed: int) -> None:
        self._seed = seed

    # --- what the tuner calls ---------------------------------------------------------------
    def on_report(self, trial: int, resource: float, error: float) -> Decision:
        record = self._records.get(trial)
        if record is None:
            return CONTINUE
        record.curve.append((float(resource), float(error)))
        decision = self._decide_report(trial, record, float(resource), float(error))
        if decision.action is Action.STOP:
            record.stopped = True
        return decision

    def on_result(
        self, trial: int, error: float | None, resource: float | None
    ) -> list[tuple[int, Decision]]:
        record = self._records[trial]
        record.status = "failed" if error is None else "finished"
        record.error = error
        if error is not None:
            level = resource if resource is not None else self._target(record)
            if level is not None:
                record.rungs[level] = error
            self.searcher.update(
                dict(record.config), error, additional_info={"trial": trial, "resource": level}
            )
        return self._decide_result(trial, record)

    def _decide_report(
        self, trial: int, record: _Record, resource: float, error: float
    ) -> Decision:
        return CONTINUE

    def _decide_result(self, trial: int, record: _Record) -> list[tuple[int, Decision]]:
        return []

    def _target(self, record: _Record) -> float | None:
        """The resource the record's current run asks for (None: the scheduler sets none)."""
        value = record.config.get(self.resource_attr) if self.resource_attr else None
        return value if isinstance(value, (int, float)) else record.payload.get("rung")

    def _fresh(self, trial: int, payload: dict[str, Any], resource: float | None) -> Suggestion:
        sampled = self.searcher.sample_configuration()
        config = {k: to_native(v, where=f"trial {trial} config[{k!r}]") for k, v in sampled.items()}
        if self.resource_attr is not None and resource is not None:
            config[self.resource_attr] = resource
        self._records[trial] = _Record(config, dict(payload))
        return Suggestion(config, payload or None)

    def _promote(
        self, trial: int, source: int, level: float, payload: dict[str, Any], reason: str
    ) -> Suggestion:
        config = dict(self._records[source].config)
        if self.resource_attr is not None:
            config[self.resource_attr] = level
        self._records[trial] = _Record(config, dict(payload))
        return Suggestion(config, payload, promoted_from=source, reason=reason)

    # --- the log ----------------------------------------------------------------------------
    def restore(self, state: StudyState) -> None:
        from ..study import WITH_RESULT, TrialStatus

        status = {s: "finished" for s in WITH_RESULT} | {TrialStatus.FAILED: "failed"}
        self._records = {
            t.trial: _Record(
                t.config,
                t.payload,
                status.get(t.status, "running"),
                t.error if t.has_result else None,
                list(t.curve),
                t.stopped,
                {r: e for r, e in t.results if r is not None},
            )
            for t in state.trials.values()
        }
        self._restore_index()
        self._restore_searcher(state)

    def _restore_index(self) -> None:
        """Rebuild any index a scheduler keeps over its records (after :meth:`restore`)."""

    def _restore_searcher(self, state: StudyState) -> None:
        """Bring the searcher to where the live calls left it: one sample per fresh trial,
        one update per finished trial (in the order the results arrived)."""
        fresh = [
            t for t in sorted(self._records) if "promoted_from" not in self._records[t].payload
        ]
        results = [
            (json.loads(config), error, {"trial": t, "resource": resource})
            for t, config, error, _, resource in state.evaluations
            if t in self._records
        ]
        done = set(state.finished)
        pending = [dict(self._records[t].config) for t in fresh if t not in done]
        restore_results = getattr(self.searcher, "restore_results", None)
        if callable(restore_results):
            try:
                restore_results(len(fresh), results, pending)
                return
            except NotImplementedError:
                pass
        self._reexecute_searcher(state, set(fresh))

    def _reexecute_searcher(self, state: StudyState, fresh: set[int]) -> None:
        # the live calls, in log order: a sample per fresh trial's suggest, an update per result
        # (each ``update`` event follows its ``evaluate``; a crash between them only delays it)
        results: dict[int, list[tuple[str, float, float | None]]] = {}
        for t, config, error, _, resource in reversed(state.evaluations):
            results.setdefault(t, []).append((config, error, resource))
        for code, trial in state.calls:
            record = self._records[trial]
            if code == 0 and trial in fresh:
                sampled = self.searcher.sample_configuration()
                redrawn = {k: to_native(v, where=f"trial {trial}") for k, v in sampled.items()}
                logged = {k: v for k, v in record.config.items() if k in redrawn}
                if redrawn != logged:
                    raise ReplayDivergence(
                        f"trial {trial}: re-executing the searcher to resume proposed {redrawn} "
                        f"but the log records {logged}; seed the searcher so that it is "
                        "deterministic given the log",
                        trial=trial,
                    )
            elif code == 1 and results.get(trial):
                config, error, resource = results[trial].pop()
                self.searcher.update(
                    json.loads(config), error, {"trial": trial, "resource": resource}
                )

    def snapshot(self) -> dict[str, Any]:
        return {
            str(t): [
                json.dumps(r.config, sort_keys=True),
                json.dumps(r.payload, sort_keys=True),
                r.status,
                r.error,
                [list(p) for p in r.curve],
                r.stopped,
                sorted(r.rungs.items()),
            ]
            for t, r in sorted(self._records.items())
        }


class SuccessiveHalvingScheduler(_RecordScheduler):
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
        _check_fidelity(eta, r_min, r_max)
        self.rung_levels = rung_levels(r_min, r_max, eta)
        self.K = len(self.rung_levels) - 1
        self._init_records()

    def _quota(self, i: int) -> int:
        return int(self.eta ** (self.K - i))

    def suggest_trial(self, trial: int) -> Suggestion | None:
        rounds = [r.payload.get("round", 0) for r in self._records.values()]
        j = max(rounds, default=0)
        in_round = [(t, r) for t, r in self._records.items() if r.payload.get("round", 0) == j]
        expected = self._quota(0)
        for i, level in enumerate(self.rung_levels):
            at = [(t, r) for t, r in in_round if r.payload.get("rung") == level]
            if i == 0 and len(at) < expected:
                return self._fresh(trial, {"round": j, "rung": level}, level)
            if i > 0:
                below = self.rung_levels[i - 1]
                ranked = sorted(
                    (r.error, t, r.origin if r.origin is not None else t)
                    for t, r in in_round
                    if r.payload.get("rung") == below and r.error is not None
                )
                expected = min(self._quota(i), len(ranked))
                have = {r.origin for _, r in at}
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
            if sum(r.status != "running" for _, r in at) < expected:
                return None  # the rung is incomplete: wait for its results
            if expected == 0:
                break
        return self._fresh(
            trial, {"round": j + 1, "rung": self.rung_levels[0]}, self.rung_levels[0]
        )

    def _decide_result(self, trial: int, record: _Record) -> list[tuple[int, Decision]]:
        level = record.payload.get("rung")
        if record.status != "finished" or level is None or level >= self.r_max:
            return []
        i = self.rung_levels.index(level)
        reason = (
            f"reached rung {level} (round {record.payload.get('round', 0)}); waits until the "
            f"rung's {self._quota(i)} results are in"
        )
        return [(trial, Decision(Action.PAUSE, reason))]


class ASHAScheduler(_RecordScheduler):
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
        _check_fidelity(eta, r_min, r_max)
        if type not in ("promotion", "stopping"):
            raise InvalidArgument(f"type must be 'promotion' or 'stopping', got {type!r}")
        self.rung_levels = rung_levels(r_min, r_max, eta)
        self.brackets: tuple[int, ...] = (0,)
        self._init_records()
        self._restore_index()

    def _bracket_for(self, trial: int) -> int:
        return 0

    def _levels(self, bracket: int) -> tuple[float, ...]:
        return self.rung_levels[bracket:]

    # --- per-rung indexes: sorted (error, trial) of the results / first reports at a rung -------
    def _restore_index(self) -> None:
        self._ranked: dict[tuple[int, float], list[tuple[float, int]]] = {}
        self._promoted: dict[tuple[int, float], int] = {}  # promotions out of each rung
        for trial, record in self._records.items():
            bracket = record.payload.get("bracket", 0)
            if self.type == "promotion":
                target = self._target(record) or 0
                for level, error in record.rungs.items():
                    self._rank(bracket, level, error, trial)
                    if target > level:
                        key = (bracket, level)
                        self._promoted[key] = self._promoted.get(key, 0) + 1
            else:
                for level in self._levels(bracket)[:-1]:
                    first = record.first_error_at(level)
                    if first is not None:
                        self._rank(bracket, level, first, trial)

    def _rank(
        self, bracket: int, level: float, error: float, trial: int
    ) -> list[tuple[float, int]]:
        ranked = self._ranked.setdefault((bracket, level), [])
        bisect.insort(ranked, (error, trial))
        return ranked

    def suggest_trial(self, trial: int) -> Suggestion | None:
        if self.type == "promotion":
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
        for bracket in self.brackets:
            levels = self._levels(bracket)
            for i in reversed(range(len(levels) - 1)):
                level, nxt = levels[i], levels[i + 1]
                ranked = self._ranked.get((bracket, level), [])
                k = int(len(ranked) // self.eta)
                if self._promoted.get((bracket, level), 0) >= k:
                    continue  # 1/eta of the rung is promoted already: the budget is spent
                for rank, (error, source) in enumerate(ranked[:k], 1):
                    record = self._records[source]
                    if record.status != "finished" or self._target(record) != level:
                        continue  # promoted already, or running again
                    config = dict(record.config)
                    config[self.resource_attr] = nxt
                    record.config, record.status, record.error = config, "running", None
                    self._promoted[bracket, level] = self._promoted.get((bracket, level), 0) + 1
                    reason = (
                        f"error {error:.6g} ranks {rank} of {len(ranked)} at rung {level}; "
                        f"the top {k} (1/{self.eta}) go on to {nxt}: resumed"
                    )
                    return Suggestion(config, promoted_from=source, reason=reason, resume=True)
        return None

    def on_result(
        self, trial: int, error: float | None, resource: float | None
    ) -> list[tuple[int, Decision]]:
        decisions = super().on_result(trial, error, resource)
        record = self._records[trial]
        if self.type == "promotion" and error is not None:
            level = resource if resource is not None else self._target(record)
            if level is not None:
                self._rank(record.payload.get("bracket", 0), level, error, trial)
        return decisions

    def _decide_report(
        self, trial: int, record: _Record, resource: float, error: float
    ) -> Decision:
        if self.type != "stopping":
            return CONTINUE
        bracket = record.payload.get("bracket", 0)
        before = max((r for r, _ in record.curve[:-1]), default=-math.inf)
        crossed = [lv for lv in self._levels(bracket)[:-1] if before < lv <= resource]
        if not crossed:
            return CONTINUE
        for level in crossed:  # the first report at or beyond a rung is the trial's error there
            ranked = self._rank(bracket, level, error, trial)
        level = crossed[-1]
        rank = bisect.bisect_left(ranked, (error, -1))  # results strictly better
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

    def _decide_result(self, trial: int, record: _Record) -> list[tuple[int, Decision]]:
        level = self._target(record)
        if (
            self.type != "promotion"
            or record.status != "finished"
            or level is None
            or level >= self.r_max
        ):
            return []
        reason = f"reached rung {level}; paused until it ranks in the top 1/{self.eta} there"
        return [(trial, Decision(Action.PAUSE, reason))]


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


class MedianStoppingScheduler(_RecordScheduler):
    """The median-stopping rule (Golovin et al., 2017): stop a trial whose best error so far is
    worse than the median of the other trials' best errors up to the same resource.

    Applies from ``grace_resource`` on and once ``min_trials`` other trials reached that
    resource. Configs run as the searcher proposes them (with ``config[resource_attr] = r_max``
    when both are given).
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
        self._init_records()

    def suggest_trial(self, trial: int) -> Suggestion | None:
        return self._fresh(trial, {}, self.r_max)

    def _decide_report(
        self, trial: int, record: _Record, resource: float, error: float
    ) -> Decision:
        if resource < self.grace_resource:
            return CONTINUE
        best = min(e for r, e in record.curve if r <= resource)
        others = []
        for t, r in self._records.items():
            if t == trial or not any(res >= resource for res, _ in r.curve):
                continue
            upto = min((e for res, e in r.curve if res <= resource), default=None)
            if upto is not None:
                others.append(upto)
        if len(others) < self.min_trials:
            return CONTINUE
        others.sort()
        n = len(others)
        median = others[n // 2] if n % 2 else (others[n // 2 - 1] + others[n // 2]) / 2
        if best > median:
            return Decision(
                Action.STOP,
                f"best error {best:.6g} by resource {resource} is worse than the median "
                f"{median:.6g} of {n} other trials",
            )
        return CONTINUE
