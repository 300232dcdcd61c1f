"""Where a simulated study's workers stood when its log ends, rebuilt from the events alone.

A :class:`~hpostore.simulation.SimulatedExecutor` is deterministic: which trial runs on which
simulated worker, since when, up to which epoch, and whether a stop was sent to it, follow
from the events it caused. :func:`rebuild` walks a study's events in seq order as the
executor lived them (a ``start`` takes the top free worker, a ``report`` is an epoch done, a
``stop``/``pause`` decided on a report stops the run at that moment, an ``evaluate``/``fail``
frees the worker), so a resumed study continues the same schedule. A ``start`` of a trial whose
run is still open is the re-run after a crash: in simulated time the run never stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

#: the event columns the walk reads
COLUMNS = ["seq", "kind", "trial", "resource", "elapsed", "worker"]


@dataclass(frozen=True, slots=True)
class InFlight:
    """A run open when the log ends: it continues on its worker when the tuner re-runs it."""

    trial: int
    worker: str
    #: elapsed of the ``start`` that began the run (the re-run after a crash keeps it)
    started: float
    #: epochs done before this run (its previous result's resource); None: a fresh trial
    progress: float | None
    #: the resource of its last report in this run (None: none yet) and when it came
    reported: float | None
    reported_at: float | None
    #: seq of the event after which the executor scheduled its next step (heap order)
    rank: int
    #: when a stop (or pause) decided on its report was sent (None: not stopped), and its seq
    stopped_at: float | None
    stop_rank: int


@dataclass(frozen=True, slots=True)
class Timeline:
    """The simulated workers at the end of a log."""

    clock: float
    free: list[str]
    running: dict[int, InFlight]
    #: trial -> epochs done when its last run ended (the resource of its last result)
    progress: dict[int, float]
    #: heap ranks after the log's events: above every seq
    next_rank: int


@dataclass(slots=True)
class _Run:
    worker: str
    started: float
    progress: float | None
    rank: int
    reported: float | None = None
    reported_at: float | None = None
    stopped_at: float | None = None
    stop_rank: int = 0


def initial_free(n_workers: int) -> list[str]:
    """The free workers of a fresh executor, as a stack (``pop`` gives ``sim-0`` first)."""
    return [f"sim-{i}" for i in reversed(range(n_workers))]


def rebuild(events: pa.Table, n_workers: int) -> Timeline | None:
    """The simulated workers after ``events`` (one study's, in seq order); None if the events
    were not produced by a simulated executor of ``n_workers`` workers (then nothing is
    continued: the tuner's re-runs start afresh)."""
    if not events.num_rows:
        return None
    cols = [events.column(c).to_pylist() for c in COLUMNS]
    free = initial_free(n_workers)
    runs: dict[int, _Run] = {}
    progress: dict[int, float] = {}
    for seq, kind, trial, resource, elapsed, worker in zip(*cols):
        if kind == "start":
            if trial in runs:
                continue  # a re-run after a crash: the simulated run goes on
            if not free:
                return None  # more runs than workers: not this executor's log
            runs[trial] = _Run(free.pop(), elapsed, progress.get(trial), seq)
        elif kind == "report":
            run = runs.get(trial)
            if run is None or run.stopped_at is not None:
                return None
            run.reported, run.reported_at, run.rank = resource, elapsed, seq
        elif kind in ("stop", "pause"):
            run = runs.get(trial)
            # decided on the run's report (the decision carries its resource): the loop sent it
            # the stop; one decided on another trial's result (resource None) was not sent
            if run is not None and resource is not None and run.stopped_at is None:
                run.stopped_at, run.stop_rank = elapsed, seq
        elif kind in ("evaluate", "fail"):
            ended = runs.pop(trial, None)
            if ended is None or (kind == "evaluate" and worker != ended.worker):
                return None  # a result from a worker the walk did not give it
            free.append(ended.worker)
            if kind == "evaluate":
                progress[trial] = _done(resource, ended)
    running = {
        t: InFlight(t, r.worker, r.started, r.progress, r.reported, r.reported_at, r.rank,
                    r.stopped_at, r.stop_rank)
        for t, r in runs.items()
    }  # fmt: skip
    return Timeline(float(cols[4][-1]), free, running, progress, int(cols[0][-1]) + 1)


def _done(resource: Any, run: _Run) -> float:
    """Epochs done when a run ended: its result's resource (a report per epoch: the last one);
    unknown (no resource): all of them."""
    if isinstance(resource, (int, float)):
        return float(resource)
    return float("inf") if run.reported is None else float(run.reported)
