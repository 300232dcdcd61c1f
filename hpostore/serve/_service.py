"""The study service: ask/tell over HTTP JSON, one ``HPOTuner`` per study, leases with heartbeats.

Routes (POST, a JSON object body; writes need the token whenever one is set):

- ``/api/studies/{study}/ask`` ``{"worker"?, "trials"?}`` -> ``{trial, config, attempt,
  lease_id, lease_s}``, or ``{"done": true}`` (the study has ``trials`` trials, all told), or
  ``{"wait": s}`` (nothing to hand out now: ask again after ``s`` seconds).
- ``.../trials/{id}/report`` ``{lease_id, resource, error, metrics?}`` -> ``{stop}`` (also a
  heartbeat; ``metrics``: extra metrics, logged with the report, or the keyword form
  ``{"epoch": 3, "<metric>": 0.2}`` without resource/error).
- ``.../trials/{id}/heartbeat`` ``{lease_id}`` -> ``{lease_s, stop}`` (``stop``: a report of
  this attempt was answered ``stop``).
- ``.../trials/{id}/tell`` ``{lease_id, value | metrics | failed | last_report: true}`` ->
  ``{told: true}`` (``last_report``: the value of the attempt's last report, for a stopped
  trial whose process was ended before it printed one).

A lease lasts ``lease_s`` seconds from the last heartbeat/report. One whose time is up is taken
back at the next request: the tuner's ``release`` (an ``interrupt`` event, reason "lease expired") and
the trial goes to the next ``ask`` as its next attempt. Leases live in the server's memory. **After a restart**
the new session marks the trials that were running interrupted (as any resume does), and each
waits one lease time for its worker: the first heartbeat/report/tell carrying the trial's old
lease (same trial and attempt) reclaims it — a new ``start``, next attempt, same config, on that
worker — and its tell is accepted. A trial not reclaimed in time goes to the next ``ask``; its
old worker then gets 409 and asks again.
A refused request (400/404/409) logs nothing. No request executes user code: a study's
scheduler is rebuilt from its logged spec, from the built-in classes only (:func:`rebuild`).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidArgument
from ..log.trial import TrialStatus
from ..searchers.grid import GridExhausted
from ..store.base import EventLog
from ..tuner import HPOTuner, Trial
from ._rebuild import ServiceError, rebuild, served_by_workers

log = logging.getLogger("hpostore")
UNFINISHED = ("suggested", "running", "interrupted")

#: Default lease: a trial whose worker is silent this long is handed to the next ask.
LEASE_S = 30.0


@dataclass(slots=True)
class Lease:
    """A trial handed out: which attempt, to whom, until when (monotonic seconds)."""

    study: str
    trial: int
    attempt: int
    lease_id: str
    worker: str
    expires: float
    #: the tuner's handle of the trial (its report and tell go through it); None while a trial
    #: running when the server last died waits to be reclaimed by its worker
    handle: Trial | None = None
    #: the scheduler asked the trial to stop (a report answered ``stop``)
    stop: bool = False
    #: the objective value of the trial's last report, as reported
    last_error: float | None = None


class StudyService:
    """Ask/tell for every study of one store, through one tuner per study, under one lock."""

    def __init__(
        self,
        store: EventLog,
        *,
        lease_s: float = LEASE_S,
        tuners: dict[str, HPOTuner] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not lease_s > 0:
            raise InvalidArgument(f"lease_s must be positive seconds, got {lease_s!r}")
        self.store, self.lease_s, self.clock = store, float(lease_s), clock
        self.lock = threading.Lock()
        self.tuners: dict[str, HPOTuner] = dict(tuners or {})
        #: the tuners the service built (it closes those; a tuner it was given is the caller's)
        self._built: set[str] = set()
        self.leases: dict[tuple[str, int], Lease] = {}
        #: lease ids taken back (expired), to say so when their worker comes back
        self.expired: dict[str, str] = {}

    def tuner(self, study: str) -> HPOTuner:
        found = self.tuners.get(study)
        if found is not None:
            return found
        if study not in self.store.studies():
            raise ServiceError(404, f"no study {study!r} in {self.store.path}; create it first "
                               "(a tuner with its searcher), then serve the store")  # fmt: skip
        table = self.store.events(study, columns=["kind", "payload"])
        specs = [p for k, p in zip(table.column("kind").to_pylist(),
                                   table.column("payload").to_pylist()) if k == "study"]  # fmt: skip
        if not specs or not specs[0]:
            raise ServiceError(404, f"study {study!r} has no logged spec to rebuild it from")
        scheduler, (metric, mode) = rebuild(json.loads(specs[0]), study)
        tuner = HPOTuner(scheduler, served_by_workers, store=self.store, study=study,
                         verbose=False, max_failures=None,
                         metric=metric if len(metric) > 1 else metric[0],
                         mode=mode if len(mode) > 1 else mode[0])  # fmt: skip
        self.tuners[study] = tuner
        self._built.add(study)
        self._reclaimable(study, tuner)
        return tuner

    def _reclaimable(self, study: str, tuner: HPOTuner) -> None:
        """Trials running when the server died (its next ``ask`` opens a session that marks
        them interrupted): each waits one lease time for its worker to reclaim it, kept from
        ``ask`` meanwhile (:meth:`_kept`)."""
        expires = self.clock() + self.lease_s
        for t in tuner.state.trials.values():
            if t.status is TrialStatus.RUNNING:
                self.leases[(study, t.trial)] = Lease(study, t.trial, t.attempts,
                                                      f"{t.trial}.{t.attempts}.", "?", expires)  # fmt: skip

    def _kept(self, study: str) -> list[int]:
        """Trials of ``study`` kept for the worker that ran them before a restart."""
        return [k[1] for k, lease in self.leases.items() if k[0] == study and lease.handle is None]

    def _reclaim(self, tuner: HPOTuner, lease: Lease, lease_id: str, worker: str) -> None:
        """The worker of a trial running when the server died came back: a new ``start``
        (next attempt, same config, on that worker) and the trial is its again."""
        lease.handle = tuner.ask(trial=lease.trial, worker=worker)
        lease.attempt, lease.lease_id, lease.worker = lease.handle.attempt, lease_id, worker
        log.info("study %r: trial %d reclaimed by %s after a restart", lease.study, lease.trial,
                 worker)  # fmt: skip

    def close(self) -> None:
        with self.lock:
            for study in self._built:
                self.tuners.pop(study).close()
            self._built.clear()

    # --- leases ------------------------------------------------------------------------------
    def _sweep(self) -> None:
        now = self.clock()
        for key, lease in list(self.leases.items()):
            if lease.expires > now:
                continue
            del self.leases[key]
            if lease.handle is None:  # not reclaimed after a restart: the next ask hands it out
                continue
            self.expired[lease.lease_id] = f"expired (no heartbeat for {self.lease_s:g} s)"
            if len(self.expired) > 10_000:  # bounded: the oldest are forgotten
                del self.expired[next(iter(self.expired))]
            # logged (interrupt) and handed out again by the tuner's next ask()
            self.tuners[lease.study].release(lease.handle, reason="lease expired",
                                             worker=lease.worker)  # fmt: skip
            log.info("study %r: trial %d's lease expired (%s)", lease.study, lease.trial,
                     lease.worker)  # fmt: skip

    def _lease(self, study: str, trial: int, body: dict[str, Any], verb: str) -> Lease:
        tuner = self.tuner(study)
        self._sweep()
        if trial not in tuner.state.trials:
            raise ServiceError(404, f"study {study!r} has no trial {trial}")
        lease, lease_id = self.leases.get((study, trial)), body.get("lease_id")
        if lease is not None and isinstance(lease_id, str):
            if lease.handle is None and lease_id.startswith(lease.lease_id):
                self._reclaim(tuner, lease, lease_id, str(body.get("worker", "?"))[:200])
            if lease.lease_id == lease_id:
                return lease
        why = self.expired.get(lease_id) if isinstance(lease_id, str) else None
        if why is not None:
            why = f"its lease {lease_id!r} {why}"
        elif lease is None and tuner.state.trials[trial].status.value not in UNFINISHED:
            why = "it was told already (each trial is told once)"
        else:
            why = (f"lease {lease_id!r} does not hold it (it was handed out again, or was not "
                   "reclaimed in time after a server restart)")  # fmt: skip
        raise ServiceError(409, f"cannot {verb} trial {trial} of study {study!r}: {why}; "
                           "nothing was logged. Ask for a new trial.")  # fmt: skip

    # --- the calls ---------------------------------------------------------------------------
    def ask(self, study: str, worker: str, trials: int | None) -> dict[str, Any]:
        with self.lock:
            tuner = self.tuner(study)
            self._sweep()
            state = tuner.state
            if trials is not None and len(state.trials) >= trials:
                free = [t for t in state.unfinished() if (study, t.trial) not in self.leases]
                if not free:
                    if any(k[0] == study for k in self.leases):
                        return {"wait": min(1.0, self.lease_s / 4)}
                    return {"done": True, "trials": len(state.trials)}
            try:
                trial = tuner.ask(worker=worker, exclude=self._kept(study))
            except InvalidArgument as exc:  # the scheduler waits for results
                return {"wait": min(1.0, self.lease_s / 4), "reason": str(exc)}
            except GridExhausted:  # every point proposed: done once none is held
                if any(k[0] == study for k in self.leases):
                    return {"wait": min(1.0, self.lease_s / 4)}
                return {"done": True, "trials": len(state.trials)}
            lease = Lease(study, trial.id, trial.attempt,
                          f"{trial.id}.{trial.attempt}.{secrets.token_hex(8)}", worker,
                          self.clock() + self.lease_s, trial)  # fmt: skip
            self.leases[(study, trial.id)] = lease
            return {"trial": trial.id, "config": trial.config, "attempt": trial.attempt,
                    "lease_id": lease.lease_id, "lease_s": self.lease_s,
                    "checkpoint_dir": trial.checkpoint_dir}  # fmt: skip

    def heartbeat(self, study: str, trial: int, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            lease = self._lease(study, trial, body, "heartbeat")
            lease.expires = self.clock() + self.lease_s
            return {"lease_s": self.lease_s, "stop": lease.stop}

    def report(self, study: str, trial: int, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            lease = self._lease(study, trial, body, "report")
            lease.expires = self.clock() + self.lease_s
            metrics = body.get("metrics") or {}
            if not isinstance(metrics, dict):
                raise ServiceError(400, "metrics must be a JSON object")
            metrics = dict(metrics)
            given = {"resource": body.get("resource"), "error": body.get("error")}
            for name in given:  # the keyword form may name them among the metrics
                if name in metrics:
                    value = metrics.pop(name)
                    if given[name] is not None and given[name] != value:
                        raise ServiceError(400, f"{name} given twice: {given[name]!r} and "
                                           f"metrics.{name} = {value!r}")  # fmt: skip
                    given[name] = value
            assert lease.handle is not None  # _lease reclaims
            stop = lease.handle.report(given["resource"], given["error"], **metrics)
            lease.stop = lease.stop or bool(stop)
            state = self.tuners[study].state  # the fold's curve holds losses: undo the sign
            lease.last_error = state.trials[trial].curve[-1][1] * state.sign
            return {"stop": bool(stop)}

    def tell(self, study: str, trial: int, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            lease = self._lease(study, trial, body, "tell")
            tuner = self.tuners[study]
            failed = body.get("failed")
            value = body.get("metrics", body.get("value"))
            if failed is not None and not isinstance(failed, str):
                raise ServiceError(400, "failed must be a string saying why the trial failed")
            if body.get("last_report") is True:  # a stopped trial ended without its value
                if value is not None or failed is not None:
                    raise ServiceError(400, "tell takes last_report, a value or failed, not two")
                if lease.last_error is None:
                    raise ServiceError(409, f"trial {trial} of study {study!r} has not reported "
                                       "in this attempt: tell its value or failed=...")  # fmt: skip
                value = lease.last_error
            assert lease.handle is not None
            tuner.tell(lease.handle, value, failed=failed)
            del self.leases[(study, trial)]
            return {"told": True, "trial": trial, "attempt": lease.attempt}
