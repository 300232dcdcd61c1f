"""`hpostore worker URL STUDY -- CMD...`: run a command once per trial asked from the service.

Each trial runs ``CMD`` with the environment of the worker plus:

- ``HPOSTORE_CONFIG``: the trial's config as a JSON object;
- ``HPOSTORE_TRIAL``, ``HPOSTORE_ATTEMPT``, ``HPOSTORE_STUDY``, ``HPOSTORE_URL``,
  ``HPOSTORE_LEASE`` (the lease id), ``HPOSTORE_LEASE_S``, ``HPOSTORE_WORKER``, and
  ``HPOSTORE_TOKEN`` when the worker has one: what :func:`report` needs;
- ``HPOSTORE_CHECKPOINT_DIR`` when the study gives trials a checkpoint directory.

The result is the command's last non-empty stdout line: a number (the objective) or a JSON
object (its metrics). A non-zero exit or an unreadable last line tells the trial failed, with
the reason.

**Intermediate results.** The command calls ``hpostore.worker.report(epoch, error,
**metrics)`` (or the keyword form ``report(epoch=3, validation_error=0.2)``) after each
epoch: the report goes to the server (the client's ``report``), which logs it and asks the
study's scheduler (ASHA, median stopping, ...); it returns True when the trial should stop —
then the command should print its last value and exit. A command still running once the
worker hears of the stop (the heartbeat answers it) gets ``grace_s`` seconds, then SIGTERM,
then after ``grace_s`` more SIGKILL; a stopped trial that ends without a readable result is
told the value of its last report (what the scheduler decided on). A command whose lease is
lost is ended the same way (its trial runs elsewhere).

The worker loops until the study has ``--trials`` trials all told (or, without ``--trials``,
until it is interrupted). Standard library only (with :mod:`hpostore.client`): a compute node
needs no web stack to run workers.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from typing import Any

from .client import LeaseLost, RemoteTrial, StudyClient
from .errors import HPOStoreError, InvalidArgument

log = logging.getLogger("hpostore")

#: seconds a command told to stop has to end by itself before SIGTERM, then before SIGKILL
GRACE_S = 10.0
#: how often the worker looks at its command and at the trial's stop flag
_POLL_S = 0.1
_NEEDED = ("HPOSTORE_URL", "HPOSTORE_STUDY", "HPOSTORE_TRIAL", "HPOSTORE_ATTEMPT",
           "HPOSTORE_LEASE")  # fmt: skip
#: the trial this process reports for (built once from the environment)
_FROM_ENV: RemoteTrial | None = None


def report(resource: float | None = None, error: float | None = None, **metrics: Any) -> bool:
    """From a command run by ``hpostore worker``: log an intermediate result of its trial
    (extra metrics as keywords are logged too) and return True when the scheduler wants the
    trial stopped — then print the last value and exit. Also True when the trial is no longer
    this worker's (its lease was lost: it runs elsewhere). Standard library only."""
    global _FROM_ENV
    env = os.environ
    missing = [name for name in _NEEDED if not env.get(name)]
    if missing:
        raise InvalidArgument(
            "hpostore.worker.report() reports for a command run by `hpostore worker URL STUDY "
            f"-- CMD`; ${', $'.join(missing)} not set (use a tuner's trial.report, or "
            "hpostore.connect(...).report, elsewhere)"
        )
    trial = _FROM_ENV
    if trial is None or trial.lease_id != env["HPOSTORE_LEASE"]:
        client = StudyClient(env["HPOSTORE_URL"], env["HPOSTORE_STUDY"], env.get("HPOSTORE_TOKEN"),
                             worker=env.get("HPOSTORE_WORKER"))  # fmt: skip
        trial = _FROM_ENV = RemoteTrial(
            int(env["HPOSTORE_TRIAL"]), json.loads(env.get("HPOSTORE_CONFIG") or "{}"),
            int(env["HPOSTORE_ATTEMPT"]), env["HPOSTORE_LEASE"],
            float(env.get("HPOSTORE_LEASE_S") or 30), env.get("HPOSTORE_CHECKPOINT_DIR"), client,
        )  # fmt: skip
    try:
        return trial.report(resource, error, **metrics)
    except LeaseLost as exc:
        log.warning("trial %d is no longer this worker's (%s): stop", trial.id, exc)
        return True


