"""Questions asked of a folded study (counts, incumbent, records, tables); never mutates it.

Only :meth:`StudyQueries.thaw` changes how the state is held (a snapshot's columns become
Python objects), never what it says.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from ._arrowcols import float64s, int64s, strings
from ._coldfold import ColdList, Prefix, TrialMap
from .trial import UNFINISHED, TrialState, TrialStatus


class StudyQueries:
    """What :class:`~hpostore.log.fold.StudyState` answers from the attributes its fold keeps."""

    study: str
    seq: int
    elapsed: float
    spec: dict[str, Any] | None
    trials: TrialMap
    #: (Call.SUGGEST | Call.UPDATE, trial) in log order: the calls re-execution replays
    calls = ColdList[tuple[int, int]]()
    finished = ColdList[int]()  # trial ids in the order their results arrived
    #: (trial, config JSON, error, runtime, resource) of each result, in arrival order
    evaluations = ColdList[tuple[int, str, float, float | None, float | None]]()
    trajectory = ColdList[float]()  # best error after each finished trial
    finished_elapsed = ColdList[float]()  # elapsed at each finished trial
    #: (seq, kind, trial, payload) of each stop / pause / promote decision
    decisions = ColdList[tuple[int, str, int | None, str | None]]()
    _cold_lists: dict[str, Prefix[Any]] | None
    incumbent_trial: int | None
    _incumbent: tuple[str, float] | None
    _open: dict[int, None]
    _next_trial: int
    n_failed: int
    sessions: int
    session_open: bool
    metric: tuple[str, ...]
    mode: tuple[str, ...]
    sign: float

    @property
    def n_finished(self) -> int:
        return StudyQueries.finished.count(self)

    def evaluations_since(
        self, start: int
    ) -> list[tuple[int, str, float, float | None, float | None]]:
        """``evaluations[start:]``, without thawing a snapshot's results before ``start``."""
        return StudyQueries.evaluations.since(self, start)

    def thaw(self) -> None:
        """Turn whatever a snapshot left as columns into the fold's Python objects (trials and
        lists), as a full replay would have built them."""
        self.trials.thaw()
        for name in list(self._cold_lists or ()):
            getattr(self, name)
        self._cold_lists = None

    @property
    def next_trial(self) -> int:
        return self._next_trial

    def unfinished(self) -> list[TrialState]:
        """Trials that must still be (re-)run, in trial order."""
        return [self.trials[i] for i in self._open if self.trials[i].status in UNFINISHED]

    def first_unfinished(self) -> TrialState | None:
        for i in self._open:
            if self.trials[i].status in UNFINISHED:
                return self.trials[i]
        return None

    def not_updated(self) -> list[TrialState]:
        """Trials with a result the scheduler has not consumed yet (no ``update`` after it)."""
        return self.trials.with_pending_update()

    def status_counts(self) -> dict[TrialStatus, int]:
        """How many trials have each status (every status, in the enum's order): the counts
        the ``studies`` view and ``hpostore studies``/``show`` give."""
        counts = dict.fromkeys(TrialStatus, 0)
        for t in self.trials.values():
            counts[t.status] += 1
        return counts

    @property
    def incumbent(self) -> dict[str, Any] | None:
        """The config of the best result (with the resource it was measured at)."""
        return None if self._incumbent is None else dict(json.loads(self._incumbent[0]))

    @property
    def incumbent_error(self) -> float | None:
        """The best value of the (first) objective as measured (the largest under mode max)."""
        return None if self._incumbent is None else self._incumbent[1] * self.sign

    def losses(self, t: TrialState) -> tuple[float, ...] | None:
        """The objectives of ``t``'s latest result as losses (negated where the mode is max),
        or None when it has no result holding every objective."""
        if t.error is None:
            return None
        if len(self.metric) == 1:
            return (t.error,)
        metrics = t.metrics(self.sign, self.metric[0])
        out = []
        for name, mode in zip(self.metric, self.mode):
            value = metrics.get(name)
            if not isinstance(value, (int, float)):
                return None
            out.append(-float(value) if mode == "max" else float(value))
        return tuple(out)

    def pareto_front(self) -> list[TrialState]:
        """The trials with a result whose objectives no other result dominates (in trial
        order); under one objective, the trials that share the best value."""
        points = [(t, loss) for t in self.trials.values() if t.has_result
                  if (loss := self.losses(t)) is not None]  # fmt: skip
        return [t for t, p in points if not any(_dominates(q, p) for _, q in points)]

    def records(self) -> list[dict[str, Any]]:
        """The textbook's ``records``: config, error, runtime of each result in order (a
        trial resumed with more resource has one record per rung it finished)."""
        return [
            {"config": json.loads(config), "error": error * self.sign, "runtime": runtime}
            for _, config, error, runtime, _ in self.evaluations
        ]

    def trials_table(self) -> pa.Table:
        ts = list(self.trials.values())
        return pa.table(
            {
                "trial": int64s([t.trial for t in ts]),
                "status": strings([t.status.value for t in ts]),
                "config": strings([t.config_json for t in ts]),
                "error": float64s([None if t.error is None else t.error * self.sign for t in ts]),
                "runtime": float64s([t.runtime for t in ts]),
                "resource": float64s([t.resource for t in ts]),
                "attempts": int64s([t.attempts for t in ts]),
                "suggested_at": float64s([t.suggested_at for t in ts]),
                "started_at": float64s([t.started_at for t in ts]),
                "finished_at": float64s([t.finished_at for t in ts]),
                "worker": strings([t.worker for t in ts]),
                "session": strings([t.session for t in ts]),
                "message": strings([t.message for t in ts]),
                "metrics": strings([t.metrics_json for t in ts]),
            }
        )

    def summary(self) -> dict[str, Any]:
        """A comparable snapshot of everything the state holds (for tests and debugging)."""
        return {
            "seq": self.seq,
            "elapsed": self.elapsed,
            "spec": self.spec,
            "trials": [
                (
                    t.trial,
                    t.config_json,
                    t.status.value,
                    t.error,
                    t.runtime,
                    t.resource,
                    t.attempts,
                    t.updated,
                    t.message,
                    t.payload_json,
                    list(t.curve),
                    t.stopped,
                    list(t.results),
                    t.metrics_json,
                )
                for t in self.trials.values()
            ],
            "calls": list(self.calls),
            "finished": list(self.finished),
            "trajectory": list(self.trajectory),
            "finished_elapsed": list(self.finished_elapsed),
            "incumbent_trial": self.incumbent_trial,
            "incumbent": self._incumbent,
            "evaluations": list(self.evaluations),
            "n_failed": self.n_failed,
            "sessions": self.sessions,
            "session_open": self.session_open,
            "decisions": list(self.decisions),
            "objectives": (self.metric, self.mode),
        }


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """``a`` is no worse than ``b`` in every loss and better in one."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))
