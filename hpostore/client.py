"""The study service's Python client: ``hpostore.connect(url, study)`` with ask/tell/report.

Standard library only (urllib), so a worker needs no extra install. While a trial is held a
background thread renews its lease (a heartbeat every third of the lease). A server that does
not answer (restarting, a network blip) is retried with backoff up to ``retry_s`` seconds. A
refusal is an error: :class:`LeaseLost` (409) when the trial is no longer this worker's — its
lease expired, it was told already, or the server restarted and the trial was not reclaimed
within a lease time (the heartbeat reclaims it at once) — and the worker should drop it and ask
again.

>>> client = hpostore.connect("http://127.0.0.1:8765", "my-study")    # doctest: +SKIP
>>> while (trial := client.ask(trials=60)) is not None:                # doctest: +SKIP
...     client.tell(trial, train(**trial.config))
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .errors import HPOStoreError

log = logging.getLogger("hpostore")


class RequestRefused(HPOStoreError):
    """The study service refused a request (``status``: its HTTP status; nothing was logged)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class LeaseLost(RequestRefused):
    """The trial is no longer held by this client (lease expired, already told, or the server
    restarted): drop it and ask for another."""


class ServiceUnavailable(HPOStoreError):
    """The study service did not answer within the client's ``retry_s``."""


@dataclass(eq=False)
class RemoteTrial:
    """A trial handed out by the service (one attempt of it), held under ``lease_id``."""

    id: int
    config: dict[str, Any]
    attempt: int
    lease_id: str
    lease_s: float
    checkpoint_dir: str | None = None
    _client: StudyClient | None = field(default=None, repr=False)
    #: set by the heartbeat thread when the server refused the lease
    lost: str | None = field(default=None, repr=False)
    #: the scheduler wants the trial stopped (a report answered so; the heartbeat tells too)
    stop: bool = field(default=False, repr=False)

    def report(self, resource: float | None = None, error: float | None = None, **metrics: Any) -> bool:  # fmt: skip
        """Log an intermediate result (extra metrics as keywords, logged too); True when the
        scheduler wants the trial stopped."""
        assert self._client is not None
        return self._client.report(self, resource, error, **metrics)


