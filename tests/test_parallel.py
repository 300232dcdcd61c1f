"""The asynchronous tuner: worker processes, reports and stop decisions, SIGKILL and resume, Ray.

Real processes throughout (a spawned process pool, a manager process, a child tuner that is
SIGKILLed); the objectives live in tests/parallel_child.py so that workers can import them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import parallel_child as pc
import pytest

from hpostore import (
    ASHAScheduler,
    BasicScheduler,
    HPOTuner,
    InvalidArgument,
    MedianStoppingScheduler,
    RandomSearcher,
    SuccessiveHalvingScheduler,
    open_store,
)

ROOT = Path(__file__).resolve().parents[1]
CHILD = Path(__file__).with_name("parallel_child.py")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL: POSIX only")


def _starts_before_first_result(store, study: str) -> int:  # type: ignore[no-untyped-def]
    kinds = store.events(study, columns=["kind"]).column("kind").to_pylist()
    return kinds[: kinds.index("evaluate")].count("start")


def test_worker_processes_run_trials_concurrently_and_only_the_tuner_writes(
    tmp_path: Path,
) -> None:
    path = os.fspath(tmp_path / "runs.duckdb")
    with HPOTuner(
        BasicScheduler(RandomSearcher(pc.SPACE, seed=2)),
        pc.sleepy,
        store=path,
        study="async",
        verbose=False,
        n_workers=2,
    ) as tuner:
        tuner.run(6)
        state = tuner.state
        assert state.n_finished == 6 and sorted(state.trials) == list(range(6))
        events = tuner.store.events("async").to_pylist()
    workers = {e["worker"] for e in events if e["kind"] == "evaluate"}
    assert len(workers) == 2 and f"{os.uname().nodename}:{os.getpid()}" not in workers
    with open_store(path) as store:  # two trials were in flight before the first result
        assert _starts_before_first_result(store, "async") == 2
    elapsed = [e["elapsed"] for e in events]
    assert elapsed == sorted(elapsed)
    searcher = RandomSearcher(pc.SPACE, seed=2)  # trial k ran sample k, whatever the timing
    assert [state.trials[k].config for k in range(6)] == [
        searcher.sample_configuration() for _ in range(6)
    ]


def test_stop_decisions_reach_running_trials_through_the_manager() -> None:
    scheduler = MedianStoppingScheduler(
        RandomSearcher(pc.SPACE, seed=4),
        grace_resource=2,
        min_trials=1,
        resource_attr="max_epochs",
        r_max=12,
    )
    with ThreadPoolExecutor(3) as pool:
        tuner = HPOTuner(scheduler, pc.reporting, verbose=False, executor=pool, n_workers=3)
        tuner.run(8)
    trials = tuner.state.trials.values()
    stopped = [t for t in trials if t.stopped]
    assert stopped, "no trial was stopped"
    events = tuner.store.events(tuner.study, columns=["kind", "trial", "resource"]).to_pylist()
    stopped_at = {e["trial"]: e["resource"] for e in events if e["kind"] == "stop"}
    for t in stopped:  # the trial saw the decision and ended, cleanly, with a result
        assert t.status.value in ("finished", "stopped") and t.error == t.curve[-1][1]
        # a worker's report waits for the tuner's decision: it ends at the report it was
        # stopped after, not one epoch later
        assert t.curve[-1][0] == stopped_at[t.trial]
    assert any(t.curve[-1][0] < 12 for t in stopped)  # stopping saved epochs
    assert any(not t.stopped and t.curve[-1][0] == 12 for t in trials)


def test_synchronous_successive_halving_waits_for_its_rungs_in_parallel() -> None:
    sh = SuccessiveHalvingScheduler(RandomSearcher(pc.SPACE, seed=1), eta=2, r_min=1, r_max=4)
    with ThreadPoolExecutor(3) as pool:
        tuner = HPOTuner(sh, pc.reporting, verbose=False, executor=pool, n_workers=3)
        tuner.run(7)  # one round: 4 at rung 1, 2 at rung 2, 1 at rung 4
    rungs = Counter(t.config["max_epochs"] for t in tuner.state.trials.values())
    assert rungs == {1: 4, 2: 2, 4: 1}
    kinds = tuner.store.events("default", columns=["kind"]).column("kind").to_pylist()
    assert kinds.count("promote") == 3 and kinds.count("pause") == 6


def test_a_trial_that_kills_its_worker_fails_alone_and_the_study_goes_on() -> None:
    with open_store(":memory:") as store:
        tuner = HPOTuner(
            BasicScheduler(RandomSearcher(pc.SPACE, seed=1)),
            pc.dies,
            store=store,
            verbose=False,
            n_workers=2,
            max_failures=None,
        )
        tuner.run(6)
        state = tuner.state
        killers = {t.trial for t in state.trials.values() if t.config["x"] > 0.5}
        assert killers and state.n_finished == 6 and not state.unfinished()
        for t in state.trials.values():  # the killers failed, each found by running it alone
            if t.trial in killers:
                assert t.status.value == "failed" and "died while running this trial alone" in (
                    t.message or ""
                )
            else:
                assert t.status.value == "finished"  # innocent bystanders were re-run, not failed
        events = store.events("default").to_pylist()
        interrupted = {e["trial"] for e in events if e["kind"] == "interrupt"}
        assert interrupted <= set(state.trials)
        running: set[int] = set()
        for e in events:  # a suspect re-runs with nothing else in flight
            if e["kind"] == "start":
                reruns = any(x["kind"] == "interrupt" and x["trial"] == e["trial"]
                             for x in events if x["seq"] < e["seq"])  # fmt: skip
                assert not (reruns and running), (e, running)
                running.add(e["trial"])
            elif e["kind"] in ("evaluate", "fail", "interrupt"):
                running.discard(e["trial"])


def test_an_unpicklable_objective_is_refused_before_anything_runs() -> None:
    lock = threading.Lock()  # a lambda travels by value (cloudpickle); a lock cannot travel

    def holds_a_lock(x: float) -> float:
        with lock:
            return x

    tuner = HPOTuner(
        BasicScheduler(RandomSearcher(pc.SPACE, seed=1)),
        holds_a_lock,
        verbose=False,
        n_workers=2,
    )
    with pytest.raises(InvalidArgument, match="must be picklable"):
        tuner.run(2)
    assert tuner.state.n_finished == 0


def _group_gone_within(pgid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def _end_group(pgid: int) -> None:
    """SIGKILL what is left of the child's session (its workers) and wait until it is gone."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def _marker_count(markers: Path) -> int:
    return len(list(markers.glob("started-*")))