def parse_result(stdout: str) -> tuple[Any, str | None]:
    """(value, None) from a command's output, or (None, why it could not be read)."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if not lines:
        return None, "the command printed nothing: print the result as its last stdout line"
    last = lines[-1]
    try:
        value = json.loads(last)
    except ValueError:
        return None, f"the last stdout line {last[:80]!r} is neither a number nor a JSON object"
    if isinstance(value, bool) or not isinstance(value, (int, float, dict)):
        return None, f"the last stdout line {last[:80]!r} is neither a number nor a JSON object"
    return value, None


def _environment(trial: RemoteTrial, client: StudyClient) -> dict[str, str]:
    env = {**os.environ, "HPOSTORE_CONFIG": json.dumps(trial.config),
           "HPOSTORE_TRIAL": str(trial.id), "HPOSTORE_ATTEMPT": str(trial.attempt),
           "HPOSTORE_STUDY": client.study, "HPOSTORE_URL": client.url,
           "HPOSTORE_LEASE": trial.lease_id, "HPOSTORE_LEASE_S": repr(trial.lease_s),
           "HPOSTORE_WORKER": client.worker}  # fmt: skip
    if client.token:
        env["HPOSTORE_TOKEN"] = client.token
    if trial.checkpoint_dir:
        env["HPOSTORE_CHECKPOINT_DIR"] = trial.checkpoint_dir
    return env


def run_trial(command: list[str], trial: RemoteTrial, client: StudyClient, *,
              grace_s: float = GRACE_S) -> tuple[Any, str | None]:  # fmt: skip
    """Run ``command`` for ``trial``; (value, None) or (None, why it failed). Ends the command
    (after ``grace_s``: SIGTERM, then SIGKILL) once the trial is to stop or its lease is lost."""
    try:
        proc = subprocess.Popen(command, env=_environment(trial, client),
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
    except OSError as exc:
        return None, f"cannot run {command[0]!r}: {exc}"
    told_at: float | None = None
    sent = 0  # signals sent: 1 SIGTERM, 2 SIGKILL
    try:
        while True:
            try:
                stdout, _ = proc.communicate(timeout=_POLL_S)  # keeps what it read so far
                break
            except subprocess.TimeoutExpired:
                pass
            if told_at is None and (trial.stop or trial.lost is not None):
                told_at = time.monotonic()
            if told_at is not None and time.monotonic() - told_at >= grace_s * (sent + 1):
                why = "stopped by the scheduler" if trial.stop else f"lease lost: {trial.lost}"
                log.info("trial %d (%s) still running after %g s: %s", trial.id, why,
                         grace_s * (sent + 1), "SIGKILL" if sent else "SIGTERM")  # fmt: skip
                if sent:
                    proc.kill()
                else:
                    proc.terminate()
                sent += 1
    finally:
        if proc.poll() is None:  # the worker itself is interrupted: the command goes too
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        return None, f"the command exited with status {proc.returncode}"
    return parse_result(stdout)


def run_worker(url: str, study: str, command: list[str], *, trials: int | None = None,
               token: str | None = None, max_failures: int = 5,
               grace_s: float = GRACE_S) -> str:  # fmt: skip
    """Ask, run, tell until the study is done; what to print at the end."""
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        return "hpostore worker: give the command to run after --, e.g. -- python train.py"
    if not grace_s >= 0:
        raise InvalidArgument(f"the grace period must be >= 0 seconds, got {grace_s!r}")
    client = StudyClient(url, study, token)
    ran = lost = in_a_row = 0
    try:
        while (trial := client.ask(trials)) is not None:
            value, why = run_trial(command, trial, client, grace_s=grace_s)
            stopped = why is not None and trial.stop  # ended without its value: the last report
            in_a_row = 0 if why is None or stopped else in_a_row + 1
            try:
                if trial.lost is not None:  # the heartbeat was refused: not ours to tell
                    raise LeaseLost(409, trial.lost)
                if stopped:
                    log.info("trial %d was stopped (%s): told its last report", trial.id, why)
                    client.tell(trial, last_report=True)
                elif why is None:
                    client.tell(trial, value)
                else:
                    client.tell(trial, failed=why)
                ran += 1
                if in_a_row >= max_failures:
                    raise HPOStoreError(
                        f"{in_a_row} trials in a row failed, the last one: {why}; this worker "
                        "stops (fix the command and start it again)"
                    )
            except LeaseLost as exc:  # handed out again (or told): the log has it once
                lost += 1
                print(f"hpostore worker: trial {trial.id} dropped: {exc}", file=sys.stderr,
                      flush=True)  # fmt: skip
    finally:
        client.close()
    return f"hpostore worker: {ran} trials told, {lost} dropped; study {study!r} is done"
