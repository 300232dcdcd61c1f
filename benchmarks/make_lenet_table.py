"""A LeNet / Fashion-MNIST tabulated benchmark for the simulator (long: not run in CI).

Any logged study with per-epoch ``report`` events becomes a table (``hpostore.tabular``): each
logged configuration with its validation-error curve and the seconds of each epoch, stored as
Parquet. Schedulers are then replayed on real curves in simulated time, in seconds instead of
hours. Three ways in:

    # tabulate a study already logged (e.g. random search of benchmarks/lenet_asha.py)
    python benchmarks/make_lenet_table.py --from-store lenet_asha.duckdb --study bench-random \\
        --out lenet_table.parquet

    # run a random sweep of LeNet with per-epoch reports (resumable), then tabulate it
    python benchmarks/make_lenet_table.py --data-dir ../shared/data/fashion-mnist \\
        --trials 60 --epochs 10 --workers 2 --store lenet_table.duckdb --out lenet_table.parquet

    # summarise an existing table
    python benchmarks/make_lenet_table.py --table lenet_table.parquet

Each prints a summary (configs, epochs, best and median final error, epoch seconds). With
``--replay``, random search and ASHA (promotion type, eta=3) are then replayed on the table
with a simulated clock for ``--replay-budget`` full trainings' worth of simulated time, over
``--replay-seeds`` seeds, and the median incumbent error at a few simulated times is printed.

The sweep trains with ``lenet_objective`` of ``examples/asha_lenet.py`` (imported from the
file): LeNet, SGD, the validation error reported after every epoch by the Keras callback.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from hpostore import (
    ASHAScheduler,
    BasicScheduler,
    HPOStoreError,
    HPOTuner,
    RandomSearcher,
    open_store,
)
from hpostore.simulation import SimulatedExecutor
from hpostore.tabular import TabularBenchmark

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

ETA = 3
TIME_FRACTIONS = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)


def asha_example() -> ModuleType:
    """examples/asha_lenet.py as a module (examples/ is not a package), loaded once.

    Loading it sets the CPU-only TensorFlow environment and loads the LeNet example it uses;
    Keras itself is imported only when the objective first runs."""
    name = "asha_lenet_example"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, EXAMPLES / "asha_lenet.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def lenet_objective(
    learning_rate: float,
    batch_size: int,
    max_epochs: int,
    report: Callable[[float, float], bool],
) -> float:
    """``lenet_objective`` of examples/asha_lenet.py: train LeNet, report every epoch.

    Defined here, at module level, so that worker processes find it (in this script)."""
    objective: Callable[..., float] = asha_example().lenet_objective
    return objective(learning_rate, batch_size, max_epochs, report)


def run_sweep(args: argparse.Namespace) -> None:
    """A random sweep of LeNet on Fashion-MNIST, every trial ``--epochs`` epochs with a report
    per epoch, logged to ``--store`` (running the same command again resumes it)."""
    example = asha_example()
    lenet = example.lenet
    if args.data_dir:
        os.environ["FASHION_MNIST_DIR"] = os.fspath(Path(args.data_dir).resolve())
    if args.train_subset:
        os.environ["ASHA_LENET_TRAIN_SUBSET"] = str(args.train_subset)
    try:  # fail fast on bad data, before any worker starts
        lenet.load_fashion_mnist(os.environ.get("FASHION_MNIST_DIR") or None)
    except RuntimeError as exc:
        raise SystemExit(f"error: {exc}") from None
    space = {**lenet.CONFIG_SPACE, "max_epochs": args.epochs}
    initial = {**lenet.INITIAL_CONFIG, "max_epochs": args.epochs}
    searcher = RandomSearcher(space, initial_config=initial, seed=args.seed)
    t0 = time.monotonic()
    with open_store(args.store) as store:
        tuner = HPOTuner(
            BasicScheduler(searcher),
            lenet_objective,
            store=store,
            study=args.study,
            verbose=False,
            n_workers=args.workers,
        )
        tuner.run(args.trials)
        print(
            f"sweep {args.study!r} in {args.store}: {tuner.state.n_finished} trials of "
            f"{args.epochs} epochs ({time.monotonic() - t0:.0f} s this run), "
            f"incumbent error {tuner.incumbent_error} ({tuner.incumbent})"
        )


def summary(table: TabularBenchmark) -> str:
    """Configs, epochs, best/median final error and epoch seconds of ``table``."""
    full = [r for r in table.rows if r.epochs == table.max_resource]
    seconds = [s for r in table.rows for s in r.seconds]
    first = [r.seconds[0] for r in table.rows]
    later = [s for r in table.rows for s in r.seconds[1:]]
    lines = [
        f"table {table.name!r}: {len(table.rows)} configs ({len(table.rows) - len(full)} partial), "
        f"{table.max_resource} epochs, hyperparameters {list(table.space.domains)}",
        f"  final error: best {table.optimum:.4f}, median {table.reference_error:.4f} "
        f"(over {len(full)} full curves)",
        f"  epoch seconds: mean {statistics.fmean(seconds):.2f} (first epoch "
        f"{statistics.fmean(first):.2f}"
        + (f", later epochs {statistics.fmean(later):.2f})" if later else ")"),
        f"  a full training costs {statistics.fmean(sum(r.seconds) for r in full):.1f} s on average",
    ]
    best = min(full, key=lambda r: r.errors[-1])
    lines.append(f"  best config {best.config}: errors {[round(e, 4) for e in best.errors]}")
    return "\n".join(lines)


def incumbent_at(tuner: HPOTuner, t: float) -> float | None:
    """The incumbent error of ``tuner``'s study at simulated study time ``t``."""
    best = None
    for elapsed, error in zip(tuner.cumulative_runtime, tuner.incumbent_trajectory):
        if elapsed <= t:
            best = error
    return best


