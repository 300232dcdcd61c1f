"""Crash campaign: random SIGKILLs of real tuner processes, resumed, checked against a reference.

A script, not a test::

    .venv/bin/python benchmarks/crash_campaign.py              # 200 kills (~5-10 minutes)
    .venv/bin/python benchmarks/crash_campaign.py --quick      # 20 kills
    .venv/bin/python benchmarks/crash_campaign.py --kills 500 --jobs 4 --seed 1
    .venv/bin/python benchmarks/crash_campaign.py --kills 30 --only "2w durable"
    .venv/bin/python benchmarks/crash_campaign.py --snapshot-every 30   # resumes from snapshots

Cells: store (DuckDB durable, DuckDB batched, Parquet) x workers (sequential, 2 process
workers) x algorithm (random search, promotion-type ASHA, TPE), all seeded, over a
deterministic objective that sleeps a few ms. Each cell first runs its study uninterrupted (the
reference). A *run* then starts the study in a fresh process, SIGKILLs it at a random moment
(anywhere: opening the store, replay, a trial, a commit), starts it again, kills it again (up
to ``--kills-per-run`` times), then lets it finish, and checks:

- **lost acknowledged results**: the objective appends ``B <pgid> <time> <key>`` to a side
  file when it begins and ``E <pgid> <time> <key> <value>`` just before it returns (or
  raises). A result is *acknowledged* once the tuner has acted on it: it has dispatched
  ``n_workers`` more objective calls in the same process group after the ``E`` line
  (sequentially: the next call; with k workers at most k-1 other calls were in flight when
  the result came back, so the k-th new call means the tuner moved past it), or it had the
  result for ``ACK_S`` (0.4 s) of wall clock before it was killed (a result that waits beside
  a long trial, e.g. the study's last).
  Lost: the final log holds no ``evaluate``/``fail`` for that key from that tuner session (the
  ``session`` event's pid is the process group).
- **re-run finished trials**: an ``evaluate`` for a trial followed by another ``start`` of the
  same trial without a ``promote`` in between.
- **divergent configs** (sequential cells, all seeded): the config of trial k in the final log
  differs from the reference's trial k (or the trial lists differ).
- **unresumable studies**: any exception when the study is reopened or resumed, or a final run
  that does not finish.

Lost and re-run results are failures in the durable stores (DuckDB durable, Parquet); batched
mode may lose its last batch by design (DESIGN.md), so its counts are shown apart. The exit
status is 1 if any run failed.

Also shown, not a failure: **redo**, finished objective calls (an ``E`` line) run again in a later
session because the kill came before their result was durable. Durable mode shrinks that window
to the commit of the result; batched mode to its batch.

Tuner processes are forked from a zygote (imports paid once) into a new process group; the kill
is a SIGKILL of the tuner process, after which the group (its pool workers) is killed as well.
Only the public API is used (``HPOTuner``, ``open_store``, searchers, schedulers, ``n_workers=``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STUDY = "campaign"
N_RESULTS = 14
STORES = ("duckdb-durable", "duckdb-batched", "parquet")
WORKERS = (1, 2)
ALGORITHMS = ("random", "asha", "tpe")
SIDE_ENV = "HPOSTORE_CRASH_SIDE"
#: a result the tuner held this long (wall clock) before it was killed was acted on
ACK_S = 0.4
RUN_TIMEOUT_S = 120.0


# --- the study (runs in the forked tuner process and in its pool workers) --------------------
def objective(x: float, y: float, cat: str, max_epochs: float | None = None) -> float:
    """Deterministic; sleeps 2-7 ms (0.7 s when ``x > 7.5``, one config in six, so that with 2
    workers a result waits beside a long trial); fails for ``cat == "c" and x > 5``; writes
    the side file."""
    key = config_key({"x": x, "y": y, "cat": cat, "max_epochs": max_epochs})
    _side("B", key)
    epochs = 1.0 if max_epochs is None else float(max_epochs)
    time.sleep(0.7 if x > 7.5 else 0.002 + 0.0005 * epochs)
    if cat == "c" and x > 5:
        _side("E", key, "fail")
        raise ValueError(f"x = {x} > 5 with cat 'c'")
    value = (y - 5.1 / (4 * math.pi**2) * x**2 + 5 / math.pi * x - 6) ** 2 + 10 * math.cos(x)
    value += {"a": 0.0, "b": 3.0, "c": 7.0}[cat] + 20.0 / epochs
    _side("E", key, repr(value))
    return value


def config_key(config: dict[str, Any]) -> str:
    """The identity of one objective call: its config (numbers as floats), as JSON."""
    norm = {
        k: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
        for k, v in config.items()
        if v is not None
    }
    return json.dumps(norm, sort_keys=True)


def _side(tag: str, key: str, value: str = "") -> None:
    path = os.environ.get(SIDE_ENV)
    if path:
        line = f"{tag} {os.getpgid(0)} {time.time():.6f} {key} {value}".rstrip() + "\n"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line.encode())  # one write(2) of a short line to an O_APPEND file
        finally:
            os.close(fd)


def run_study(
    store_kind: str, workers: int, algorithm: str, path: str, ready: Any = lambda: None
) -> None:
    """Open the store, build the tuner (replaying the log), call ``ready()``, run the study."""
    from scipy import stats

    from hpostore import (
        ASHAScheduler,
        BasicScheduler,
        HPOTuner,
        RandomSearcher,
        TPESearcher,
        open_store,
    )

    space = {"x": stats.uniform(-5, 15), "y": stats.uniform(0, 15), "cat": ["a", "b", "c"]}
    if algorithm == "random":
        scheduler: Any = BasicScheduler(RandomSearcher(space, seed=5))
    elif algorithm == "tpe":
        scheduler = BasicScheduler(TPESearcher(space, n_startup=5, seed=5))
    else:
        scheduler = ASHAScheduler(
            RandomSearcher(space, seed=5), eta=3, r_min=1, r_max=9, type="promotion"
        )
    durability = "batched" if store_kind == "duckdb-batched" else "durable"
    store = open_store(path, durability=durability)
    try:
        tuner = HPOTuner(
            scheduler,
            objective,
            store=store,
            study=STUDY,
            verbose=False,
            max_failures=None,
            n_workers=workers,
        )
        ready()
        tuner.run(N_RESULTS)
    finally:
        store.close()


# --- the zygote: forks tuner processes and kills them ----------------------------------------
def zygote() -> int:
    """``--zygote``: per stdin request (JSON), fork a tuner process in a new process group and
    SIGKILL it ``delay`` seconds (null: never) after its start (``phase="start"``), after
    the tuner is built and about to run (``phase="run"``), or after its first objective call
    (``phase="trials"``: the side file grew), unless it ended first; then kill its
    group and reply ``{"code", "killed", "seconds", "ready"}`` (code: the exit code, negative
    for a signal; seconds: from the fork to the end; ready: from the fork to ``run``)."""
    _preload()
    for line in sys.stdin:
        req = json.loads(line)
        r, w = os.pipe()
        t0 = time.monotonic()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            _forked(req, w)
        os.close(w)
        ready: float | None = None
        ready_at: float | None = None
        deadline = None
        side_size = os.stat(req["side"]).st_size if os.path.exists(req["side"]) else 0
        if req["delay"] is not None and req["phase"] == "start":
            deadline = t0 + req["delay"]
        status, killed_at = 0, None
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            now = time.monotonic()
            if ready is None and select.select([r], [], [], 0)[0] and os.read(r, 1):
                ready, ready_at = now - t0, time.time()
                if req["delay"] is not None and req["phase"] == "run":
                    deadline = now + req["delay"]
            if (
                deadline is None
                and req["delay"] is not None
                and req["phase"] == "trials"
                and os.stat(req["side"]).st_size > side_size
            ):
                deadline = now + req["delay"]
            if (deadline is not None and now >= deadline) or now >= t0 + RUN_TIMEOUT_S:
                killed_at = time.time()
                os.kill(pid, signal.SIGKILL)  # not reaped yet: the pid is still this child's
                _, status = os.waitpid(pid, 0)
                break
            time.sleep(0.0005)
        seconds = time.monotonic() - t0
        os.close(r)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # the dead tuner's pool workers, if any
        code = os.waitstatus_to_exitcode(status)  # a kill after a clean exit does not count
        reply = {
            "code": code,
            "killed": code == -signal.SIGKILL,
            "killed_at": killed_at,  # wall clock, as in the side file
            "pid": pid,
            "seconds": seconds,
            "ready": ready,
            "ready_at": ready_at,  # wall clock
        }
        print(json.dumps(reply), flush=True)
    return 0


#: the environment variable that carries ``--snapshot-every`` to the zygotes
SNAPSHOT_EVERY_ENV = "HPOSTORE_CAMPAIGN_SNAPSHOT_EVERY"


def _preload() -> None:
    """Pay for the imports once, before any fork (hpostore imports some modules lazily)."""
    import importlib

    import pyarrow as pa
    from scipy import stats  # noqa: F401

    pa.array([0.0]).to_pandas()  # pyarrow's first conversions import pandas
    import hpostore

    for name in ("HPOTuner", "open_store", "ASHAScheduler", "TPESearcher", "RandomSearcher"):
        getattr(hpostore, name)
    for module in ("hpostore.store.duckdb", "hpostore.store.parquet", "duckdb"):
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    every = os.environ.get(SNAPSHOT_EVERY_ENV)
    if every:  # --snapshot-every: snapshots while the study runs, so kills meet them
        from hpostore.tuner import _snapshots

        _snapshots.EVERY_EVENTS = int(every)


def _forked(req: dict[str, Any], ready_fd: int) -> None:
    code = 3
    try:
        os.setsid()
        fd = os.open(req["out"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.environ[SIDE_ENV] = req["side"]
        print(f"--- session pid {os.getpid()}", flush=True)
        run_study(
            req["store"], req["workers"], req["algorithm"], req["path"],
            lambda: os.write(ready_fd, b"R"),
        )  # fmt: skip
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


class Zygote:
    def __init__(self) -> None:
        env = dict(os.environ)
        paths = [str(ROOT), str(ROOT / "benchmarks"), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import crash_campaign, sys; sys.exit(crash_campaign.zygote())"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(
        self, cell: Cell, path: str, side: Path, out: Path, delay: float | None, phase: str = "run"
    ) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        req = {
            "store": cell.store, "workers": cell.workers, "algorithm": cell.algorithm,
            "path": path, "side": str(side), "out": str(out), "delay": delay, "phase": phase,
        }  # fmt: skip
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], RUN_TIMEOUT_S + 30)
        if not ready:
            raise RuntimeError("the zygote did not answer")
        return dict(json.loads(self.proc.stdout.readline()))

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


# --- cells, runs, checks ---------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    store: str
    workers: int
    algorithm: str

    @property
    def name(self) -> str:
        workers = "seq" if self.workers == 1 else f"{self.workers}w"
        return f"{self.store:<14} {workers:<3} {self.algorithm}"

    def path(self, directory: Path) -> str:
        return f"{directory / 'log'}/" if self.store == "parquet" else str(directory / "log.duckdb")


@dataclass
class Outcome:
    durable: bool = True
    kills: int = 0
    lost: int = 0
    rerun: int = 0
    divergent: int = 0
    unresumable: int = 0
    redone: int = 0  # finished objective calls run again in a later session (not a failure)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Batched mode may lose its last batch (DESIGN.md): lost and re-run results count
        against durable stores only."""
        durable_failure = self.durable and (self.lost or self.rerun)
        return not (durable_failure or self.divergent or self.unresumable)


