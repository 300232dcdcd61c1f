"""`hpostore worker` commands that report each epoch (``hpostore.worker.report``) to a served
median-stopping study, with real processes: a command that honours the stop prints its value
and exits; one that ignores it gets SIGTERM, then SIGKILL, and is told its last report. The log
has every report (with its extra metric), the stop decision and each trial's end."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from scipy import stats  # noqa: E402

from hpostore import (  # noqa: E402
    HPOTuner,
    InvalidArgument,
    MedianStoppingScheduler,
    RandomSearcher,
    open_store,
)
from hpostore.worker import report  # noqa: E402
from tests.test_service_processes import CLI, free_port, start_server  # noqa: E402

# x = 0.1 runs its 5 epochs; x = 0.9 (stubborn: ignores the stop and SIGTERM) and x = 0.8
# (honours the stop) are worse than the median of the others at epoch 1: stopped there.
TRAIN = """\
import json, os, signal, sys, time
from hpostore.worker import report
config = json.loads(os.environ["HPOSTORE_CONFIG"])
x, marks = config["x"], sys.argv[1]
stubborn = x > 0.85
def note(text):
    with open(marks, "a") as f:
        f.write(f"{os.environ['HPOSTORE_TRIAL']} {text}\\n")
if stubborn:
    signal.signal(signal.SIGTERM, lambda *_: note("SIGTERM"))
for epoch in range(1, config["epochs"] + 1):
    stop = report(epoch, x, train_loss=x / 2)
    note(f"epoch {epoch} stop={stop}")
    if stop and not stubborn:
        break
if stubborn:
    note("sleeping")
    while True:
        time.sleep(0.05)
print(x)
"""


def test_worker_command_reports_and_is_stopped(tmp_path: Path) -> None:
    store = str(tmp_path / "runs.duckdb")
    scheduler = MedianStoppingScheduler(RandomSearcher({"x": stats.uniform(0, 1)}, seed=1),
                                        min_trials=1, resource_attr="epochs", r_max=5)  # fmt: skip
    tuner = HPOTuner(scheduler, store=store, study="ms", verbose=False)
    for x in (0.1, 0.9, 0.8):
        tuner.enqueue({"x": x, "epochs": 5})
    tuner.close()
    train, marks = tmp_path / "train.py", tmp_path / "marks.txt"
    train.write_text(TRAIN)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    server = start_server(store, port, log, lease="1.5")
    try:
        worker = subprocess.run([*CLI, "worker", url, "ms", "--trials", "3", "--grace", "0.3",
                                 "--", sys.executable, str(train), str(marks)],
                                capture_output=True, timeout=240)  # fmt: skip
        assert worker.returncode == 0, worker.stderr.decode()
        assert b"3 trials told, 0 dropped" in worker.stdout
    finally:
        server.send_signal(signal.SIGINT)  # a clean stop: the session's end is logged
        server.wait(timeout=60)
    notes = marks.read_text().splitlines()
    assert [n for n in notes if n.startswith("0 ")] == [
        f"0 epoch {e} stop=False" for e in range(1, 6)
    ]
    # the stubborn command went on reporting (each answered stop), then was signalled
    assert [n for n in notes if n.startswith("1 ")][:6] == [
        *(f"1 epoch {e} stop=True" for e in range(1, 6)),
        "1 sleeping",
    ]
    assert "1 SIGTERM" in notes  # then SIGKILL ended it (it ignored SIGTERM)
    assert [n for n in notes if n.startswith("2 ")] == ["2 epoch 1 stop=True"]
    with open_store(store, read_only=True) as s:
        events = s.events("ms", columns=["kind", "trial", "resource", "error", "payload"])
    by_trial: dict[int, list[dict[str, object]]] = {}
    for e in events.to_pylist():
        if e["trial"] is not None:
            by_trial.setdefault(e["trial"], []).append(e)

    def kinds(trial: int) -> list[str]:
        return [str(e["kind"]) for e in by_trial[trial] if e["kind"] != "enqueue"]

    assert kinds(0) == ["suggest", "start", *["report"] * 5, "evaluate", "update"]
    assert kinds(1) == ["suggest", "start", "report", "stop", *["report"] * 4, "evaluate",
                        "update"]  # fmt: skip
    assert kinds(2) == ["suggest", "start", "report", "stop", "evaluate", "update"]
    reports = [e for e in by_trial[1] if e["kind"] == "report"]
    assert [e["resource"] for e in reports] == [1, 2, 3, 4, 5]
    assert json.loads(str(reports[0]["payload"])) == {"metrics": {"error": 0.9,
                                                                  "train_loss": 0.45}}  # fmt: skip
    # the killed trial is told its last report (error and resource); the other its value
    ends = {t: [e for e in by_trial[t] if e["kind"] == "evaluate"][0] for t in (0, 1, 2)}
    assert [(ends[t]["error"], ends[t]["resource"]) for t in (0, 1, 2)] == [
        (0.1, 5),
        (0.9, 5),
        (0.8, 1),
    ]


def test_report_outside_a_worker_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HPOSTORE_LEASE", raising=False)
    with pytest.raises(InvalidArgument, match=r"hpostore worker URL STUDY.*HPOSTORE_LEASE"):
        report(1, 0.5)