def replay(
    table: TabularBenchmark, budget_trainings: float, seeds: int, store: str, workers: int = 2
) -> None:
    """Random search vs ASHA on ``table`` in simulated time, on ``workers`` simulated workers
    (a promoted trial resumes where it paused, as the checkpointing LeNet objective does);
    prints median incumbent errors."""
    full_cost = statistics.fmean(
        sum(r.seconds) for r in table.rows if r.epochs == table.max_resource
    )
    budget = budget_trainings * full_cost
    methods: dict[str, Callable[[int], Any]] = {
        "random": lambda seed: BasicScheduler(RandomSearcher(table.config_space, seed=seed)),
        "asha": lambda seed: ASHAScheduler(
            RandomSearcher(table.config_space, seed=seed),
            eta=ETA,
            r_min=1,
            r_max=table.max_resource,
            type="promotion",
        ),
    }
    results: dict[str, list[list[float | None]]] = {m: [] for m in methods}
    trials: dict[str, list[int]] = {m: [] for m in methods}
    t0 = time.monotonic()
    with open_store(store, durability="batched") as log:
        for method, make in methods.items():
            for seed in range(seeds):
                tuner = HPOTuner(make(seed), table.curve_objective(), store=log,
                                 executor=SimulatedExecutor(workers),
                                 study=f"replay-{table.name}-{method}-{seed}", verbose=False)  # fmt: skip
                tuner.run(10**9, time_budget_s=budget)
                results[method].append([incumbent_at(tuner, f * budget) for f in TIME_FRACTIONS])
                trials[method].append(tuner.state.n_finished)
    print(
        f"replay on {table.name!r}: budget {budget:.0f} simulated s (= {budget_trainings:g} full "
        f"trainings), {seeds} seeds each, {time.monotonic() - t0:.1f} s of wall clock"
    )
    print("  median incumbent error at a fraction of the budget (any fidelity, as the tuner logs)")
    header = "".join(f"{f'{f:.3g}':>9}" for f in TIME_FRACTIONS)
    print(f"  {'':8}{header}   trials")
    for method in methods:
        cells = []
        for k in range(len(TIME_FRACTIONS)):
            values = [v for r in results[method] if (v := r[k]) is not None]
            cells.append(
                f"{statistics.median(values):9.4f}" if len(values) == seeds else f"{'-':>9}"
            )
        print(f"  {method:8}{''.join(cells)}   {statistics.median(trials[method]):.0f}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = p.add_argument_group("source (default: run a sweep)")
    src.add_argument("--from-store", default=None, help="tabulate a study of this event log")
    src.add_argument("--table", default=None, help="load this Parquet table instead")
    p.add_argument("--study", default="lenet-table", help="study to tabulate (or to run)")
    p.add_argument("--out", default=None, help="write the table here (Parquet)")
    p.add_argument("--max-resource", type=int, default=None, help="epochs of a full curve")
    p.add_argument("--keep-partial", action="store_true", help="keep shorter (stopped) curves")
    sweep = p.add_argument_group("sweep")
    sweep.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX files")
    sweep.add_argument("--trials", type=int, default=60, help="configurations (default: 60)")
    sweep.add_argument("--epochs", type=int, default=10, help="epochs per trial (default: 10)")
    sweep.add_argument(
        "--workers", type=int, default=2, help="trials at a time, real or replayed (default: 2)"
    )
    sweep.add_argument("--train-subset", type=int, default=None, help="first N training images")
    sweep.add_argument("--store", default="lenet_table.duckdb", help="event log of the sweep")
    sweep.add_argument("--seed", type=int, default=0, help="searcher seed")
    rep = p.add_argument_group("replay")
    rep.add_argument("--replay", action="store_true", help="replay random search vs ASHA")
    rep.add_argument("--replay-budget", type=float, default=30.0, help="in full trainings")
    rep.add_argument("--replay-seeds", type=int, default=5, help="seeds per method")
    rep.add_argument("--replay-store", default=":memory:", help="event log of the replays")
    args = p.parse_args(argv)
    if args.from_store and args.table:
        p.error("give --from-store or --table, not both")
    if not args.table and not args.out:
        p.error("--out is needed to write the table (Parquet)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.table:
            table = TabularBenchmark.from_parquet(args.table)
        else:
            source = args.from_store
            if source is None:
                run_sweep(args)
                source = args.store
            table = TabularBenchmark.from_study(
                source,
                args.study,
                max_resource=args.max_resource,
                keep_partial=args.keep_partial,
            )
        if args.out:
            table.to_parquet(args.out)
            print(f"wrote {args.out}")
        print(summary(table))
        if args.replay:
            replay(table, args.replay_budget, args.replay_seeds, args.replay_store, args.workers)
    except HPOStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