class StudyClient:
    """ask/tell/report against one study of a running ``hpostore serve --study-service``."""

    def __init__(
        self, url: str, study: str, token: str | None = None, *,
        worker: str | None = None, timeout: float = 30.0, retry_s: float = 300.0,
    ) -> None:  # fmt: skip
        self.url = url.split("?")[0].rstrip("/")
        self.base = self.url + "/api/studies/" + quote(study, safe="")
        self.study, self.timeout, self.retry_s = study, timeout, retry_s
        self.token = token if token is not None else os.environ.get("HPOSTORE_TOKEN")
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        self._held: dict[int, tuple[RemoteTrial, threading.Event]] = {}

    # --- transport ---------------------------------------------------------------------------
    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps({"worker": self.worker, **body}, allow_nan=False).encode()
        headers = {"content-type": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        deadline, delay = time.monotonic() + self.retry_s, 0.05
        while True:
            request = urllib.request.Request(self.base + path, data, headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                    answer: dict[str, Any] = json.loads(reply.read())
                    return answer
            except urllib.error.HTTPError as exc:
                if exc.code != 503:
                    try:
                        message = json.loads(exc.read()).get("error", "")
                    except ValueError:
                        message = exc.reason
                    cls = LeaseLost if exc.code == 409 else RequestRefused
                    raise cls(exc.code, str(message)) from None
                failure: Exception = exc
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
                failure = exc  # the server is down or restarting: try again
            if time.monotonic() + delay > deadline:
                raise ServiceUnavailable(
                    f"the study service at {self.base} did not answer for {self.retry_s:g} s "
                    f"({failure}); is `hpostore serve --study-service` running?"
                )
            log.debug("study service unreachable (%s); retrying in %.2f s", failure, delay)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _trial_path(self, trial: RemoteTrial | int, verb: str) -> str:
        tid = trial.id if isinstance(trial, RemoteTrial) else trial
        return f"/trials/{int(tid)}/{verb}"

    def _lease_of(self, trial: RemoteTrial | int) -> RemoteTrial:
        tid = trial.id if isinstance(trial, RemoteTrial) else trial
        held = self._held.get(tid)
        if held is None:
            raise LeaseLost(409, f"trial {tid} is not held by this client")
        return held[0]

    # --- ask / report / tell ---------------------------------------------------------------
    def ask(self, trials: int | None = None) -> RemoteTrial | None:
        """The next trial (waits while the scheduler has none to give); None when the study has
        ``trials`` trials and all are told."""
        while True:
            body: dict[str, Any] = {"worker": self.worker}
            if trials is not None:
                body["trials"] = trials
            answer = self._post("/ask", body)
            if answer.get("done"):
                return None
            if "wait" in answer:
                time.sleep(float(answer["wait"]))
                continue
            trial = RemoteTrial(answer["trial"], answer["config"], answer["attempt"],
                                answer["lease_id"], float(answer["lease_s"]),
                                answer.get("checkpoint_dir"), self)  # fmt: skip
            stop = threading.Event()
            self._held[trial.id] = (trial, stop)
            threading.Thread(target=self._heartbeat, args=(trial, stop), daemon=True,
                             name=f"hpostore-heartbeat-{trial.id}").start()  # fmt: skip
            return trial

    def _heartbeat(self, trial: RemoteTrial, stop: threading.Event) -> None:
        while not stop.wait(trial.lease_s / 3):
            try:
                answer = self._post(self._trial_path(trial, "heartbeat"),
                                    {"lease_id": trial.lease_id})  # fmt: skip
                trial.stop = trial.stop or bool(answer.get("stop"))
            except LeaseLost as exc:
                trial.lost = str(exc)
                return
            except HPOStoreError as exc:  # unreachable for long: the lease will tell
                log.warning("heartbeat of trial %d failed: %s", trial.id, exc)

    def report(self, trial: RemoteTrial | int, resource: float | None = None,
               error: float | None = None, **metrics: Any) -> bool:  # fmt: skip
        """Log an intermediate result (renews the lease); True: the scheduler wants it stopped.
        Extra metrics as keywords are logged too (or the keyword form ``report(epoch=3,
        validation_error=0.2)``). ``trial``: one this client holds, or any :class:`RemoteTrial`
        (e.g. rebuilt from the environment by :func:`hpostore.worker.report`): the server
        checks its lease."""
        held = trial if isinstance(trial, RemoteTrial) else self._lease_of(trial)
        body = {"lease_id": held.lease_id, "resource": resource, "error": error,
                "metrics": metrics}  # fmt: skip
        stop = bool(self._post(self._trial_path(held, "report"), body)["stop"])
        held.stop = held.stop or stop
        return stop

    def tell(self, trial: RemoteTrial | int, value: Any = None, *, failed: str | None = None,
             last_report: bool = False) -> None:  # fmt: skip
        """Log the trial's result: ``value`` (a number or a dict of metrics) or ``failed``, or
        with ``last_report=True`` the value of its last report (a trial stopped by the
        scheduler that ended without one). Raises :class:`LeaseLost` when the trial is no
        longer this client's to tell."""
        held = self._lease_of(trial)
        body: dict[str, Any] = {"lease_id": held.lease_id}
        if last_report:
            body["last_report"] = True
        if failed is not None:
            body["failed"] = str(failed)
        elif isinstance(value, float) and not math.isfinite(value):  # JSON has no NaN
            body["failed"] = f"the objective returned {value}"
        elif isinstance(value, dict):
            body["metrics"] = value
        else:
            body["value"] = value
        try:
            self._post(self._trial_path(held, "tell"), body)
        finally:
            self.release(held)

    def release(self, trial: RemoteTrial | int) -> None:
        """Stop renewing a trial's lease (it is handed out again once the lease runs out)."""
        tid = trial.id if isinstance(trial, RemoteTrial) else trial
        held = self._held.pop(tid, None)
        if held is not None:
            held[1].set()

    def close(self) -> None:
        for tid in list(self._held):
            self.release(tid)


def connect(url: str, study: str, token: str | None = None, **kwargs: Any) -> StudyClient:
    """A client of study ``study`` served at ``url`` (``hpostore serve PATH --study-service``);
    ``token``: the server's, else ``$HPOSTORE_TOKEN``. See :class:`StudyClient`."""
    return StudyClient(url, study, token, **kwargs)
