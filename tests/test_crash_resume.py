"""Crash and resume with real processes: SIGKILL at random points, Ctrl-C, then run again.

Each case runs ``tests/crash_child.py`` (a study with a deterministic objective), kills it with a
real ``SIGKILL`` inside the objective or right after the n-th ``store.append``/``store.commit``,
inspects the log the crash left, runs the same child again to resume, and checks the DESIGN.md
invariants: the log is always a consistent prefix, durable mode is write-ahead, and the resumed
stream of (kind, trial, config, resource, error) equals an uninterrupted run's.

The kill/resume cases are independent, so a module fixture runs them on a thread pool (each is
a sequence of child processes) and the parametrized tests check one case each. The children are
forked from ``crash_child.py --serve`` zygotes (imports paid once); the batched reference and
the Ctrl-C runs use fresh interpreters.
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest

from hpostore import open_store

ROOT = Path(__file__).resolve().parents[1]
CHILD = Path(__file__).with_name("crash_child.py")
STUDY = "crash"
N_TRIALS = 10
KILL_VARS = ("KILL_IN_TRIAL", "KILL_AFTER_APPEND", "KILL_AFTER_COMMIT", "SLEEP_IN_TRIAL")
ENV_VAR = {"trial": "KILL_IN_TRIAL", "append": "KILL_AFTER_APPEND", "commit": "KILL_AFTER_COMMIT"}
STREAM_KINDS = ("suggest", "evaluate", "fail", "update")
TIMEOUT_S = 60
WORKERS = max(2, min(4, os.cpu_count() or 2))

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and flock: POSIX only")


# --- running the child ---------------------------------------------------------------------
def child_env(**kill: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KILL_VARS}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.update({k: str(v) for k, v in kill.items()})
    return env


def child_args(path: Path, scheduler: str, durability: str) -> list[str]:
    return [str(path), STUDY, str(N_TRIALS), durability, scheduler]


def run_fresh(
    path: Path, scheduler: str, durability: str, **kill: int
) -> subprocess.CompletedProcess[str]:
    """The child in a fresh interpreter (``python tests/crash_child.py ...``)."""
    return subprocess.run(
        [sys.executable, str(CHILD), *child_args(path, scheduler, durability)],
        env=child_env(**kill),
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


class Zygote:
    """``crash_child.py --serve``: imports once, then forks a real child process per run.

    The forked child runs the same ``main()`` as a fresh interpreter and is SIGKILLed the same
    way; only the ~1.5 s of imports per process is saved.
    """

    def __init__(self) -> None:
        env = child_env()
        env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), "--serve"],
            env=env,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(
        self, path: Path, scheduler: str, durability: str, **kill: int
    ) -> subprocess.CompletedProcess[str]:
        args = child_args(path, scheduler, durability)
        fd, name = tempfile.mkstemp(prefix="child-", dir=path.parent)
        os.close(fd)
        out, err = name + ".out", name + ".err"
        request = {
            "argv": args,
            "env": child_env(**kill),
            "cwd": str(path.parent),
            "stdout": out,
            "stderr": err,
            "timeout": TIMEOUT_S,
        }
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        assert reply, f"the zygote died (rc={self.proc.poll()})"
        return subprocess.CompletedProcess(
            args, int(reply), Path(out).read_text(), Path(err).read_text()
        )

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Children:
    """A pool of zygotes, one per worker thread."""

    def __init__(self, n: int) -> None:
        self.all = [Zygote() for _ in range(n)]
        self.idle: queue.Queue[Zygote] = queue.Queue()
        for z in self.all:
            self.idle.put(z)

    def run(
        self, path: Path, scheduler: str, durability: str, **kill: int
    ) -> subprocess.CompletedProcess[str]:
        zygote = self.idle.get()
        try:
            return zygote.run(path, scheduler, durability, **kill)
        finally:
            self.idle.put(zygote)

    def close(self) -> None:
        for z in self.all:
            z.close()


@pytest.fixture(scope="module")
def children() -> Iterator[Children]:
    pool = Children(WORKERS)
    yield pool
    pool.close()


def counts_of(proc: subprocess.CompletedProcess[str], tag: str) -> dict[str, int]:
    """The counts the child printed on its ``KILL``/``DONE`` line."""
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(tag + " ")]
    assert len(lines) == 1, f"expected one {tag} line\n{describe(proc)}"
    return json.loads(lines[0][len(tag) + 1 :])


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    return f"rc={proc.returncode}\nstdout:\n{proc.stdout[-2000:]}\nstderr:\n{proc.stderr[-4000:]}"


def read_events(path: Path) -> list[dict[str, Any]]:
    """The study's events as a read-only store sees them (table + tail), in seq order."""
    if not path.exists():
        return []
    with open_store(path, read_only=True) as store:
        return store.events(STUDY).to_pylist()