def test_sigkill_with_two_workers_running_then_resume_accounts_for_every_trial(
    tmp_path: Path,
) -> None:
    path, markers, n = tmp_path / "runs.duckdb", tmp_path / "markers", 8
    markers.mkdir()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    args = [sys.executable, str(CHILD), str(path), "crash", str(n), str(markers)]
    child = subprocess.Popen(args, env=env, cwd=tmp_path, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while _marker_count(markers) < 4 and time.monotonic() < deadline:
            assert child.poll() is None, "the tuner ended before it could be killed"
            time.sleep(0.05)
        assert _marker_count(markers) >= 4, "no trials started in 90 s"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
        orphans_left = not _group_gone_within(child.pid, 10)
    finally:
        _end_group(child.pid)
    assert not orphans_left, "workers or the manager outlived the SIGKILLed tuner by 10 s"
    with open_store(os.fspath(path)) as store:
        crashed = store.events("crash").to_pylist()
    in_flight = {e["trial"] for e in crashed if e["kind"] == "start"} - {
        e["trial"] for e in crashed if e["kind"] in ("evaluate", "fail")
    }
    assert len(in_flight) == 2, f"expected 2 trials in flight at the kill, got {in_flight}"
    done = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    with open_store(os.fspath(path)) as store:
        events = store.events("crash").to_pylist()
    suggested = [e["trial"] for e in events if e["kind"] == "suggest"]
    results = [e["trial"] for e in events if e["kind"] in ("evaluate", "fail")]
    assert suggested == list(range(len(suggested)))  # no id reused, none skipped
    assert sorted(results) == suggested and len(results) == n  # each accounted for once
    starts = Counter(e["trial"] for e in events if e["kind"] == "start")
    assert {t for t, k in starts.items() if k == 2} == in_flight  # re-dispatched, attempt 2
    searcher = RandomSearcher(pc.SPACE, seed=pc.CRASH_SEED)
    assert [e["config"] for e in events if e["kind"] == "suggest"] == [
        pc_json(searcher.sample_configuration()) for _ in suggested
    ]


def test_ctrl_c_with_two_workers_logs_both_running_trials_as_interrupted(tmp_path: Path) -> None:
    path, markers = tmp_path / "runs.duckdb", tmp_path / "markers"
    markers.mkdir()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    args = [sys.executable, str(CHILD), str(path), "int", "40", str(markers)]
    child = subprocess.Popen(
        args, env=env, cwd=tmp_path, start_new_session=True, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 90
        while _marker_count(markers) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
    finally:
        _end_group(child.pid)
    assert child.returncode != 0 and "run the same command again to resume" in err
    assert "Traceback" not in err  # StudyInterrupted: one line
    with open_store(os.fspath(path)) as store:
        events = store.events("int").to_pylist()
    running = {e["trial"] for e in events if e["kind"] == "start"} - {
        e["trial"] for e in events if e["kind"] in ("evaluate", "fail")
    }
    interrupted = {e["trial"] for e in events if e["kind"] == "interrupt"}
    assert 1 <= len(running) <= 2 and interrupted == running  # 2 unless between two trials
    assert events[-1]["kind"] == "end" and "interrupted" in events[-1]["payload"]


def pc_json(config: dict) -> str:  # type: ignore[type-arg]
    import json

    return json.dumps({**config, "max_epochs": 4}, separators=(",", ":"))


def test_ray_tasks_run_trials_and_carry_reports_and_stops() -> None:
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'hpostore[ray]')")
    from hpostore.executors import RayExecutor

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}},
    )
    try:
        scheduler = ASHAScheduler(
            RandomSearcher(pc.SPACE, seed=3), eta=2, r_min=1, r_max=4, type="stopping"
        )
        tuner = HPOTuner(scheduler, pc.reporting, verbose=False, executor=RayExecutor(2))
        tuner.run(6)
    finally:
        ray.shutdown()
    state = tuner.state
    assert state.n_finished == 6 and sorted(state.trials) == list(range(6))
    assert all(t.curve for t in state.trials.values())  # reports came back through Ray
    assert any(t.stopped for t in state.trials.values())
    for t in state.trials.values():
        if t.stopped:
            assert t.curve[-1][0] < 4
