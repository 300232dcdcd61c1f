"""Resume equivalence under parallel workers, exactly: simulated workers, real SIGKILLs.

A study on ``n`` simulated workers (:class:`hpostore.simulation.SimulatedExecutor`, 2..4
workers; random search and promotion-type ASHA, a report per epoch) runs in a child process
that SIGKILLs itself right after a randomly chosen ``store.append`` (a real kill: no
``finally``, no flush). The same command then resumes it, is killed again at another random
point, and finally runs to the end. DESIGN.md's resume equivalence, for parallel workers: the
log's stream of (kind, trial, config, resource, error) equals the uninterrupted run's.

What is compared: every event that says what happened to a trial — suggest, report, evaluate,
fail, stop, pause, promote, update — in log order. Left out are what a crash adds by its
nature: ``start`` (a re-run is a new attempt), ``interrupt``, ``study``/``session``/``end``,
and a ``report`` repeating one already logged for the same trial and resource (a re-run trial
that reports an epoch again gives the same value).

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

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL: POSIX only")


def child(path: str, study: str, workers: int, scheduler: str, n: int, kill_after: int) -> None:
    """The study, on ``workers`` simulated workers; SIGKILL after the ``kill_after``-th append."""
    from hpostore import ASHAScheduler, BasicScheduler, HPOTuner, RandomSearcher, open_store
    from hpostore.simulation import Branin, SimulatedExecutor

    bench = Branin(max_resource=9)
    searcher = RandomSearcher(bench.config_space, seed=11)
    sched: Any = (
        BasicScheduler(searcher)
        if scheduler == "random"
        else ASHAScheduler(searcher, eta=3, r_min=1, r_max=9, type="promotion")
    )
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
        tuner = HPOTuner(
            sched,
            bench.curve_objective(),
            executor=SimulatedExecutor(n_workers=workers),
            store=store,
            study=study,
            verbose=False,
        )
        tuner.run(n)
    print("APPENDS", count, flush=True)


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
        rows = store.events("sim").to_pylist()
    out: list[tuple[Any, ...]] = []
    reported: set[tuple[int, float]] = set()
    for r in rows:
        if r["kind"] not in STREAM:
            continue
        if r["kind"] == "report":
            if (r["trial"], r["resource"]) in reported:
                continue
            reported.add((r["trial"], r["resource"]))
        config = json.loads(r["config"]) if r["config"] else None
        out.append(
            (r["kind"], r["trial"], json.dumps(config, sort_keys=True), r["resource"], r["error"])
        )
    return out


CASES = [(w, s) for w in (2, 3, 4) for s in ("random", "asha")]


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


@pytest.mark.parametrize("scheduler", ["random", "asha"])
def test_killed_study_on_one_simulated_worker_logs_the_uninterrupted_stream(
    scheduler: str, tmp_path: Path, zygote: Zygote
) -> None:
    """The control: with one worker the comparison holds today (nothing else is in flight)."""
    check_kill_and_resume(1, scheduler, tmp_path, zygote)


@pytest.mark.xfail(
    strict=True,
    reason="a resumed SimulatedExecutor restarts the in-flight trials at the resume moment from "
    "epoch 0 (its clock and per-trial progress are not rebuilt from the log), so the completion "
    "order, and with it the stream, differs from the uninterrupted run (issue 9, item 7)",
)
@pytest.mark.parametrize(("workers", "scheduler"), CASES)
def test_killed_parallel_study_logs_the_uninterrupted_stream(
    workers: int, scheduler: str, tmp_path: Path, zygote: Zygote
) -> None:
    check_kill_and_resume(workers, scheduler, tmp_path, zygote)


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        p, s, w, sch, n, k = sys.argv[1:7]
        child(p, s, int(w), sch, int(n), int(k))