def read_log(path: str) -> list[dict[str, Any]]:
    from hpostore import open_store

    with open_store(path, read_only=True) as store:
        return list(store.events(STUDY).to_pylist())


def trial_configs(rows: list[dict[str, Any]]) -> dict[int, str]:
    return {r["trial"]: r["config"] for r in rows if r["kind"] == "suggest"}


def check(
    cell: Cell,
    rows: list[dict[str, Any]],
    side: Path,
    reference: dict[int, str],
    killed_at: dict[str, float],
) -> Outcome:
    """The four counts (and ``redone``) of one run: its final log, its side file, the
    reference's configs, and the wall-clock moment each killed session (by pid) was killed."""
    out = Outcome()
    pid_of = {
        r["session"]: json.loads(r["payload"] or "{}").get("pid")
        for r in rows
        if r["kind"] == "session"
    }
    current: dict[int, dict[str, Any]] = {}
    results: set[tuple[Any, str]] = set()
    keys: set[str] = set()
    since_result: dict[int, bool] = {}
    for r in rows:
        kind, trial = r["kind"], r["trial"]
        if kind == "suggest":
            current[trial] = json.loads(r["config"])
        elif kind == "start":
            if r["config"]:
                current[trial] = json.loads(r["config"])
            if since_result.get(trial):
                out.rerun += 1
                out.notes.append(f"trial {trial} started again (seq {r['seq']}) after its result")
            since_result[trial] = False
        elif kind == "promote":
            since_result[trial] = False
        elif kind in ("evaluate", "fail"):
            key = config_key(current[trial])
            results.add((pid_of.get(r["session"]), key))
            keys.add(key)
            since_result[trial] = kind == "evaluate"
    by_group: dict[str, list[tuple[str, str, float]]] = {}
    finished: dict[str, str] = {}  # key -> the process group whose call finished it
    for line in side.read_text().splitlines():
        tag, group, stamp, rest = line.split(" ", 3)
        key = rest if tag == "B" else rest.rsplit(" ", 1)[0]
        by_group.setdefault(group, []).append((tag, key, float(stamp)))
        if tag == "E":
            finished[key] = group
        elif finished.get(key, group) != group:
            out.redone += 1  # work lost with a crash: its result was not in the log yet
    for group, lines in by_group.items():
        for i, (tag, key, ended) in enumerate(lines):
            if tag != "E":
                continue
            dispatched = sum(1 for t, _, _ in lines[i + 1 :] if t == "B")
            held = killed_at.get(group, ended) - ended  # how long the tuner had it when it died
            if dispatched < cell.workers and held < ACK_S:
                continue
            known = (int(group), key) in results if any(pid_of.values()) else key in keys
            if not known:
                out.lost += 1
                out.notes.append(f"acknowledged result lost: session pid {group}, {key}")
    if cell.workers == 1 and trial_configs(rows) != reference:
        got = trial_configs(rows)
        out.divergent += sum(1 for t in set(got) | set(reference) if got.get(t) != reference.get(t))
        out.notes.append(f"configs differ from the reference in {out.divergent} trials")
    return out


