"""Resume equivalence under parallel workers, exactly: simulated workers, real SIGKILLs.

A study on ``n`` simulated workers (:class:`hpostore.simulation.SimulatedExecutor`, 1..4
workers; random search, promotion-type and stopping-type ASHA, a report per epoch) runs in a
child process that SIGKILLs itself right after a randomly chosen ``store.append`` (a real
kill: no ``finally``, no flush). The same command then resumes it, is killed again at another
random point, and finally runs to the end. DESIGN.md's resume equivalence, for parallel
workers: the log's stream equals the uninterrupted run's.

What is compared: every event that says what happened to a trial (suggest, report, evaluate,
fail, stop, pause, promote, update) in log order, with its trial, config, resource, error,
runtime, worker and elapsed. Left out is only what a crash adds by its nature: ``start`` (the
re-run of a trial that was running is a new attempt, logged when the study resumes),
``interrupt`` and ``study``/``session``/``end``. Nothing else is forgiven: the resumed
executor rebuilds its workers from the log (clock, free workers, each open run's start, last
report and any stop sent), so a trial running at the kill goes on on its simulated timeline
without reporting an epoch twice, and the tuner logs the scheduler decisions the crash lost.

:func:`test_resuming_from_every_commit_point_logs_the_uninterrupted_stream` resumes in-process
from every prefix a durable kill can leave (the log up to each commit), and from a second
kill after each: the exhaustive check the random kills sample.

Run as a script it is the child: ``python test_resume_parallel.py STORE STUDY WORKERS
SCHEDULER N KILL_AFTER_APPEND`` (``0``: no kill); the tests fork such children from a zygote
(``--serve``) that has paid for the imports once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
N_RESULTS = 14
KILLS = 3  # kills per case before the run that finishes
TIMEOUT_S = 120
STREAM = ("suggest", "report", "evaluate", "fail", "stop", "pause", "promote", "update")
FIELDS = ("kind", "trial", "config", "resource", "error", "runtime", "worker", "elapsed")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL: POSIX only")


def child(path: str, study: str, workers: int, scheduler: str, n: int, kill_after: int) -> None:
    """The study, on ``workers`` simulated workers; SIGKILL after the ``kill_after``-th append."""
    from hpostore import open_store

    with open_store(path, durability="durable") as store:
        append = store.append
        count = 0

        def killing_append(*args: Any, **kwargs: Any) -> Any:
            nonlocal count
            row = append(*args, **kwargs)
            count += 1
            if count == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
            return row

        store.append = killing_append  # type: ignore[method-assign]
        tuner = make_tuner(store, study, workers, scheduler)
        tuner.run(n)
    print("APPENDS", count, flush=True)


def make_tuner(store: Any, study: str, workers: int, scheduler: str) -> Any:
    """The study: Branin (9 epochs), seeded random search under ``scheduler``."""
    from hpostore import ASHAScheduler, BasicScheduler, HPOTuner, RandomSearcher
    from hpostore.simulation import Branin, SimulatedExecutor

    bench = Branin(max_resource=9)
    searcher = RandomSearcher(bench.config_space, seed=11)
    sched: Any = (
        BasicScheduler(searcher)
        if scheduler == "random"
        else ASHAScheduler(searcher, eta=3, r_min=1, r_max=9, type=scheduler.split("-")[1])
    )
    return HPOTuner(sched, bench.curve_objective(), executor=SimulatedExecutor(n_workers=workers),
                    store=store, study=study, verbose=False)  # fmt: skip


class Zygote:
    """This file run with ``--serve``: imports hpostore once, then forks one child per run (a
    real process, SIGKILLed for real; only the ~1.5 s of imports per process is saved)."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, path: Path, workers: int, scheduler: str, kill_after: int) -> tuple[int, str]:
        """Run the child to its end or its kill: its exit code (negative: the signal) and output."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        out = path.with_suffix(f".out{kill_after}")
        args = [str(path), "sim", workers, scheduler, N_RESULTS, kill_after, str(out)]
        self.proc.stdin.write(json.dumps(args) + "\n")
        self.proc.stdin.flush()
        code = int(self.proc.stdout.readline())
        return code, out.read_text()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=TIMEOUT_S)


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    z = Zygote()
    yield z
    z.close()


def serve() -> None:
    """Zygote mode: each stdin line is the JSON list of :func:`child`'s arguments and an output
    file; a forked child runs it (SIGALRM after ``TIMEOUT_S``); the reply is its exit code."""
    import hpostore.simulation  # noqa: F401  (the imports the children share)

    for line in sys.stdin:
        *args, out = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                signal.alarm(TIMEOUT_S)
                child(*args)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)


def stream(path: Path) -> list[tuple[Any, ...]]:
    from hpostore import open_store

    with open_store(str(path), read_only=True) as store:
        return stream_of(store.events("sim").to_pylist())


def stream_of(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The compared events (module docstring), each as a tuple of :data:`FIELDS`."""
    return [tuple(r[f] for f in FIELDS) for r in rows if r["kind"] in STREAM]


SCHEDULERS = ("random", "asha-promotion", "asha-stopping")
CASES = [(w, s) for w in (2, 3, 4) for s in SCHEDULERS]


