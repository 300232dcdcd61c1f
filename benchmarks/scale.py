"""How hpostore scales from 1k to 1M trials: per-trial cost, reopen + resume time, memory.

A script, not a test::

    .venv/bin/python benchmarks/scale.py                       # 1k 10k 100k (a few minutes)
    .venv/bin/python benchmarks/scale.py --sizes 1000,1000000  # 1M: ~10 min on 2 busy cores
    .venv/bin/python benchmarks/scale.py --markdown            # the README table

Each figure comes from a fresh child process, after its imports (not timed):

- ``run``: a new batched DuckDB study of N trials, random search over a 2-d space with a
  trivial objective (as ``benchmarks/overhead.py``): ``tuner.run(N)`` + ``store.close()``
  (which writes the final snapshot). µs/trial = that time / N. RSS: the child's peak.
- ``resume``: the same script run again for N + 1 trials: ``open_store`` + ``HPOTuner(...)``
  (snapshot + tail, or the whole log) + ``run`` up to the first new objective call (the
  searcher restored). RSS at that call and the child's peak. ``close``: the rest of that run
  (one trial, the end event, the store's close; no new snapshot: the last one lags < 1/64).
- ``resume, no snapshot``: the same with the snapshots moved aside (full replay), in the
  same minute, so the two are comparable on a busy machine.
- ``optuna journal``: ``JournalStorage`` + ``load_study`` + ``study.trials`` of a journal of
  N complete trials (built from Optuna's own records), for N <= 100k (``--optuna-max``).

Times are CPU seconds of the child (all its threads) and wall seconds; on a loaded machine
compare CPU. Targets (issue 12): resume <= 0.2 s at 100k and <= 1 s at 1M, batched
<= 60 µs/trial, RSS < 300 MB for a 1M-trial study and its reopen.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"run_us": 60.0, "resume_100k": 0.2, "resume_1m": 1.0, "rss_mb": 300.0}


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the child ------------------------------------------------------------------------------
def child(case: str, n: int, path: str) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    if case == "optuna":
        return _optuna_child(n, path)
    from scipy import stats

    from hpostore import BasicScheduler, HPOTuner, RandomSearcher, open_store

    first: dict[str, float] = {}

    def objective(x: float, y: float) -> float:
        if not first:
            first.update(cpu=time.process_time(), wall=time.perf_counter(), rss=_rss_mb())
        return (x - 0.3) ** 2 + y

    def tuner(store: Any) -> HPOTuner:
        space = {"x": stats.uniform(0, 1), "y": stats.loguniform(1e-3, 1)}
        searcher = RandomSearcher(space, seed=0)
        return HPOTuner(BasicScheduler(searcher), objective, store=store, study="bench",
                        verbose=False)  # fmt: skip

    base = _rss_mb()
    if case == "run":
        t = tuner(open_store(path, durability="batched"))
        cpu, wall = time.process_time(), time.perf_counter()
        t.run(n)
        t.store.close()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        return {"cpu": cpu, "wall": wall, "us": cpu / n * 1e6, "peak": _peak_mb(), "base": base}
    cpu, wall = time.process_time(), time.perf_counter()
    t = tuner(open_store(path, durability="batched"))
    t.run(t.state.n_finished + 1)
    t.store.close()
    end_cpu, end_wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "cpu": first["cpu"] - cpu, "wall": first["wall"] - wall, "rss": first["rss"],
        "peak": _peak_mb(), "base": base, "close_cpu": end_cpu - (first["cpu"] - cpu),
        "close_wall": end_wall - (first["wall"] - wall),
    }  # fmt: skip


def _optuna_child(n: int, path: str) -> dict[str, Any]:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not os.path.exists(path):
        import overhead

        overhead.optuna_build_journal(n, Path(path))
        return {}
    cpu, wall = time.process_time(), time.perf_counter()
    storage = JournalStorage(JournalFileBackend(path))
    study = optuna.load_study(study_name="bench", storage=storage)
    assert len(study.trials) == n
    return {"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall,
            "peak": _peak_mb()}  # fmt: skip


def spawn(case: str, n: int, path: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", case, str(n), path],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# --- the parent -----------------------------------------------------------------------------
def measure(n: int, d: Path, optuna_max: int) -> dict[str, Any]:
    path = str(d / f"s{n}.duckdb")
    row: dict[str, Any] = {"n": n, "run": spawn("run", n, path)}
    row["resume"] = spawn("resume", n, path)
    snaps = path + ".snapshots"
    shutil.move(snaps, snaps + ".aside")
    try:
        row["full"] = spawn("resume", n + 1, path)  # the log now holds n + 1 results
    finally:
        shutil.rmtree(snaps, ignore_errors=True)
        shutil.move(snaps + ".aside", snaps)
    row["resume2"] = spawn("resume", n + 2, path)  # the snapshot again, the same minute
    if n <= optuna_max:
        journal = str(d / f"o{n}.log")
        spawn("optuna", n, journal)
        row["optuna"] = spawn("optuna", n, journal)
    row["log_mb"] = (os.path.getsize(path) + os.path.getsize(path + ".tail")) / 2**20
    row["snap_mb"] = sum(f.stat().st_size for f in Path(snaps).iterdir()) / 2**20
    return row


def _s(v: float) -> str:
    return f"{v * 1e3:.0f} ms" if v < 1 else f"{v:.2f} s"


def report(rows: list[dict[str, Any]], markdown: bool) -> None:
    head = ["trials", "batched µs/trial (CPU)", "run peak RSS", "resume CPU (wall)",
            "no snapshot CPU", "RSS at resume / peak", "close CPU",
            "optuna journal load CPU"]  # fmt: skip
    body = []
    for r in rows:
        res = min((r["resume"], r["resume2"]), key=lambda x: x["cpu"])
        opt = r.get("optuna")
        body.append([
            f"{r['n']:,}", f"{r['run']['us']:.0f}", f"{r['run']['peak']:.0f} MB",
            f"{_s(res['cpu'])} ({_s(res['wall'])})", _s(r["full"]["cpu"]),
            f"{res['rss']:.0f} / {res['peak']:.0f} MB", _s(res["close_cpu"]),
            _s(opt["cpu"]) if opt else "-",
        ])  # fmt: skip
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for b in body:
            print("| " + " | ".join(b) + " |")
    else:
        widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
        for line in [head, *body]:
            print("  ".join(x.rjust(w) for x, w in zip(line, widths)))
    print()
    for r in rows:
        res = min((r["resume"], r["resume2"]), key=lambda x: x["cpu"])
        checks = [("batched µs/trial", r["run"]["us"], TARGETS["run_us"])]
        if r["n"] == 100_000:
            checks.append(("resume 100k s", res["cpu"], TARGETS["resume_100k"]))
        if r["n"] == 1_000_000:
            checks += [("resume 1M s", res["cpu"], TARGETS["resume_1m"]),
                       ("run RSS MB", r["run"]["peak"], TARGETS["rss_mb"]),
                       ("reopen RSS MB", res["peak"], TARGETS["rss_mb"])]  # fmt: skip
        for name, v, target in checks:
            print(f"{r['n']:>9,}  {name:<17} {v:10.3f}  target <= {target:g}  "
                  f"{'ok' if v <= target else 'MISS'}")  # fmt: skip
    print(
        "\nCPU seconds of a fresh child process after its imports; RSS includes the imports "
        f"(~{rows[0]['run']['base']:.0f} MB). Log and snapshot sizes (MB): "
        + ", ".join(f"{r['n']:,}: {r['log_mb']:.0f} + {r['snap_mb']:.0f}" for r in rows)
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]), sys.argv[4])))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--optuna-max", type=int, default=100_000)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="hpostore-scale-") as d:
        for n in (int(s) for s in args.sizes.split(",")):
            rows.append(measure(n, Path(d), args.optuna_max))
            print(f"  {n:,} done: {json.dumps(rows[-1])}", file=sys.stderr)
    report(rows, args.markdown)


if __name__ == "__main__":
    main()