def one_run(
    cell: Cell, zyg: Zygote, rng: random.Random, kills: int, ref: dict, work: Path
) -> Outcome:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    side, log = work / "side.txt", work / "tuner.out"
    side.touch()
    path = cell.path(work)
    out = Outcome(durable=cell.store != "duckdb-batched")
    killed_at: dict[str, float] = {}
    for _ in range(kills):
        # a random moment: one kill in five while the process starts (opening the store,
        # replay), one in five once the tuner runs (a pool starting), the others once the
        # objective has been called; the later the study, the less is left to run
        done = sum(1 for line in side.read_text().splitlines() if line.startswith("E"))
        left = max(0.1, 1.0 - done / ref["calls"])
        phase = rng.choices(["start", "run", "trials"], [1, 1, 3])[0]
        span = {"start": ref["ready"], "run": ref["run"], "trials": ref["trials"] * left}[phase]
        res = zyg.run(cell, path, side, log, rng.uniform(0.0, span), phase)
        if res["killed"]:
            out.kills += 1
            killed_at[str(res["pid"])] = res["killed_at"]
            continue
        if res["code"] != 0:
            out.unresumable += 1
            out.notes.append(f"a session failed (exit {res['code']}): {_last_error(log)}")
            return out
        break  # the kill came after the study's end: nothing left to kill in this run
    res = zyg.run(cell, path, side, log, None)
    if res["code"] != 0:
        out.unresumable += 1
        out.notes.append(f"the final session failed (exit {res['code']}): {_last_error(log)}")
        return out
    try:
        rows = read_log(path)
    except Exception as exc:  # noqa: BLE001 - any error on reopening is what this counts
        out.unresumable += 1
        out.notes.append(f"reopening failed: {type(exc).__name__}: {exc}")
        return out
    if sum(1 for r in rows if r["kind"] == "evaluate") < N_RESULTS:
        out.unresumable += 1
        out.notes.append("the final session ended with fewer results than asked")
    checked = check(cell, rows, side, ref["configs"], killed_at)
    for name in ("lost", "rerun", "divergent", "redone"):
        setattr(out, name, getattr(checked, name))
    out.notes += checked.notes
    return out