def check_kill_and_resume(workers: int, scheduler: str, tmp_path: Path, zygote: Zygote) -> None:
    """The reference run, then kills at random appends and a final run; equal streams."""
    reference = tmp_path / "reference.duckdb"
    code, out = zygote.run(reference, workers, scheduler, 0)
    assert code == 0, out
    appends = int(out.split("APPENDS")[-1].split()[0])
    want = stream(reference)
    assert sum(1 for e in want if e[0] == "evaluate") >= N_RESULTS

    rng = random.Random(f"{workers}-{scheduler}")
    path = tmp_path / "killed.duckdb"
    kills = 0
    for _ in range(KILLS):
        code, out = zygote.run(path, workers, scheduler, rng.randint(1, appends))
        if code == 0:
            break  # the kill point lay past the study's end in this session
        assert code == -signal.SIGKILL, out
        kills += 1
    code, out = zygote.run(path, workers, scheduler, 0)
    assert code == 0, out
    assert kills >= 1
    assert stream(path) == want


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_killed_study_on_one_simulated_worker_logs_the_uninterrupted_stream(
    scheduler: str, tmp_path: Path, zygote: Zygote
) -> None:
    """One worker: nothing else is in flight while a trial runs."""
    check_kill_and_resume(1, scheduler, tmp_path, zygote)


@pytest.mark.parametrize(("workers", "scheduler"), CASES)
def test_killed_parallel_study_logs_the_uninterrupted_stream(
    workers: int, scheduler: str, tmp_path: Path, zygote: Zygote
) -> None:
    check_kill_and_resume(workers, scheduler, tmp_path, zygote)


#: the columns a log's events are appended with again (the store assigns seq and ts)
APPENDED = ("elapsed", "session", "trial", "config", "resource", "error", "runtime", "worker",
            "payload")  # fmt: skip


def run_in_memory(
    prefix: list[dict[str, Any]], workers: int, scheduler: str
) -> tuple[list[dict[str, Any]], list[int]]:
    """The study in an in-memory store that holds ``prefix`` (what a killed run left), run to
    the end: its events, and the seqs at which the resumed run committed (its kill points)."""
    from hpostore import open_store

    store = open_store(":memory:")
    for r in prefix:
        store.append("sim", r["kind"], **{c: r[c] for c in APPENDED})
    commits: list[int] = []
    commit = store.commit

    def recording_commit(*, force: bool = False) -> None:
        commits.append(store.last_seq("sim"))
        commit(force=force)

    store.commit = recording_commit  # type: ignore[method-assign]
    try:
        make_tuner(store, "sim", workers, scheduler).run(N_RESULTS)
        return store.events("sim").to_pylist(), sorted(set(commits))
    finally:
        store.close()


@pytest.mark.parametrize(
    ("workers", "scheduler"), [(2, "asha-promotion"), (3, "asha-stopping"), (4, "random")]
)
def test_resuming_from_every_commit_point_logs_the_uninterrupted_stream(
    workers: int, scheduler: str
) -> None:
    """A durable kill leaves the log up to a commit: resume from each such prefix of the
    uninterrupted run's log (and, from every third, a commit of the resumed run: a second
    kill)."""
    reference, points = run_in_memory([], workers, scheduler)
    want = stream_of(reference)
    resumed = 0
    for i, p in enumerate(points):
        if p >= len(reference):
            continue  # the study's end: nothing to resume
        got, later = run_in_memory(reference[:p], workers, scheduler)
        assert stream_of(got) == want, f"resumed from the log up to seq {p}"
        second = [q for q in later if p + 1 < q < len(got)]
        if second and i % 3 == 0:  # a second kill after every third point (time)
            q = second[len(second) // 2]
            again, _ = run_in_memory(got[:q], workers, scheduler)
            assert stream_of(again) == want, f"resumed up to seq {p}, then up to seq {q}"
        resumed += 1
    assert resumed >= 20


def test_a_log_of_other_workers_is_resumed_with_fresh_runs() -> None:
    """A log that 4 simulated workers left, resumed on 2: it is not theirs to continue (more
    runs were open than they have workers), so the open trials re-run from their checkpoints
    and the study completes."""
    reference, points = run_in_memory([], 4, "asha-promotion")

    def in_flight(cut: int) -> int:
        running: set[int] = set()
        for r in reference[:cut]:
            if r["kind"] == "start":
                running.add(r["trial"])
            elif r["kind"] in ("evaluate", "fail"):
                running.discard(r["trial"])
        return len(running)

    # a kill with more trials in flight than the resuming executor has workers
    cut = next(p for p in points[len(points) // 2 :] if in_flight(p) > 2)
    got, _ = run_in_memory(reference[:cut], 2, "asha-promotion")
    assert sum(r["kind"] == "evaluate" for r in got) >= N_RESULTS
    assert {r["worker"] for r in got[cut:] if r["kind"] == "evaluate"} <= {"sim-0", "sim-1"}


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        p, s, w, sch, n, k = sys.argv[1:7]
        child(p, s, int(w), sch, int(n), int(k))
