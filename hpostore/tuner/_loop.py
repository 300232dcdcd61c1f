"""The one trial loop: fill the free slots, wait, log results; sequential is an inline executor."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import gc
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..channels import ReportChannel
from ..errors import InvalidArgument, TooManyFailures
from ..executors import ContinuesRuns
from ..log.events import Kind, dumps
from ._checkpoints import Checkpoints
from ._driver import SchedulerDriver
from ._objective import ObjectiveCall, TrialOutcome, run_trial
from ._recorder import Recorder
from ._supervisor import WORKER_DIED_HINT, PoolSupervisor


@dataclass(slots=True)
class Job:
    """A trial in flight (this attempt only: everything about the trial itself is in the fold)."""

    trial: int
    attempt: int
    generation: int = 0
    future: cf.Future[TrialOutcome] | None = None
    #: the resource of this attempt's last report (the result's resource if it ends early)
    resource: float | None = None
    #: a stop (or pause) was sent to it
    stopping: bool = False


def _succeeded(future: cf.Future[Any] | None) -> bool:
    """The future finished with a result (it was not lost with a broken worker pool)."""
    return (
        future is not None
        and future.done()
        and not future.cancelled()
        and future.exception() is None
    )


@contextlib.contextmanager
def _older_objects_frozen() -> Iterator[None]:
    """The objects that exist when a run starts (modules, the user's data, the study so far)
    are left out of the cyclic GC until it ends (``gc.freeze``), then handed back (``gc.unfreeze``).

    Each full collection walks every tracked object: at the start of a run that is ~100k of them
    (numpy, scipy, duckdb, pyarrow) and one walk costs tens of ms, ~6 µs a trial at 10k trials.
    Objects created during the run are collected as usual; garbage cycles that already existed
    wait until the run ends. Nothing is changed when the user froze objects or turned the
    collector off (their settings stand; unfreezing would hand back their objects too).
    """
    if gc.get_freeze_count() or not gc.isenabled():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class TrialLoop:
    """Runs trials until the study holds ``n`` results, on whatever executor the supervisor has.

    With an inline executor the objective runs inside ``submit`` (one slot): that is the
    sequential loop, through the same code as parallel workers.
    """

    def __init__(
        self,
        *,
        recorder: Recorder,
        driver: SchedulerDriver,
        call: ObjectiveCall,
        supervisor: PoolSupervisor,
        checkpoints: Checkpoints,
        delete_checkpoints: bool,
        max_failures: int | None,
        verbose: bool,
        budget_s: float | None,
    ) -> None:
        self.recorder, self.driver, self.call = recorder, driver, call
        self.sup, self.checkpoints = supervisor, checkpoints
        self.delete_checkpoints = delete_checkpoints
        self.max_failures, self.verbose, self.budget_s = max_failures, verbose, budget_s
        executor = supervisor.executor
        self.inline = executor.inline
        #: ``run_trial``'s clock argument: an inline trial's runtime is on the study clock
        self._clock = (recorder.clock,) if self.inline else ()
        self.slots = executor.max_workers
        self.channel: ReportChannel | None = None
        if call.wants_report or executor.reports_curves:
            self.channel = executor.report_channel()
            self.channel.bind(self._decide)
        self.running: dict[int, Job] = {}
        #: the running jobs by future, rebuilt only when a job starts or ends (a simulator's
        #: loop waits once per report, several times per trial)
        self._by_future: dict[cf.Future[TrialOutcome], Job] | None = None
        self.reruns: list[int] = []
        #: trials the executor continues where they were (a simulator rebuilt from the log):
        #: the resource of each one's last logged report, which its result carries
        self.continued: dict[int, float | None] = {}
        if isinstance(executor, ContinuesRuns):
            self.continued = executor.resume(recorder.store.events(recorder.study))
        #: trials lost with a broken pool: each re-runs alone, so that the one that kills its
        #: worker is found (and failed) without failing the others
        self.suspects: set[int] = set()

    def _within_budget(self) -> bool:
        return self.budget_s is None or self.recorder.session_s() < self.budget_s

    # --- the loop -----------------------------------------------------------------------------
    def run(self, n: int) -> None:
        """Run to ``n`` results; a trial still running when this raises is logged interrupted."""
        with _older_objects_frozen():
            self._run(n)

    def _run(self, n: int) -> None:
        state = self.recorder.state
        self.reruns = [t.trial for t in state.unfinished()]
        in_a_row = 0
        clean = False
        try:
            while True:
                self._fill(n)
                if not self.running:
                    if state.n_finished >= n or not self._within_budget():
                        break
                    raise InvalidArgument(
                        f"{type(self.driver.scheduler).__name__} has nothing to suggest while "
                        "no trial is running (it waits for results that will never come)"
                    )
                by_future = self._by_future
                if by_future is None:
                    by_future = {j.future: j for j in self.running.values() if j.future is not None}
                    self._by_future = by_future
                generation = self.sup.generation
                done = self.sup.wait(by_future, self.channel)
                if self.sup.generation != generation:  # a probe found the pool broken
                    self._lost(generation, culprit=None)
                self._drain()
                for future in done:
                    job = by_future[future]
                    if self.running.get(job.trial) is not job:
                        continue  # lost with a broken pool (below)
                    outcome = self._outcome(job)
                    if outcome is None:
                        continue
                    if outcome.error is not None:
                        in_a_row = 0
                        continue
                    in_a_row += 1
                    if self.max_failures is not None and in_a_row >= self.max_failures:
                        raise TooManyFailures(
                            f"study {self.recorder.study!r}: {in_a_row} trials in a row failed "
                            f"(max_failures={self.max_failures}); the last one (trial "
                            f"{job.trial}): {outcome.message}. The run was stopped; fix the "
                            "objective and run again to continue (failed trials stay in the log)."
                        )
            clean = True
        except BaseException as exc:
            for job in self.running.values():
                self.recorder.append(
                    Kind.INTERRUPT, trial=job.trial, payload=dumps({"reason": type(exc).__name__})
                )
            raise
        finally:
            if self.channel is not None:
                self.channel.close()
            futures = [j.future for j in self.running.values() if j.future is not None]
            self.sup.shutdown(clean, futures)

    def _fill(self, n: int) -> None:
        """Start trials (re-runs first) while a slot is free and results are still needed."""
        state = self.recorder.state
        while (
            len(self.running) < self.slots
            and state.n_finished + len(self.running) < n
            and self._within_budget()
            and self.suspects.isdisjoint(self.running)
        ):
            if self.reruns:
                if self.reruns[0] in self.suspects and self.running:
                    return  # a suspect runs alone
                trial = self.reruns.pop(0)
                config = state.trials[trial].config
            else:
                proposed = self.driver.propose()
                if proposed is None:
                    return
                trial, config = proposed
            self._launch(trial, config)

    def _launch(self, trial: int, config: dict[str, Any]) -> None:
        worker = self.recorder.worker if self.inline else None
        job = Job(trial, self.driver.start(trial, config, worker))
        job.resource = self.continued.pop(trial, None)
        self.running[trial] = job  # before submit: an inline trial runs inside it
        reporter = None
        if self.channel is not None:
            reporter = self.channel.reporter(trial, job.attempt)
        directory = self.checkpoints.dir(trial) if self.call.wants_checkpoint else None
        kwargs = {**config, **self.call.extra(None, directory)}
        if self.call.wants_report:
            del kwargs["report"]  # extra's placeholder: run_trial passes the reporter
        generation = self.sup.generation
        job.generation = generation
        job.future = self.sup.submit(run_trial, self.call.objective, kwargs, reporter, *self._clock)
        self._by_future = None
        if self.sup.generation != generation:  # the pool broke while submitting
            job.generation = self.sup.generation
            self._lost(generation, culprit=None)
        if self.channel is not None:
            self._drain()  # an inline trial's tuner-side errors surface here

    # --- reports ------------------------------------------------------------------------------
    def _decide(
        self,
        trial: int,
        attempt: int,
        resource: float,
        error: float,
        metrics: dict[str, float] | None = None,
    ) -> bool:
        """Log a report of a running trial and the scheduler's decision; True: stop it."""
        job = self.running[trial]
        job.resource = resource
        stop = self.driver.report(trial, resource, error, stopping=job.stopping, metrics=metrics)
        if stop and not job.stopping:
            job.stopping = True
            if self.channel is not None:
                self.channel.stop(trial)
        return stop

    def _drain(self) -> None:
        if self.channel is None:
            return
        for report in self.channel.drain():
            trial, attempt, resource, error = report[:4]
            job = self.running.get(trial)
            if job is None or job.attempt != attempt:
                continue  # from a trial that already ended (or an earlier attempt)
            self._decide(trial, attempt, resource, error, report[4] if len(report) > 4 else None)
            self.channel.decided(trial, attempt)  # the worker waiting on this report goes on

    # --- results ------------------------------------------------------------------------------
    def _outcome(self, job: Job) -> TrialOutcome | None:
        """Log a finished job's result (committed before anything acts on it); None: lost."""
        assert job.future is not None
        try:
            outcome: TrialOutcome = job.future.result()
        except (cf.BrokenExecutor, cf.CancelledError) as exc:
            if job.generation == self.sup.generation:
                self.sup.replace(exc, job.trial)
            return self._lost(job.generation, culprit=job, exc=exc)
        del self.running[job.trial]
        self._by_future = None
        self.suspects.discard(job.trial)
        if self.channel is not None:
            self.channel.forget(job.trial)
        # the lines users see (and the DEBUG log) come from the Progress listener, which
        # hears of each start and result through the driver's hooks
        outcome = self.driver.result(job.trial, outcome, job.resource)  # as logged (resolved)
        if self.delete_checkpoints:
            self.checkpoints.cleanup(self.recorder.state)
        return outcome

    def _lost(
        self, generation: int, culprit: Job | None, exc: BaseException | None = None
    ) -> TrialOutcome | None:
        """Jobs of pool ``generation`` (or older) that did not finish were lost with it.

        If ``culprit`` ran alone it killed its worker: it is failed (and returned). Else every
        lost trial is logged interrupted and becomes a suspect, re-run alone before anything
        else, so the culprit is found without failing the others.
        """
        lost = [
            j
            for j in self.running.values()
            if j.generation <= generation and not _succeeded(j.future)
        ]
        for j in lost:
            del self.running[j.trial]
            self._by_future = None
            if self.channel is not None:
                self.channel.forget(j.trial)
        if culprit is not None and [j.trial for j in lost] == [culprit.trial]:
            self.suspects.discard(culprit.trial)
            message = (
                f"the worker process died while running this trial alone ({exc}): the "
                "objective ends its process (a crash in native code, the OOM killer, "
                f"os._exit).{WORKER_DIED_HINT}"
            )
            started = self.recorder.state.trials[culprit.trial].started_at or 0.0
            outcome = TrialOutcome(None, message, self.recorder.elapsed() - started, "(died)")
            self.driver.result(culprit.trial, outcome, culprit.resource)
            return outcome
        for j in lost:
            self.recorder.append(Kind.INTERRUPT, trial=j.trial,
                                 payload=dumps({"reason": "worker died"}))  # fmt: skip
            self.suspects.add(j.trial)
        self.reruns[:0] = sorted(j.trial for j in lost)
        return None