def project(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            e["kind"],
            e["trial"],
            None if e["config"] is None else json.loads(e["config"]),
            e["resource"],
            e["error"],
        )
        for e in events
        if e["kind"] in STREAM_KINDS
    ]


def payload(event: dict[str, Any]) -> dict[str, Any]:
    return {} if event["payload"] is None else json.loads(event["payload"])


def check_complete_log(events: list[dict[str, Any]], reference: list[tuple[Any, ...]]) -> None:
    """Invariants of a finished study's log, and resume equivalence with ``reference``."""
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), "seq is not 1..M"
    assert events[0]["kind"] == "study"
    assert events[-1]["kind"] == "end", events[-1]
    assert payload(events[-1]) == {"reason": "completed"}
    suggested = [e["trial"] for e in events if e["kind"] == "suggest"]
    assert suggested == list(range(len(suggested))), f"trial ids not 0..N'-1: {suggested}"
    for trial in suggested:
        results = [
            e["kind"] for e in events if e["trial"] == trial and e["kind"] in ("evaluate", "fail")
        ]
        assert len(results) == 1, f"trial {trial} has results {results}"
        attempts = [
            payload(e)["attempt"] for e in events if e["kind"] == "start" and e["trial"] == trial
        ]
        assert attempts == list(range(1, len(attempts) + 1)), f"trial {trial} attempts {attempts}"
    got = project(events)
    if got != reference:
        first = next(
            (i for i, (a, b) in enumerate(zip(got, reference)) if a != b),
            min(len(got), len(reference)),
        )
        pytest.fail(
            f"resumed stream differs from the uninterrupted one at item {first}:\n"
            f"  resumed:       {got[first : first + 3]}\n  uninterrupted: {reference[first : first + 3]}"
        )


def check_prefix(
    events: list[dict[str, Any]], reference: list[tuple[Any, ...]], where: str
) -> None:
    """A crashed log is a consistent prefix: gapless seq, and its stream starts the reference's."""
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), f"{where}: seq has gaps"
    got = project(events)
    assert got == reference[: len(got)], (
        f"{where}: the log is not a prefix of the uninterrupted stream"
    )


# --- references ----------------------------------------------------------------------------
@dataclass
class Reference:
    events: list[dict[str, Any]]
    stream: list[tuple[Any, ...]]
    counts: dict[str, int]

    @property
    def n_trials(self) -> int:
        return sum(e["kind"] == "suggest" for e in self.events)


@pytest.fixture(scope="module")
def references(
    children: Children, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Reference]:
    """One uninterrupted durable run per scheduler kind (durability does not change the stream)."""
    base = tmp_path_factory.mktemp("reference")

    def one(scheduler: str) -> Reference:
        path = base / f"{scheduler}.duckdb"
        proc = children.run(path, scheduler, "durable")
        assert proc.returncode == 0, describe(proc)
        events = read_events(path)
        return Reference(events, project(events), counts_of(proc, "DONE"))

    with ThreadPoolExecutor(2) as pool:
        refs = dict(zip(("random", "stateful"), pool.map(one, ("random", "stateful"))))
    return refs


@pytest.mark.parametrize("scheduler", ["random", "stateful"])
def test_reference_runs(references: dict[str, Reference], scheduler: str, tmp_path: Path) -> None:
    ref = references[scheduler]
    check_complete_log(ref.events, ref.stream)
    assert sum(e["kind"] == "evaluate" for e in ref.events) == N_TRIALS
    assert any(e["kind"] == "fail" for e in ref.events), (
        "the reference should include a failed trial"
    )
    assert ref.counts["appends"] == len(ref.events)
    if scheduler == "stateful":
        epochs = [
            json.loads(e["config"])["max_epochs"] for e in ref.events if e["kind"] == "suggest"
        ]
        assert {1, 2, 4} <= set(epochs), f"successive halving should promote: {epochs}"
    # a batched run of the same child, in a fresh interpreter, writes the same stream
    path = tmp_path / "batched.duckdb"
    proc = run_fresh(path, scheduler, "batched")
    assert proc.returncode == 0, describe(proc)
    check_complete_log(read_events(path), ref.stream)


