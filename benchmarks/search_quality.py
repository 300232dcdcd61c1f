"""Search quality on the simulator: each searcher x FIFO, with Optuna's samplers as peers.

A script, not a test::

    .venv/bin/python benchmarks/search_quality.py                 # 10 seeds, 50 evaluations
    .venv/bin/python benchmarks/search_quality.py --seeds 3 --quick

Every study runs the real tuner (``BasicScheduler``, i.e. FIFO) on a synthetic benchmark of
:mod:`hpostore.simulation` (Branin, Hartmann-6 at full fidelity) with a
:class:`~hpostore.simulation.SimulatedClock`, so ``elapsed`` is simulated training time and
the figures are the same on every machine. All studies go to one Parquet store (batched
durability), named ``<benchmark>-<method>-s<seed>``; the figures are computed from that log
with the :mod:`analysis` package, and the any-time plots are drawn by
:func:`analysis.plots.anytime_plot`.

Optuna's TPE and random samplers run through a small ask/tell adapter searcher (below), so
they are logged like the others and get the same objective, budget and clock. Their state is
not rebuilt on resume (the adapter is re-executed), which a benchmark never needs.

With ``--asha random,bo,tpe`` those searchers also run under issue 4's ``ASHAScheduler``
(promotion type, eta 3, 1..81 epochs) for the simulated time of FIFO's budget; their
incumbent may be a partial (low-fidelity) result, which the fidelity bias makes worse, not
better, on these functions.

Figures printed per benchmark, as medians over seeds:
- normalized regret ``(best - optimum) / (median random error - optimum)`` after 10, 25, 50
  evaluations and after 1000, 2000, 4000 s of simulated time (0 = optimum found, 1 = as good
  as a typical random config);
- simulated time (and evaluations) until the normalized regret is <= ``--target``.
Then: BO's cost per suggestion at 200 observations, and sequential random search of 10,000
trials on the simulator (wall-clock, including the log).

BLAS threads: GP matrices here are at most 200 x 200, where OpenBLAS threads only add
contention (on 2 shared cores they make BO 3-10x slower). The script sets
``OPENBLAS_NUM_THREADS=1`` unless it is already set, and prints the value used.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported (see above)

import argparse  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Mapping  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from analysis import anytime, time_to_target  # noqa: E402
from analysis.plots import anytime_plot  # noqa: E402
from hpostore import (  # noqa: E402
    BasicScheduler,
    BayesianSearcher,
    EventLog,
    EvolutionarySearcher,
    HPOSearcher,
    HPOTuner,
    RandomSearcher,
    TPESearcher,
    open_store,
)
from hpostore.simulation import Branin, Hartmann6, SimulatedClock, SyntheticBenchmark  # noqa: E402

CHECKPOINTS = (10, 25, 50)  # evaluations
TIMES_S = (1000.0, 2000.0, 4000.0)  # simulated seconds (a full-fidelity evaluation: 40-120 s)


class OptunaSearcher(HPOSearcher):
    """An Optuna sampler behind the textbook searcher API (ask in sample, tell in update)."""

    def __init__(
        self, config_space: Mapping[str, Any], sampler: str = "tpe", seed: int | None = None
    ) -> None:
        import optuna

        self.save_hyperparameters()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        make = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}
        self._study = optuna.create_study(sampler=make[sampler](seed=seed))
        self._distributions: dict[str, optuna.distributions.BaseDistribution] = {
            name: optuna.distributions.FloatDistribution(
                float(d.support()[0]), float(d.support()[1])
            )
            for name, d in config_space.items()
        }
        self._asked: dict[str, Any] = {}

    def sample_configuration(self) -> dict[str, Any]:
        trial = self._study.ask(self._distributions)
        self._asked[repr(sorted(trial.params.items()))] = trial
        return dict(trial.params)

    def update(self, config: dict[str, Any], error: float, additional_info: Any = None) -> None:
        trial = self._asked.pop(repr(sorted(config.items())))
        self._study.tell(trial, error)


METHODS: dict[str, Callable[[dict[str, Any], int], HPOSearcher]] = {
    "random": lambda space, seed: RandomSearcher(space, seed=seed),
    "bo": lambda space, seed: BayesianSearcher(space, seed=seed),
    "tpe": lambda space, seed: TPESearcher(space, seed=seed),
    "evolution": lambda space, seed: EvolutionarySearcher(space, seed=seed),
    "optuna-tpe": lambda space, seed: OptunaSearcher(space, "tpe", seed=seed),
    "optuna-random": lambda space, seed: OptunaSearcher(space, "random", seed=seed),
}


def run_study(
    store: EventLog, bench: SyntheticBenchmark, method: str, seed: int, n: int, asha: bool = False
) -> float:
    """One study on the simulator (FIFO with ``n`` evaluations, or ASHA for the simulated time
    FIFO's ``n`` full evaluations take on average); returns its wall-clock seconds."""
    clock = SimulatedClock()
    searcher = METHODS[method](bench.config_space, seed)
    if asha:
        from hpostore.schedulers import ASHAScheduler  # issue 4's, not in every version

        scheduler: Any = ASHAScheduler(searcher, eta=3, r_min=1, r_max=bench.max_resource)
        study = f"{bench.name}-{method}+asha-s{seed}"
    else:
        scheduler, study = BasicScheduler(searcher), f"{bench.name}-{method}-s{seed}"
    tuner = HPOTuner(scheduler, bench.objective(clock), store=store, study=study, clock=clock,
                     verbose=False)  # fmt: skip
    t0 = time.perf_counter()
    if asha:
        tuner.run(100_000, time_budget_s=n * bench.max_resource * 1.0)  # 1 s per epoch on average
    else:
        tuner.run(n)
    return time.perf_counter() - t0


def method_of(study: str) -> str:
    """``branin-optuna-tpe-s3`` -> ``optuna-tpe``."""
    return study.split("-", 1)[1].rsplit("-s", 1)[0]


def report(source: str, bench: SyntheticBenchmark, studies: list[str], target: float) -> None:
    table = anytime(source, studies).to_pylist()
    by_evals: dict[str, dict[int, list[float]]] = {}
    by_time: dict[str, dict[float, list[float]]] = {}
    for study in studies:
        rows = [r for r in table if r["study"] == study]
        method = method_of(study)
        per_n = by_evals.setdefault(method, {c: [] for c in CHECKPOINTS})
        per_t = by_time.setdefault(method, {t: [] for t in TIMES_S})
        for c in CHECKPOINTS:
            best = [r["best_error"] for r in rows if r["n_finished"] <= c]
            per_n[c].append(bench.normalized_regret(best[-1]) if best else float("nan"))
        for t in TIMES_S:
            best = [r["best_error"] for r in rows if r["elapsed"] <= t]
            per_t[t].append(bench.normalized_regret(best[-1]) if best else float("nan"))
    target_error = bench.optimum + target * (bench.reference_error - bench.optimum)
    hits = time_to_target(source, target_error, studies, group_by=method_of).to_pylist()
    print(
        f"\n{bench.name}: optimum {bench.optimum:.6g}, median random error "
        f"{bench.reference_error:.4g}; median over {len(studies) // len(by_evals)} seeds"
    )
    head = " ".join(f"{str(c) + ' ev':>7}" for c in CHECKPOINTS)
    head += " " + " ".join(f"{f'{t:.0f} s':>7}" for t in TIMES_S)
    print(f"  {'normalized regret after':<38}{'simulated time to regret <= ' + str(target):>33}")
    print(f"  {'method':<14}{head}   {'median':>9} {'evals':>5} {'reached':>7}")
    for method, per_n in by_evals.items():
        cells = " ".join(f"{np.nanmedian(per_n[c]):7.4f}" for c in CHECKPOINTS)
        cells += " " + " ".join(f"{np.nanmedian(by_time[method][t]):7.4f}" for t in TIMES_S)
        mine = [h for h in hits if h["group"] == method]
        reached = [h for h in mine if h["reached"]]
        # the (upper) median over all seeds, a miss counting as infinitely late
        times = sorted(h["elapsed"] if h["reached"] else np.inf for h in mine)
        evals = sorted(h["n_finished"] if h["reached"] else np.inf for h in mine)
        median_t, median_n = times[len(times) // 2], evals[len(evals) // 2]
        when = f"{'never':>9} {'':>5}" if np.isinf(median_t) else f"{median_t:9.0f} {median_n:5.0f}"
        print(f"  {method:<14}{cells}   {when} {len(reached):>4}/{len(mine)}")


def bo_cost_at(n_obs: int, repeats: int = 10) -> tuple[float, float, float]:
    """Seconds per BO suggestion with ``n_obs`` results (Hartmann-6, 6 dims): median wall,
    max wall, median CPU time of this process (what a busy shared machine does not inflate)."""
    bench = Hartmann6()
    searcher = BayesianSearcher(bench.config_space, seed=0)
    configs = [searcher._random(0, k) for k in range(n_obs)]
    searcher.restore_results(n_obs, [(c, bench.error(c), None) for c in configs])
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        config = searcher.sample_configuration()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        searcher.update(config, bench.error(config))
    return float(np.median(walls)), float(max(walls)), float(np.median(cpus))


def random_throughput(path: str, n: int) -> float:
    """Wall-clock seconds of ``n`` sequential random-search trials on the simulator, log included."""
    bench, clock = Branin(), SimulatedClock()
    store = open_store(path, durability="batched")
    t0 = time.perf_counter()
    tuner = HPOTuner(BasicScheduler(RandomSearcher(bench.config_space, seed=0)),
                     bench.objective(clock), store=store, study="random-10k", clock=clock,
                     verbose=False)  # fmt: skip
    tuner.run(n)
    store.close()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=max(CHECKPOINTS), help="evaluations")
    parser.add_argument("--target", type=float, default=0.01, help="normalized regret target")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--out", default=None, help="directory for the store and plots")
    parser.add_argument("--random-trials", type=int, default=10_000)
    parser.add_argument(
        "--asha",
        default="",
        help="also run these searchers (e.g. random,bo,tpe) under ASHA (eta 3, 1..81 epochs) for "
        "the same simulated time; their 'evals' count partial evaluations too",
    )
    parser.add_argument("--quick", action="store_true", help="3 seeds, 1,000 random trials")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.random_trials = min(args.seeds, 3), 1000
    out = Path(args.out or tempfile.mkdtemp(prefix="search_quality-"))
    out.mkdir(parents=True, exist_ok=True)
    source = str(out / "runs") + "/"
    shutil.rmtree(source, ignore_errors=True)
    methods = args.methods.split(",")
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}; log: {source}")

    benches: list[SyntheticBenchmark] = [Branin(), Hartmann6()]
    store = open_store(source, durability="batched")
    wall: dict[str, list[float]] = {}
    asha_methods = [m for m in args.asha.split(",") if m] if args.asha else []
    for bench in benches:
        for method in methods:
            for seed in range(args.seeds):
                wall.setdefault(method, []).append(
                    run_study(store, bench, method, seed, args.budget)
                )
        for method in asha_methods:
            for seed in range(args.seeds):
                wall.setdefault(f"{method}+asha", []).append(
                    run_study(store, bench, method, seed, args.budget, asha=True)
                )
    store.close()
    for bench in benches:
        names = methods + [f"{m}+asha" for m in asha_methods]
        studies = [f"{bench.name}-{m}-s{s}" for m in names for s in range(args.seeds)]
        report(source, bench, studies, args.target)
        log_y = bench.optimum > 0  # Branin's errors span 0.4 .. 300
        anytime_plot(source, studies, group_by=method_of, x="n_finished", log_y=log_y,
                     title=f"{bench.name}: incumbent error, median over {args.seeds} seeds",
                     path=out / f"anytime_{bench.name}.png")  # fmt: skip
        anytime_plot(source, studies, group_by=method_of, x="elapsed", log_x=True, log_y=log_y,
                     title=f"{bench.name}: incumbent error vs simulated time",
                     path=out / f"anytime_{bench.name}_time.png")  # fmt: skip
    print("\nwall-clock per study (s, median):")
    print("  " + ", ".join(f"{m} {np.median(t):.2f}" for m, t in wall.items()))

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for n_obs in (50, 200):
        median, worst, cpu = bo_cost_at(n_obs)
        print(f"BO cost per suggestion at {n_obs} observations (6 dims): median {median * 1e3:.1f} "
              f"ms wall (max {worst * 1e3:.1f}), {cpu * 1e3:.1f} ms CPU; target at 200: <= 50 ms")  # fmt: skip
    for label, path in (("in-memory", ":memory:"), ("Parquet, batched", str(out / "rnd") + "/")):
        seconds = random_throughput(path, args.random_trials)
        print(f"random search, {args.random_trials} sequential simulated trials, {label} log: "
              f"{seconds:.2f} s ({args.random_trials / seconds:,.0f} trials/s; target 10,000 "
              "in <= 5 s)")  # fmt: skip
    print(f"\nplots: {', '.join(str(p) for p in sorted(out.glob('anytime_*.png')))}")


if __name__ == "__main__":
    main()
