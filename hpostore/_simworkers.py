"""Simulated workers: an executor that plays learning curves on a simulated clock, in parallel.

:class:`SimulatedExecutor` runs the tuner's parallel loop in simulated time (see
:mod:`hpostore.simulation` for the benchmarks whose curves it plays); it resumes a study exactly
by rebuilding its workers from the log (:mod:`hpostore._simtimeline`).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future
from concurrent.futures._base import RUNNING
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from ._simclock import LearningCurve, SimulatedClock
from ._simtimeline import InFlight, initial_free, rebuild
from .channels import Report, ReportChannel
from .errors import InvalidArgument
from .executors import SharedConditionFuture
from .tuner import TrialOutcome, run_trial

__all__ = ["LearningCurve", "SimulatedClock", "SimulatedExecutor"]  # the first two from _simclock


@dataclass(slots=True)
class _Job:
    """A trial on a simulated worker: its curve, how far it got, when its next epoch ends."""

    trial: int
    attempt: int
    future: Future[Any]
    worker: str
    curve: LearningCurve
    epoch: int  # epochs done (resumed trials start where they paused)
    started: float
    reports: bool
    stopped: bool = False
    generation: int = 0


class _SimulatedReporter:
    """The reporter a simulated trial is given: it carries the trial id, nothing else."""

    __slots__ = ("attempt", "trial")

    def __init__(self, trial: int, attempt: int) -> None:
        self.trial, self.attempt = trial, attempt

    def __call__(self, resource: float, error: float) -> bool:  # pragma: no cover - not called
        raise InvalidArgument("a simulated trial reports from its LearningCurve, not by calls")


class _SimulatedChannel(ReportChannel):
    def __init__(self, executor: SimulatedExecutor) -> None:
        self._executor = executor
        self.pending: list[Report] = []

    def reporter(self, trial: int, attempt: int) -> Callable[[float, float], bool]:
        return _SimulatedReporter(trial, attempt)

    def drain(self) -> list[Report]:
        out, self.pending = self.pending, []
        return out

    def stop(self, trial: int) -> None:
        self._executor._stop(trial)

    def forget(self, trial: int) -> None:
        pass

    def close(self) -> None:
        pass


class SimulatedExecutor(Executor):
    """``n_workers`` simulated workers on a :class:`SimulatedClock`: the tuner's parallel loop,
    in simulated time.

    The objective returns a :class:`LearningCurve` instead of training
    (:meth:`~hpostore.simulation.Benchmark.curve_objective`). A submitted trial occupies a worker from the current
    simulated time; it reports epoch ``k``'s error when its first ``k`` epochs' seconds have
    passed, and finishes after its last epoch, or at the report after which the scheduler
    stopped it. The tuner's ``wait`` moves the clock to the next such moment: the events of a
    study carry simulated ``elapsed``, in the order the worker schedule produces them, and the
    same seed gives the same study on every machine. ``reports=False`` skips the per-epoch
    ``report`` events (a study of FIFO searchers, which do not read them, runs ~5x faster). A
    trial resumed with more resource (promotion-type ASHA) continues from the epoch it paused
    at, as a checkpointed objective would.

    Resuming a study (:meth:`resume`, called by the tuner at the start of every session) rebuilds
    the workers from the log: the clock stands at the last event's time, and each trial that was
    running when the tuner died goes on, when the tuner re-runs it, on its worker from where it
    was (its logged reports are not made again): a crash of the tuner takes no simulated time,
    so a killed and resumed study logs the uninterrupted study's events.

    >>> from hpostore import BasicScheduler, HPOTuner, RandomSearcher
    >>> from hpostore.simulation import Branin
    >>> bench = Branin(max_resource=3)
    >>> executor = SimulatedExecutor(n_workers=4)
    >>> tuner = HPOTuner(BasicScheduler(RandomSearcher(bench.config_space, seed=0)),
    ...                  bench.curve_objective(), executor=executor, verbose=False)
    >>> tuner.run(8).state.n_finished, executor.clock() < sum(r["runtime"] for r in tuner.records)
    (8, True)
    """

    #: the tuner makes a report channel even for objectives without a ``report`` parameter
    reports_curves = True
    inline = False
    remote = False

    def __init__(
        self, n_workers: int, clock: SimulatedClock | None = None, *, reports: bool = True
    ) -> None:
        if not isinstance(n_workers, int) or isinstance(n_workers, bool) or n_workers < 1:
            raise InvalidArgument(f"n_workers must be a positive int, got {n_workers!r}")
        if clock is not None and not isinstance(clock, SimulatedClock):
            raise InvalidArgument(f"clock must be a SimulatedClock, got {type(clock).__name__}")
        self.clock = clock if clock is not None else SimulatedClock()
        self.max_workers = n_workers
        self._free = initial_free(n_workers)
        self._heap: list[tuple[float, int, int, _Job]] = []
        self._order = itertools.count()
        self._jobs: dict[int, _Job] = {}
        #: trial -> epochs done (the simulated checkpoint)
        self._progress: dict[int, float] = {}
        #: runs rebuilt by :meth:`resume` that go on when the tuner re-runs their trial
        self._continuing: dict[int, InFlight] = {}
        self._channel = _SimulatedChannel(self)
        self._reports = bool(reports)

    def resume(self, events: pa.Table) -> dict[int, float | None]:
        """Rebuild the workers from a study's events (seq order): the clock at the last event,
        the free workers, each trial's epochs done, and the runs still open, which go on when
        the tuner re-runs their trial. Returns the resource of each open run's last report
        (None: none yet), which its result will carry. A log this executor did not write
        (another executor, another number of workers) leaves it as it is: re-runs start afresh.
        """
        timeline = rebuild(events, self.max_workers)
        if timeline is None:
            return {}
        self._heap.clear()
        self._jobs.clear()
        self.clock.now = timeline.clock
        self._free = list(timeline.free)
        self._progress = dict(timeline.progress)
        self._continuing = dict(timeline.running)
        self._order = itertools.count(timeline.next_rank)
        return {t: run.reported for t, run in timeline.running.items()}

    def report_channel(self) -> ReportChannel:
        return self._channel

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if fn is not run_trial or kwargs or len(args) != 3:
            raise InvalidArgument(
                "a SimulatedExecutor runs the tuner's trials only: pass it to HPOTuner(executor=...)"
            )
        objective, config, reporter = args
        trial = reporter.trial if isinstance(reporter, _SimulatedReporter) else -1
        attempt = reporter.attempt if isinstance(reporter, _SimulatedReporter) else 0
        run = self._continuing.pop(trial, None)
        if run is None and not self._free and self._continuing:
            self._forget_continuing()  # runs the tuner did not re-run give their workers back
        if run is None and not self._free:
            raise InvalidArgument(
                f"all {self.max_workers} simulated workers are busy; the tuner keeps at most "
                "n_workers trials in flight"
            )
        curve = objective(**config)
        if not isinstance(curve, LearningCurve):
            raise InvalidArgument(
                f"a simulated objective returns a LearningCurve (errors and seconds per epoch), "
                f"got {type(curve).__name__}; use Benchmark.curve_objective()"
            )
        # born running, sharing one condition (never waited on: see SharedConditionFuture)
        future: Future[Any] = SharedConditionFuture(RUNNING)
        if run is not None:
            self._continue(run, attempt, future, curve)
            return future
        epoch = self._first_epoch(self._progress.get(trial), curve)
        job = _Job(
            trial, attempt, future, self._free.pop(), curve, epoch, self.clock(), self._reports
        )
        self._jobs[trial] = job
        if self._reports:  # an event per epoch
            self._schedule(job, self.clock() + float(curve.seconds[epoch]))
        else:  # one event: the end of its last epoch
            job.epoch = len(curve.errors) - 1
            self._schedule(job, self.clock() + float(sum(curve.seconds[epoch:])))
        return future

    @staticmethod
    def _first_epoch(progress: float | None, curve: LearningCurve) -> int:
        """The epoch a run starts from: where the trial's last run ended (its checkpoint)."""
        if progress is None:
            return 0
        return int(min(progress, len(curve.errors) - 1))

    def _continue(
        self, run: InFlight, attempt: int, future: Future[Any], curve: LearningCurve
    ) -> None:
        """Put a run rebuilt by :meth:`resume` back on its worker, on its own timeline: its
        next epoch ends when it would have had the tuner not died (its logged reports are not
        made again); a run told to stop finishes at the moment the stop was sent."""
        n = len(curve.errors)
        first = self._first_epoch(run.progress, curve)
        epoch = first if run.reported is None else int(run.reported)
        job = _Job(run.trial, attempt, future, run.worker, curve, epoch, run.started, self._reports)
        self._jobs[run.trial] = job
        if run.stopped_at is not None:
            job.stopped = True
            heapq.heappush(self._heap, (run.stopped_at, run.stop_rank, job.generation, job))
        elif not self._reports:
            job.epoch = n - 1
            at = run.started + float(sum(curve.seconds[first:]))
            heapq.heappush(self._heap, (at, run.rank, job.generation, job))
        elif epoch >= n:  # every epoch reported: it had finished when the tuner died
            assert run.reported_at is not None
            heapq.heappush(self._heap, (run.reported_at, -1, job.generation, job))
        else:
            last = run.started if run.reported_at is None else run.reported_at
            at = last + float(curve.seconds[epoch])
            heapq.heappush(self._heap, (at, run.rank, job.generation, job))

    def _forget_continuing(self) -> None:
        for run in self._continuing.values():
            self._free.append(run.worker)
        self._continuing.clear()

    def _schedule(self, job: _Job, at: float) -> None:
        heapq.heappush(self._heap, (at, next(self._order), job.generation, job))

    def _stop(self, trial: int) -> None:
        job = self._jobs.get(trial)
        if job is not None and not job.stopped:
            job.stopped = True
            job.generation += 1  # its pending epoch never ends: it finishes now
            self._schedule(job, self.clock())

    def wait(
        self, futures: Iterable[Future[Any]], channel: ReportChannel | None = None
    ) -> set[Future[Any]]:
        """Move the clock to the next report or finish; the futures that finished by then."""
        while self._heap:
            at, _, generation, job = heapq.heappop(self._heap)
            if generation != job.generation:
                continue  # superseded by a stop
            self.clock.now = max(self.clock.now, at)
            n = len(job.curve.errors)
            if not job.stopped and job.epoch < n:  # (a continued run may have none left)
                job.epoch += 1
                if job.reports:
                    self._channel.pending.append(
                        (
                            job.trial,
                            job.attempt,
                            float(job.epoch),
                            float(job.curve.errors[job.epoch - 1]),
                        )
                    )
                if job.epoch < n:
                    self._schedule(job, at + float(job.curve.seconds[job.epoch]))
                    return set()
            self._finish(job)
            return {job.future}
        return set()

    def _finish(self, job: _Job) -> None:
        del self._jobs[job.trial]
        self._progress[job.trial] = job.epoch
        self._free.append(job.worker)
        error = float(job.curve.errors[job.epoch - 1]) if job.epoch else None
        message = None if error is not None else "stopped before its first epoch"
        job.future.set_result(TrialOutcome(error, message, self.clock() - job.started, job.worker))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._heap.clear()
        self._jobs.clear()
        self._continuing.clear()
