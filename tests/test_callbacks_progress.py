"""Callbacks, the per-trial lines, the progress bar and Ctrl-C (real child processes, a real pty)."""

from __future__ import annotations

import fcntl
import logging
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest
from scipy import stats

import hpostore
from hpostore import (
    ASHAScheduler,
    BasicScheduler,
    HPOTuner,
    InvalidArgument,
    RandomSearcher,
    StudyInterrupted,
    open_store,
)

SPACE = {"x": stats.uniform(-1, 2)}
HERE = Path(__file__).parent


def curve(x: float, max_epochs: int, report: Any) -> float:
    for epoch in range(1, max_epochs + 1):
        if report(epoch, x * x + 1 / epoch):
            break
    return x * x + 1 / epoch


class Tracker(hpostore.Callback):
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def on_trial_start(self, tuner: Any, trial: Any) -> None:
        assert tuner.state.trials[trial.id].status.value == "running"  # logged before the hook
        self.calls.append(("start", trial.id, trial.attempt))

    def on_report(self, tuner: Any, trial: int, resource: float, error: float) -> None:
        self.calls.append(("report", trial, resource))

    def on_result(self, tuner: Any, trial: Any) -> None:
        assert trial.status.value in ("finished", "failed", "stopped", "paused")
        self.calls.append(("result", trial.trial, trial.status.value))

    def on_decision(self, tuner: Any, trial: int, kind: str, reason: str | None) -> None:
        self.calls.append(("decision", trial, kind))

    def on_study_end(self, tuner: Any, reason: str) -> None:
        self.calls.append(("end", reason))


def test_callbacks_hear_every_logged_start_report_result_decision_and_end(
    store_path: str,
) -> None:
    tracker = Tracker()
    scheduler = ASHAScheduler(RandomSearcher(SPACE, seed=3), eta=3, r_max=9, type="stopping")
    with HPOTuner(scheduler, curve, store=store_path, study="s", verbose=False,
                  callbacks=[tracker]) as tuner:  # fmt: skip
        tuner.run(8)
    with open_store(store_path, read_only=True) as store:
        logged = store.events("s", columns=["kind"]).column("kind").to_pylist()
    seen = [c[0] for c in tracker.calls]
    assert seen.count("start") == logged.count("start")
    assert seen.count("report") == logged.count("report") > 0
    assert seen.count("result") == logged.count("evaluate") + logged.count("fail") == 8
    assert seen.count("decision") == sum(logged.count(k) for k in ("stop", "pause", "promote")) > 0
    assert tracker.calls[-1] == ("end", "completed")


def test_callbacks_hear_ask_and_tell_and_a_hookless_object_is_refused(store_path: str) -> None:
    tracker = Tracker()
    with HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=0)), lambda x: x, store=store_path,
                  study="s", verbose=False, callbacks=[tracker]) as tuner:  # fmt: skip
        trial = tuner.ask()
        tuner.tell(trial, 0.5)
    assert tracker.calls == [("start", 0, 1), ("result", 0, "finished"), ("end", "completed")]
    with pytest.raises(InvalidArgument, match="none of the hooks"):
        HPOTuner(BasicScheduler(RandomSearcher(SPACE)), lambda x: x, callbacks=[object()])


def test_the_per_trial_lines_are_rounded_with_best_so_far_and_no_bar_off_a_tty(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=0)), lambda x: x * x / 3) as tuner:
        tuner.run(3)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Trial 0: config = {'x': 0.5198}"
    assert re.fullmatch(r"    error = 0\.09008, runtime = \S+s, best so far = 0\.09008", out[1])
    assert out[5].endswith(f"best so far = {float(f'{tuner.incumbent_error:.4g}')}")
    assert len(out) == 6  # stdout is not a terminal here: no progress bar
    quiet = HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=0)), lambda x: x, verbose=False)
    with caplog.at_level(logging.DEBUG, logger="hpostore"), quiet:
        quiet.run(2)
    assert capsys.readouterr().out == ""
    assert "Trial 1: config" in caplog.text  # the messages go through logging("hpostore")


def _in_a_pty(code: str, *args: str) -> str:
    """Run ``python -c code`` with a pseudo-terminal as stdout; everything it wrote."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # 120 columns
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=follower,
                            stderr=subprocess.STDOUT, close_fds=True)  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_a_terminal_gets_a_progress_bar_with_done_target_best_and_time_left() -> None:
    code = (
        "from scipy import stats\n"
        "from hpostore import BasicScheduler, HPOTuner, RandomSearcher\n"
        "t = HPOTuner(BasicScheduler(RandomSearcher({'x': stats.uniform(-1, 2)}, seed=0)),"
        " lambda x: x * x)\n"
        "t.run(4, time_budget_s=3600)\n"
    )
    out = _in_a_pty(code)
    assert "4/4" in out, out
    assert "best=" in out and "running=" in out and "left=" in out, out
    assert "Trial 3: config" in out


SLOW_STUDY = """
import pathlib, sys, time
from scipy import stats
from hpostore import BasicScheduler, HPOTuner, RandomSearcher

def slow(x):
    pathlib.Path(sys.argv[2] + str(x)).touch()  # running: the parent may press Ctrl-C
    time.sleep(60)
    return x

t = HPOTuner(BasicScheduler(RandomSearcher({"x": stats.uniform(-1, 2)}, seed=0)), slow,
             store=sys.argv[1], study="s", n_workers=int(sys.argv[3]))
t.run(3)
"""


@pytest.mark.parametrize("n_workers", [1, 2])
def test_ctrl_c_ends_run_with_one_line_and_no_traceback(tmp_path: Path, n_workers: int) -> None:
    store, marker = tmp_path / "runs.duckdb", tmp_path / "started"
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_STUDY, str(store), str(marker), str(n_workers)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while (
        len(list(tmp_path.glob("started*"))) < n_workers  # every worker runs a trial
        and proc.poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    assert len(list(tmp_path.glob("started*"))) == n_workers, proc.communicate()
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
    out, err = proc.communicate(timeout=120)
    assert "Traceback" not in out + err, err
    assert "run the same command again to resume" in err
    assert re.search(r"interrupted [12] running trials? of study 's'", err), err
    assert proc.returncode == 1
    with open_store(str(store), read_only=True) as s:
        kinds = s.events("s", columns=["kind"]).column("kind").to_pylist()
    assert "interrupt" in kinds and kinds[-1] == "end"


def test_study_interrupted_is_a_keyboard_interrupt_the_caller_can_catch() -> None:
    assert issubclass(StudyInterrupted, KeyboardInterrupt)
    assert not issubclass(StudyInterrupted, Exception)  # `except Exception` does not swallow it
