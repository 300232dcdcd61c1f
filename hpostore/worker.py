"""`hpostore worker URL STUDY -- CMD...`: run a command once per trial asked from the service.

Each trial runs ``CMD`` with the environment of the worker plus:

- ``HPOSTORE_CONFIG``: the trial's config as a JSON object;
- ``HPOSTORE_TRIAL``, ``HPOSTORE_ATTEMPT``, ``HPOSTORE_STUDY``, ``HPOSTORE_URL``;
- ``HPOSTORE_CHECKPOINT_DIR`` when the study gives trials a checkpoint directory.

The result is the command's last non-empty stdout line: a number (the objective) or a JSON
object (its metrics). A non-zero exit or an unreadable last line tells the trial failed, with
the reason. The worker loops until the study has ``--trials`` trials all told (or, without
``--trials``, until the command is interrupted). Standard library only (with
:mod:`hpostore.client`): a compute node needs no web stack to run workers.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from typing import Any

from .client import LeaseLost, RemoteTrial, StudyClient
from .errors import HPOStoreError

log = logging.getLogger("hpostore")


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


def run_trial(command: list[str], trial: RemoteTrial, url: str, study: str) -> tuple[Any, str | None]:  # fmt: skip
    """Run ``command`` for ``trial``; (value, None) or (None, why it failed)."""
    env = {**os.environ, "HPOSTORE_CONFIG": json.dumps(trial.config),
           "HPOSTORE_TRIAL": str(trial.id), "HPOSTORE_ATTEMPT": str(trial.attempt),
           "HPOSTORE_STUDY": study, "HPOSTORE_URL": url}  # fmt: skip
    if trial.checkpoint_dir:
        env["HPOSTORE_CHECKPOINT_DIR"] = trial.checkpoint_dir
    try:
        done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, check=False)
    except OSError as exc:
        return None, f"cannot run {command[0]!r}: {exc}"
    if done.returncode != 0:
        return None, f"the command exited with status {done.returncode}"
    return parse_result(done.stdout)


def run_worker(url: str, study: str, command: list[str], *, trials: int | None = None,
               token: str | None = None, max_failures: int = 5) -> str:  # fmt: skip
    """Ask, run, tell until the study is done; what to print at the end."""
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        return "hpostore worker: give the command to run after --, e.g. -- python train.py"
    client = StudyClient(url, study, token)
    ran = lost = in_a_row = 0
    try:
        while (trial := client.ask(trials)) is not None:
            value, why = run_trial(command, trial, url, study)
            in_a_row = 0 if why is None else in_a_row + 1
            try:
                if trial.lost is not None:  # the heartbeat was refused: not ours to tell
                    raise LeaseLost(409, trial.lost)
                if why is None:
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