def _last_error(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def reference(cell: Cell, zyg: Zygote, work: Path) -> dict[str, Any]:
    work.mkdir(parents=True)
    side = work / "side.txt"
    res = zyg.run(cell, cell.path(work), side, work / "tuner.out", None)
    if res["code"] != 0:
        raise RuntimeError(
            f"{cell.name}: the reference run failed: {_last_error(work / 'tuner.out')}"
        )
    times = [(line[0], float(line.split(" ", 3)[2])) for line in side.read_text().splitlines()]
    configs = trial_configs(read_log(cell.path(work)))
    ends = [at for tag, at in times if tag == "E"]
    # phase "run": from the tuner's start to its last result (a pool may take seconds to start
    # on a busy machine); phase "trials": from the first objective call to the last result
    run = max(ends) - res["ready_at"] + 0.05 if ends and res["ready_at"] else res["seconds"]
    trials = max(ends) - times[0][1] + 0.05 if ends else res["seconds"]
    return {
        "configs": configs,
        "ready": res["ready"] or 0.0,
        "run": run,
        "trials": trials,
        "calls": len(ends) or 1,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200, help="SIGKILLs in all (default 200)")
    parser.add_argument("--quick", action="store_true", help="20 kills")
    parser.add_argument("--kills-per-run", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="cells run side by side")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--only", default="", help="cells whose name contains all these words, e.g. '2w parquet'"
    )
    parser.add_argument(
        "--snapshot-every", type=int, default=0, metavar="N",
        help="write a snapshot of the fold every N events instead of every 40k (a full "
        "one, then layers on it), so that kills land beside snapshot writes and resumes "
        "start from chains of layers",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.snapshot_every:
        os.environ[SNAPSHOT_EVERY_ENV] = str(args.snapshot_every)  # the zygotes inherit it
    budget = 20 if args.quick else args.kills
    cells = [Cell(s, w, a) for s in STORES for w in WORKERS for a in ALGORITHMS]
    cells = [c for c in cells if all(word in c.name for word in args.only.split())]
    share = {c: budget // len(cells) + (i < budget % len(cells)) for i, c in enumerate(cells)}
    root = Path(tempfile.mkdtemp(prefix="hpostore-crash-"))
    totals: dict[Cell, list[Outcome]] = {c: [] for c in cells}
    lock = threading.Lock()
    seconds: dict[Cell, float] = {}
    t0 = time.monotonic()

    local = threading.local()
    zygotes: list[Zygote] = []

    def run_cell(index: int, cell: Cell) -> None:
        if not hasattr(local, "zygote"):  # one zygote per job thread, reused by its cells
            local.zygote = Zygote()
            with lock:
                zygotes.append(local.zygote)
        zyg = local.zygote
        started = time.monotonic()
        rng = random.Random(f"{args.seed}-{index}")
        ref = reference(cell, zyg, root / f"c{index}" / "ref")
        left, n = share[cell], 0
        while left > 0 and n < 3 * share[cell] + 2:  # runs whose kills all missed: bounded
            work = root / f"c{index}" / f"r{n}"
            outcome = one_run(cell, zyg, rng, min(left, args.kills_per_run), ref, work)
            left -= outcome.kills
            n += 1
            with lock:
                totals[cell].append(outcome)
        seconds[cell] = time.monotonic() - started

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        try:
            for future in [pool.submit(run_cell, i, c) for i, c in enumerate(cells)]:
                future.result()
        finally:
            for zyg in zygotes:
                zyg.close()
    report(cells, totals, seconds, time.monotonic() - t0)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"work directory: {root}")
    return 0 if all(o.ok for runs in totals.values() for o in runs) else 1


def report(
    cells: list[Cell], totals: dict[Cell, list[Outcome]], cell_s: dict[Cell, float], seconds: float
) -> None:
    head = (
        f"{'cell':<28} {'kills':>5} {'runs':>4} {'survived':>8} {'failed':>6}  "
        "lost rerun diverg unres  redo     s"
    )
    print(head)
    print("-" * len(head))
    sums: Counter[str] = Counter()
    for cell in cells:
        runs = totals[cell]
        row = Counter(
            kills=sum(o.kills for o in runs), runs=len(runs), survived=sum(o.ok for o in runs),
            failed=sum(not o.ok for o in runs), lost=sum(o.lost for o in runs),
            rerun=sum(o.rerun for o in runs), divergent=sum(o.divergent for o in runs),
            unresumable=sum(o.unresumable for o in runs), redone=sum(o.redone for o in runs),
        )  # fmt: skip
        sums.update(row)
        print(
            f"{cell.name:<28} {row['kills']:>5} {row['runs']:>4} {row['survived']:>8} "
            f"{row['failed']:>6}  {row['lost']:>4} {row['rerun']:>5} {row['divergent']:>6} "
            f"{row['unresumable']:>5} {row['redone']:>5} {cell_s.get(cell, 0):>5.0f}"
        )
    print("-" * len(head))
    lost = sum(o.lost for c in cells for o in totals[c] if o.durable)
    rerun = sum(o.rerun for c in cells for o in totals[c] if o.durable)
    print(
        f"{sums['kills']} SIGKILLs in {sums['runs']} runs ({seconds:.0f} s): "
        f"{lost} lost acknowledged results and {rerun} re-run finished trials in durable mode "
        f"(batched, allowed to lose its last batch: {sums['lost'] - lost} and "
        f"{sums['rerun'] - rerun}), {sums['divergent']} divergent configs, "
        f"{sums['unresumable']} unresumable studies"
    )
    print(
        f"(not failures: {sums['redone']} finished objective calls were run again after a kill "
        "because their result was not yet in the log)"
    )
    notes = [(c, n) for c in cells for o in totals[c] if not o.ok for n in o.notes]
    for cell, note in notes[:15]:
        print(f"  {cell.name.strip()}: {note}")
    if len(notes) > 15:
        print(f"  ... and {len(notes) - 15} more")


if __name__ == "__main__":
    sys.exit(main())