# --- kill and resume -----------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    id: str
    scheduler: str
    durability: str
    kinds: tuple[str, ...]  # one kill kind per crashed stage: trial | append | commit
    seed: int


def _cases() -> list[Case]:
    rng = random.Random(20240607)
    cases = []
    for rep in range(2):
        for scheduler in ("random", "stateful"):
            for durability in ("durable", "batched"):
                for kind in ("trial", "append", "commit"):
                    name = f"{scheduler}-{durability}-{kind}-{rep}"
                    cases.append(Case(name, scheduler, durability, (kind,), rng.randrange(2**32)))
    # two crashes in a row: killed in a trial, then the resume itself killed between events
    cases.append(
        Case(
            "random-batched-trial+append",
            "random",
            "batched",
            ("trial", "append"),
            rng.randrange(2**32),
        )
    )
    cases.append(
        Case(
            "stateful-durable-trial+commit",
            "stateful",
            "durable",
            ("trial", "commit"),
            rng.randrange(2**32),
        )
    )
    return cases


CASES = _cases()


@dataclass
class Stage:
    kind: str
    point: int
    prior: int  # events in the log before this stage's child ran
    proc: subprocess.CompletedProcess[str]
    crashed: list[dict[str, Any]] = field(default_factory=list)  # the log the kill left


@dataclass
class Outcome:
    path: Path
    stages: list[Stage]
    final: subprocess.CompletedProcess[str] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    plain_count: int = -1  # events seen by plain duckdb (no hpostore) after the resume
    error: BaseException | None = None

    def where(self) -> str:
        return ", ".join(f"{s.kind}={s.point}" for s in self.stages)


