"""The study service with real processes: `hpostore serve --study-service` and three `hpostore
worker` processes finish a 60-trial study while one worker and then the server are SIGKILLed
(the server restarted on the same store): 60 results, none lost or told twice, seq gapless."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from scipy import stats  # noqa: E402

from hpostore import BasicScheduler, HPOTuner, RandomSearcher, TrialStatus, open_store  # noqa: E402

TRIALS = 60
TRAIN = """\
import json, os, sys, time
config = json.loads(os.environ["HPOSTORE_CONFIG"])
time.sleep(0.05)
with open(sys.argv[1], "a") as f:
    f.write(os.environ["HPOSTORE_TRIAL"] + "\\n")
print("training done")
print(config["x"] ** 2)
"""
CLI = [sys.executable, "-c", "import sys; from hpostore.cli import main; sys.exit(main())"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: object, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def logged_kinds(url: str) -> set[str]:
    """The kinds of the study's newest 500 events, read from the live dashboard."""
    with urllib.request.urlopen(f"{url}/api/studies/shared/events?after=0&limit=500") as r:
        return {e["kind"] for e in json.load(r)["events"]}


def runs(path: Path) -> int:
    return len(path.read_text().split()) if path.exists() else 0


def start_server(store: str, port: int, log: Path, lease: str = "2") -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 (the child keeps it)
    server = subprocess.Popen([*CLI, "serve", store, "--study-service", "--port", str(port),
                               "--lease", lease], stdout=out, stderr=out)  # fmt: skip
    deadline = time.monotonic() + 60
    while True:  # ready once it accepts connections
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the server did not start: {log.read_text()}") from None
            time.sleep(0.05)


def test_server_and_three_workers_survive_sigkill(tmp_path: Path) -> None:
    store = str(tmp_path / "runs.duckdb")
    tuner = HPOTuner(BasicScheduler(RandomSearcher({"x": stats.uniform(-1, 2)}, seed=7)),
                     lambda x: x * x, store=store, study="shared", verbose=False)  # fmt: skip
    tuner.set_study_attr("workers", 3)
    tuner.close()
    train, done = tmp_path / "train.py", tmp_path / "runs.txt"
    train.write_text(TRAIN)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    server = start_server(store, port, log)
    workers = [
        subprocess.Popen(
            [
                *CLI,
                "worker",
                url,
                "shared",
                "--trials",
                str(TRIALS),
                "--",
                sys.executable,
                str(train),
                str(done),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for _ in range(3)
    ]
    try:
        wait_for(lambda: runs(done) >= 12, "12 trials run")
        workers[0].send_signal(signal.SIGKILL)  # its trial's lease runs out: re-run elsewhere
        workers[0].wait()
        # the dead worker's lease runs out (2 s): seen live through the server's dashboard API
        wait_for(lambda: "interrupt" in logged_kinds(url), "the dead worker's lease to expire")
        wait_for(lambda: runs(done) >= 30, "30 trials run")
        server.send_signal(signal.SIGKILL)
        server.wait()
        time.sleep(0.5)  # the workers find no server for a while: they retry with backoff
        server = start_server(store, port, log)
        for w in workers[1:]:
            out, err = w.communicate(timeout=300)
            assert w.returncode == 0, err.decode()
            assert b"is done" in out
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
    finally:
        for p in [server, *workers]:
            if p.poll() is None:
                p.kill()
                p.wait()
    log_text = log.read_text()
    with open_store(store) as s:
        events = s.events("shared", columns=["seq", "kind", "trial", "payload"]).to_pylist()
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1)), "seq has gaps"
    results = [e["trial"] for e in events if e["kind"] in ("evaluate", "fail")]
    assert sorted(results) == list(range(TRIALS)), log_text  # 60 results, none twice
    assert not [e for e in events if e["kind"] == "fail"]
    sessions = [json.loads(e["payload"])["reason"] for e in events if e["kind"] == "session"]
    assert sessions[-1] == "resume" and len(sessions) >= 3  # created, served, restarted
    # the killed worker's trial was taken back when its lease ran out, and re-run
    expired = [e for e in events if e["kind"] == "interrupt"
               and json.loads(e["payload"] or "{}").get("reason") == "lease expired"]  # fmt: skip
    assert expired, "the killed worker's lease never expired"
    with open_store(store) as s:
        reopened = HPOTuner(BasicScheduler(RandomSearcher({"x": stats.uniform(-1, 2)}, seed=7)),
                            lambda x: x * x, store=s, study="shared", verbose=False)  # fmt: skip
        trials = reopened.state.trials
        assert len(trials) == TRIALS
        assert all(t.status is TrialStatus.FINISHED for t in trials.values())
        assert all(abs(t.error - t.config["x"] ** 2) < 1e-12 for t in trials.values())
        reopened.close()
    assert os.path.getsize(store) > 0
