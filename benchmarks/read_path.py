"""Read-path benchmark: SQL views and any-time analysis over a 1,000,000-event log.

    python benchmarks/read_path.py                 # 1M events, 20 studies (~250k trials)
    python benchmarks/read_path.py --events 100000 --optuna-trials 20000

Builds a synthetic log (20 studies = 4 algorithms x 5 seeds; per trial the events suggest,
start, evaluate, update), writes it to a DuckDB file and to a Parquet directory (zstd), and
times, on each: creating the views, the whole ``trials`` view, the whole ``anytime`` view,
and ``analysis.compare`` over all studies. Then the same questions (trials table, any-time
curve per study) through Optuna's ``study.trials_dataframe()`` + pandas on the same number
of trials. Prints figures and ok/MISS beside the targets (any-time <= 0.3 s, trials <= 1 s,
on 1M events); asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path and its name would shadow the
# `analysis` package: take the folder off, and make sure the repository root is on it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

import analysis  # noqa: E402
from hpostore.log.events import DUCKDB_DDL, SCHEMA  # noqa: E402
from hpostore.store.parquet import ParquetStore  # noqa: E402

ALGORITHMS = [("RandomSearcher", "BasicScheduler"), ("RandomSearcher", "ASHA"),
              ("BayesSearcher", "BasicScheduler"), ("BayesSearcher", "ASHA")]  # fmt: skip
SEEDS = 5
KINDS = ("suggest", "start", "evaluate", "update")


def build_log(n_events: int) -> pa.Table:
    """A log of about ``n_events`` events over 20 studies, with the events schema."""
    studies = [(a, s) for a in ALGORITHMS for s in range(SEEDS)]
    per_study = max(1, (n_events // len(studies) - 3) // len(KINDS))
    tables = []
    t0 = 1_790_000_000_000_000  # µs since the epoch
    for i, ((searcher, scheduler), seed) in enumerate(studies):
        rng = np.random.default_rng([i, seed])
        name = f"{searcher}-{scheduler}-seed{seed}"
        lr = 10 ** rng.uniform(-4, 0, per_study)
        units = rng.integers(16, 512, per_study)
        error = np.abs(np.log10(lr) + 2) * 0.1 + rng.exponential(0.2, per_study)
        runtime = rng.uniform(0.5, 3.0, per_study)
        finish = np.cumsum(runtime)
        configs = [json.dumps({"lr": float(a), "units": int(b)}) for a, b in zip(lr, units)]
        spec = {"format_version": 1, "seed": seed, "metric": "error", "mode": "min",
                "scheduler": {"class": f"bench.{scheduler}", "args": {"searcher": {"class": f"bench.{searcher}"}}}}  # fmt: skip
        n = per_study * len(KINDS) + 3
        kind = np.empty(n, dtype=object)
        kind[0], kind[1], kind[-1] = "study", "session", "end"
        body = np.tile(np.array(KINDS, dtype=object), per_study)
        kind[2:-1] = body
        trial = np.full(n, None, dtype=object)
        trial[2:-1] = np.repeat(np.arange(per_study), len(KINDS))
        elapsed = np.zeros(n)
        start = finish - runtime
        elapsed[2:-1] = np.column_stack([start, start, finish, finish]).ravel()
        elapsed[-1] = finish[-1]
        is_eval = np.zeros(n, dtype=bool)
        is_eval[2:-1] = body == "evaluate"
        config = np.full(n, None, dtype=object)
        config[2:-1][body == "suggest"] = configs
        err = np.full(n, None, dtype=object)
        err[is_eval] = error
        rt = np.full(n, None, dtype=object)
        rt[is_eval] = runtime
        worker = np.full(n, None, dtype=object)
        worker[2:-1][body == "start"] = "w0"
        payload = np.full(n, None, dtype=object)
        payload[0] = json.dumps(spec)
        tables.append(
            pa.table(
                {
                    "study": pa.array([name] * n, pa.string()),
                    "seq": pa.array(np.arange(1, n + 1), pa.int64()),
                    "ts": pa.array(t0 + (elapsed * 1e6).astype(np.int64), pa.int64()).cast(
                        pa.timestamp("us", tz="UTC")
                    ),
                    "elapsed": pa.array(elapsed, pa.float64()),
                    "session": pa.array(["s0"] * n, pa.string()),
                    "kind": pa.array(kind, pa.string()),
                    "trial": pa.array(trial, pa.int64()),
                    "config": pa.array(config, pa.string()),
                    "resource": pa.nulls(n, pa.float64()),
                    "error": pa.array(err, pa.float64()),
                    "runtime": pa.array(rt, pa.float64()),
                    "worker": pa.array(worker, pa.string()),
                    "payload": pa.array(payload, pa.string()),
                },
                schema=SCHEMA,
            )
        )
    return pa.concat_tables(tables)


def best_of(fn: Callable[[], Any], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def optuna_side(n_studies: int, trials_per_study: int) -> dict[str, float]:
    import optuna
    from optuna.distributions import FloatDistribution, IntDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.InMemoryStorage()
    dists = {"lr": FloatDistribution(1e-4, 1, log=True), "units": IntDistribution(16, 511)}
    t = time.perf_counter()
    studies = []
    for i in range(n_studies):
        rng = np.random.default_rng(i)
        study = optuna.create_study(study_name=f"s{i}", storage=storage)
        lr = 10 ** rng.uniform(-4, 0, trials_per_study)
        units = rng.integers(16, 512, trials_per_study)
        values = np.abs(np.log10(lr) + 2) * 0.1 + rng.exponential(0.2, trials_per_study)
        study.add_trials(
            [
                optuna.trial.create_trial(
                    params={"lr": float(a), "units": int(b)}, distributions=dists, value=float(v)
                )
                for a, b, v in zip(lr, units, values)
            ]
        )
        studies.append(study)
    build_s = time.perf_counter() - t

    def trials() -> list[Any]:
        return [s.trials_dataframe() for s in studies]

    def anytime() -> list[Any]:
        out = []
        for s in studies:
            df = s.trials_dataframe(attrs=("number", "value", "datetime_complete", "state"))
            df = df[df["state"] == "COMPLETE"].sort_values("number")
            best = df["value"].cummin()
            out.append(df.loc[best < best.shift(fill_value=np.inf), ["number", "value"]])
        return out

    return {"build_s": build_s, "trials_s": best_of(trials, 2), "anytime_s": best_of(anytime, 2)}


#: targets on the 1M-event log (seconds), printed beside the figures
TARGETS_S = {"trials view, all rows (Arrow)": 1.0, "anytime view, all rows (Arrow)": 0.3}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--optuna-trials",
        type=int,
        default=None,
        help="total Optuna trials (default: as many as the log)",
    )
    parser.add_argument("--keep", default=None, help="write the files here and keep them")
    args = parser.parse_args()

    workdir = Path(args.keep or tempfile.mkdtemp(prefix="hpostore-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    table = build_log(args.events)
    n_trials = table.filter(pc.equal(table.column("kind"), "suggest")).num_rows
    print(
        f"log: {table.num_rows:,} events, {n_trials:,} trials, 20 studies (built in {time.perf_counter() - t:.1f} s)"
    )

    db = workdir / "bench.duckdb"
    for f in (db, Path(f"{db}.tail"), Path(f"{db}.lock")):
        f.unlink(missing_ok=True)
    con = duckdb.connect(os.fspath(db))
    con.execute(DUCKDB_DDL)
    con.register("t", table)
    con.execute("INSERT INTO events SELECT * FROM t")
    con.close()
    folder = workdir / "bench-parquet"
    shutil.rmtree(folder, ignore_errors=True)
    store = ParquetStore(os.fspath(folder) + "/")
    store.import_events(table)
    store.close()
    print(
        f"file size: DuckDB {size_of(db) / 2**20:.1f} MiB, Parquet (zstd) {size_of(folder) / 2**20:.1f} MiB"
    )

    print(f"{'question':<40} {'DuckDB file':>12} {'Parquet dir':>12}  target (both)")
    for label, run in (
        ("open + create views", lambda src: analysis.views(src)),
        ("trials view, all rows (Arrow)", lambda c: c.sql("SELECT * FROM trials").to_arrow_table()),
        (
            "anytime view, all rows (Arrow)",
            lambda c: c.sql("SELECT * FROM anytime").to_arrow_table(),
        ),
        ("compare(), 20 studies x 200 points", lambda c: analysis.compare(c, grid=200)),
        ("time_to_target(0.05)", lambda c: analysis.time_to_target(c, 0.05)),
    ):
        cells = []
        for source in (db, folder):
            if label.startswith("open"):
                cells.append(best_of(lambda s=source, f=run: f(s)))
            else:
                c = analysis.views(source)
                cells.append(best_of(lambda c=c, f=run: f(c)))
        target = TARGETS_S.get(label)
        mark = ""
        if target is not None:
            at = "" if args.events >= 1_000_000 else f" (for 1M events; this is {args.events:,})"
            mark = f"  <= {target:g} s {'ok' if max(cells) <= target else 'MISS'}{at}"
        print(f"{label:<40} {cells[0]:>10.3f} s {cells[1]:>10.3f} s{mark}")

    total = args.optuna_trials or n_trials
    o = optuna_side(20, max(1, total // 20))
    print(f"Optuna {optuna_version()} InMemoryStorage, {20 * max(1, total // 20):,} trials in 20 studies "
          f"(add_trials took {o['build_s']:.1f} s):")  # fmt: skip
    print(f"{'  trials_dataframe() for all studies':<40} {o['trials_s']:>10.3f} s")
    print(f"{'  any-time: trials_dataframe + cummin':<40} {o['anytime_s']:>10.3f} s")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


def optuna_version() -> str:
    import optuna

    return str(optuna.__version__)


if __name__ == "__main__":
    main()