def pick_point(kind: str, stage: int, n_stages: int, ref: Reference, rng: random.Random) -> int:
    """The kill point of a stage: a trial id, or which append/commit of the child's."""
    if stage > 0:
        # a resume after a kill in the first half of the trials: > 8 appends and > 3 commits left
        return rng.randint(1, 8 if kind == "append" else 3)
    if kind == "trial":
        return rng.randrange(ref.n_trials if n_stages == 1 else ref.n_trials // 2)
    return rng.randint(1, ref.counts["appends" if kind == "append" else "commits"])


def run_case(case: Case, ref: Reference, children: Children, base: Path) -> Outcome:
    rng = random.Random(case.seed)
    path = base / case.id / "study.duckdb"
    path.parent.mkdir(parents=True)
    outcome = Outcome(path, [])
    try:
        for i, kind in enumerate(case.kinds):
            point = pick_point(kind, i, len(case.kinds), ref, rng)
            prior = len(read_events(path))
            proc = children.run(path, case.scheduler, case.durability, **{ENV_VAR[kind]: point})
            stage = Stage(kind, point, prior, proc)
            outcome.stages.append(stage)
            if proc.returncode != -signal.SIGKILL:
                return outcome
            stage.crashed = read_events(path)
        outcome.final = children.run(path, case.scheduler, case.durability)
        if outcome.final.returncode == 0:
            outcome.events = read_events(path)
            with duckdb.connect(str(path), read_only=True) as con:
                outcome.plain_count = con.execute(
                    "SELECT count(*) FROM events WHERE study = ?", [STUDY]
                ).fetchone()[0]
    except BaseException as exc:  # reported by the case's test
        outcome.error = exc
    return outcome


@pytest.fixture(scope="module")
def outcomes(
    references: dict[str, Reference],
    children: Children,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Outcome]:
    base = tmp_path_factory.mktemp("crash")
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = {
            c.id: pool.submit(run_case, c, references[c.scheduler], children, base) for c in CASES
        }
        return {k: f.result() for k, f in futures.items()}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_kill_then_resume(
    case: Case, outcomes: dict[str, Outcome], references: dict[str, Reference]
) -> None:
    out = outcomes[case.id]
    ref = references[case.scheduler]
    if out.error is not None:
        raise out.error
    for stage in out.stages:
        where = f"{case.id} ({stage.kind}={stage.point})"
        assert stage.proc.returncode == -signal.SIGKILL, (
            f"{where}: not killed\n{describe(stage.proc)}"
        )
        counts = counts_of(stage.proc, "KILL")
        crashed = stage.crashed
        check_prefix(crashed, ref.stream, where)
        assert len(crashed) >= stage.prior, f"{where}: the crash lost events of an earlier session"
        if case.durability == "durable":
            # every event appended before the last commit is on disk, nothing after it
            assert len(crashed) == stage.prior + counts["committed"], f"{where}: {counts}"
        else:
            # batched: at least what the last forced commit covered, never more than committed
            assert (
                stage.prior + counts["forced"] <= len(crashed) <= stage.prior + counts["committed"]
            ), f"{where}: {len(crashed)} events after the crash, counts {counts}"
        if stage.kind == "trial" and case.durability == "durable":
            # write-ahead: the trial's suggest and start were durable before the objective ran
            mine = [e for e in crashed if e["trial"] == stage.point]
            assert [e["kind"] for e in mine] == ["suggest", "start"], f"{where}: {mine}"
            assert payload(mine[1])["attempt"] == 1
    where = f"{case.id} ({out.where()})"
    assert out.final is not None and out.final.returncode == 0, (
        f"{where}: the resume failed\n{describe(out.final) if out.final else ''}"
    )
    events = out.events
    check_complete_log(events, ref.stream)
    assert out.plain_count == len(events), f"{where}: not everything was folded into the table"
    for stage in out.stages:
        if stage.kind == "trial" and any(
            e["kind"] == "start" and e["trial"] == stage.point for e in stage.crashed
        ):
            # the killed attempt is in the log (always in durable mode): re-run as attempt 2
            starts = [
                payload(e)["attempt"]
                for e in events
                if e["kind"] == "start" and e["trial"] == stage.point
            ]
            assert starts[:2] == [1, 2], f"{where}: trial {stage.point} starts {starts}"
    sessions = [payload(e)["reason"] for e in events if e["kind"] == "session"]
    assert sessions[0] == "new" and all(r == "resume" for r in sessions[1:]), sessions
    last = out.stages[-1].crashed
    if any(e["kind"] == "session" for e in last) and last[-1]["kind"] != "end":
        # a session was cut short: the rerun resumed it (a log ending in `end` has nothing to do)
        assert len(sessions) >= 2 and sessions[-1] == "resume", f"{where}: sessions {sessions}"


# --- Ctrl-C --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scheduler", "durability", "trial"), [("stateful", "durable", 4), ("random", "batched", 3)]
)
def test_ctrl_c_then_rerun(
    references: dict[str, Reference],
    children: Children,
    tmp_path: Path,
    scheduler: str,
    durability: str,
    trial: int,
) -> None:
    ref = references[scheduler]
    path = tmp_path / "study.duckdb"
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), *child_args(path, scheduler, durability)],
        env=child_env(SLEEP_IN_TRIAL=trial),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the objective of `trial` is sleeping once this arrives
        assert line.split() == ["READY", str(trial)], line
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0, out
    # Ctrl-C ends the run with one line (StudyInterrupted), no traceback, and says how to resume.
    assert "Traceback" not in err, err[-2000:]
    assert "run the same command again to resume" in err, err[-2000:]
    events = read_events(path)
    check_prefix(events, ref.stream, "after Ctrl-C")
    interrupts = [e for e in events if e["kind"] == "interrupt"]
    assert [e["trial"] for e in interrupts] == [trial]
    assert events[-1]["kind"] == "end" and payload(events[-1]) == {"reason": "interrupted"}
    assert not any(e["trial"] == trial and e["kind"] in ("evaluate", "fail") for e in events)

    rerun = children.run(path, scheduler, durability)
    assert rerun.returncode == 0, describe(rerun)
    events = read_events(path)
    check_complete_log(events, ref.stream)
    starts = [payload(e)["attempt"] for e in events if e["kind"] == "start" and e["trial"] == trial]
    assert starts == [1, 2]
    ends = [payload(e)["reason"] for e in events if e["kind"] == "end"]
    assert ends == ["interrupted", "completed"]
