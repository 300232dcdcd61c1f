"""A result is durable before the tuner acts on it (sequential and parallel, real SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hpostore import open_store

CHILD = os.path.join(os.path.dirname(__file__), "tuner_kill_child.py")


def _run(path: str, workers: int, *, kill: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_KILL": "0" if kill else "1"}
    return subprocess.run(
        [sys.executable, CHILD, path, "s", "3", str(workers)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("backend", ["duckdb", "parquet"])
@pytest.mark.parametrize("workers", [1, 2])
def test_a_result_is_on_disk_before_the_scheduler_hears_of_it(
    tmp_path: Path, workers: int, backend: str
) -> None:
    path = os.fspath(tmp_path / "runs.duckdb") if backend == "duckdb" else f"{tmp_path}/runs/"
    killed = _run(path, workers, kill=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with open_store(path) as store:
        kinds = [(e["kind"], e["trial"]) for e in store.events("s").to_pylist()]
    evaluated = [trial for kind, trial in kinds if kind == "evaluate"]
    # the searcher's update (the tuner's first act on a result) killed the process: the result
    # that triggered it had been committed, with no update after it
    assert len(evaluated) == 1, kinds
    assert ("update", evaluated[0]) not in kinds

    resumed = _run(path, workers, kill=False)
    assert resumed.returncode == 0, resumed.stderr
    with open_store(path) as store:
        events = store.events("s").to_pylist()
    starts = [e["trial"] for e in events if e["kind"] == "start"]
    assert starts.count(evaluated[0]) == 1  # the finished trial was not run again
    assert sum(e["kind"] == "evaluate" for e in events) == 3
    assert [e["trial"] for e in events if e["kind"] == "update"][0] == evaluated[0]
