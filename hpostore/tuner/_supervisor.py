"""The pool supervisor: submits trials, rebuilds a local pool that broke, shuts it down."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import BrokenExecutor
from typing import Any

from ..channels import ReportChannel
from ..errors import HPOStoreError
from ..executors import LocalPool, RayExecutor, TrialExecutor

log = logging.getLogger("hpostore")

WORKER_DIED_HINT = (
    " If the worker's output shows ModuleNotFoundError, the objective's module cannot be "
    "imported by worker processes: define the objective in an importable module or in the "
    "script you run."
)

#: seconds between probes of a pool while no trial finishes
PROBE_EVERY_S = 1.0

#: rebuilds in a row (a pool that breaks again at once) before the study gives up
MAX_REBUILDS = 20


class PoolSupervisor:
    """Runs trials on an executor; a pool the tuner built (``rebuild``) is replaced when it
    breaks, even while submitting, and the study goes on. ``generation`` counts replacements:
    trials submitted to an earlier generation that did not finish were lost with it."""

    def __init__(
        self,
        executor: TrialExecutor,
        rebuild: Callable[[], TrialExecutor] | None,
        study: str,
    ) -> None:
        self.executor = executor
        self._rebuild = rebuild
        self.study = study
        self.generation = 0
        self._probed = time.monotonic()

    @property
    def owned(self) -> bool:
        return self._rebuild is not None

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> cf.Future[Any]:
        """Submit to the current pool, replacing it as often as it is found broken."""
        for attempt in range(MAX_REBUILDS):
            if attempt:  # a pool that keeps breaking at once: give what breaks it time to pass
                time.sleep(min(0.02 * 2**attempt, 2.0))
            try:
                return self.executor.submit(fn, *args, **kwargs)
            except cf.BrokenExecutor as exc:
                self.replace(exc, trial=None)
            except (OSError, EOFError) as exc:
                # a local pool that breaks during the submit: the stdlib's manager thread closes
                # its queues while submit starts a worker ("handle is closed"), or the new worker
                # is killed before the fork server reports it ("unexpected EOF")
                if self._rebuild is None:
                    raise
                self.replace(exc, trial=None)
        raise HPOStoreError(
            f"study {self.study!r}: the worker pool broke {MAX_REBUILDS} times in a row while "
            f"trials were being submitted; run again to resume.{WORKER_DIED_HINT}"
        )

    def replace(self, exc: BaseException, trial: int | None) -> None:
        """The executor broke (while ``trial`` ran, if known): build a new one, or raise."""
        where = "" if trial is None else f" while running trial {trial}"
        if self._rebuild is None:
            raise HPOStoreError(
                f"study {self.study!r}: the executor broke{where} ({exc}). Run again to "
                f"resume; the running trials are re-run.{WORKER_DIED_HINT}"
            ) from exc
        log.warning("study %r: the worker pool broke%s (%s); starting a new one", self.study,
                    where, exc)  # fmt: skip
        self._discard(self.executor)
        self.executor = self._rebuild()
        self.generation += 1

    @staticmethod
    def _discard(executor: TrialExecutor) -> None:
        if isinstance(executor, LocalPool):
            executor.kill_workers()  # survivors of a broken pool must not run on unseen
        with contextlib.suppress(Exception):  # a broken pool may fail to shut down cleanly
            executor.shutdown(wait=False, cancel_futures=True)

    def wait(
        self, futures: Iterable[cf.Future[Any]], channel: ReportChannel | None
    ) -> set[cf.Future[Any]]:
        """The futures done by now. While none is, a pool of ours is probed (about once a
        second): one found broken is replaced (``generation`` moves on)."""
        done = self.executor.wait(futures, channel)
        if done or not isinstance(self.executor, LocalPool):
            return done
        now = time.monotonic()
        if now - self._probed >= PROBE_EVERY_S:
            self._probed = now
            if not self.executor.alive():
                self.replace(BrokenExecutor("found broken by a probe"), trial=None)
        return done

    def shutdown(self, clean: bool, running: Iterable[cf.Future[Any]]) -> None:
        """Release the executor: wait for it after a clean run; else cancel what still runs
        (nobody will log its result)."""
        running = list(running)
        if not clean:
            for future in running:
                future.cancel()
            if isinstance(self.executor, RayExecutor):
                self.executor.cancel(running)
        if self.owned:
            if not clean and isinstance(self.executor, LocalPool):
                self.executor.kill_workers()
            self.executor.shutdown(wait=clean, cancel_futures=True)
