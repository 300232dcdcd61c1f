"""Search quality on the simulator: each searcher x FIFO, with Optuna's samplers as peers.

A script, not a test::

    .venv/bin/python benchmarks/search_quality.py                 # 10 seeds, 50 evaluations
    .venv/bin/python benchmarks/search_quality.py --seeds 3 --quick

Every hpostore study runs the real tuner on a synthetic benchmark of :mod:`hpostore.simulation`
(Branin, Hartmann-6; 81 epochs at full fidelity) over ``--workers`` simulated workers
(:class:`~hpostore.simulation.SimulatedExecutor`, default 1), so ``elapsed`` is simulated
training time and the figures are the same on every machine. All studies go to one Parquet store (batched
durability), named ``<benchmark>-<method>-s<seed>``; the figures are computed from that log
with the :mod:`analysis` package, and the any-time plots are drawn by
:func:`analysis.plots.anytime_plot`.

Optuna's TPE and random samplers run through a small ask/tell adapter searcher (below), so
they are logged like the others and get the same objective, budget and clock. Their state is
not rebuilt on resume (the adapter is re-executed), which a benchmark never needs.

With ``--asha random,bo,tpe`` those searchers also run under issue 4's ``ASHAScheduler``
(promotion type, eta 3, 1..81 epochs) for the simulated time of FIFO's budget
(``--budget`` x 81 epochs x 1 s, the mean epoch time); their incumbent may be a partial
(low-fidelity) result, which the fidelity bias makes worse, not better, on these functions. An
entry ``searcher+scheduler`` picks another scheduler: ``random+asha-stopping`` (ASHA, stopping
type) or ``tpe+hyperband`` (Hyperband over ASHA brackets, stopping type). On the simulated
workers a trial reports every epoch, a stopped trial ends at the report it was stopped after,
and a promoted trial resumes from the epoch it paused at (as a checkpointing objective would),
so each scheduler pays for exactly the epochs it runs. :func:`run_hpostore` runs one
(searcher x scheduler, seed) study.

Optuna with pruning (``--pruned``, by default both): ``optuna-tpe+hyperband`` is Optuna's
``TPESampler`` with its ``HyperbandPruner``, ``optuna-random+sh`` its ``RandomSampler`` with its
``SuccessiveHalvingPruner`` (asynchronous SH, i.e. ASHA of the stopping type). TPE goes with
Hyperband as Optuna's tutorial recommends ("Which sampler and pruner should be used?");
random goes with SH rather than the tutorial's median pruner because random + asynchronous SH
is ASHA itself (Li et al.), the peer of hpostore's ``random+asha`` and ``random+asha-stopping``
(``tpe+hyperband`` is the peer of the other). Both pruners use hpostore's ASHA settings:
reduction factor 3, resource 1..81 epochs (``HyperbandPruner``'s brackets follow from those). Each Optuna trial trains epoch by epoch, calls
``trial.report(error, epoch)`` and ``trial.should_prune()`` after each and stops when pruned; the
clock is charged the benchmark's ``cost(config, epochs)`` of the epochs actually run, and the
study runs for the same simulated time and seeds as the hpostore ASHA runs (through the same
tuner and log, so the same tables). A pruned trial is told to Optuna as PRUNED and logged with
its last (partial) error, as a stopped hpostore trial is.

Figures printed per benchmark, as medians over seeds:
- normalized regret ``(best - optimum) / (median random error - optimum)`` after 10, 25, 50
  evaluations and after 1000, 2000, 4000 s of simulated time (0 = optimum found, 1 = as good
  as a typical random config);
- simulated time (and evaluations) until the normalized regret is <= ``--target``.
Then: BO's cost per suggestion at 200 observations, and random search of 10,000 trials on 4
simulated workers (wall-clock, including the log).

Then the multi-objective case (``--mo-only`` runs just it, ``--mo-budget 0`` skips it): ZDT1 in
``--mo-dims`` dimensions (default 5) on [0, 1]: f1 = x0, g = 1 + 9 mean(x1..), f2 = g (1 -
sqrt(f1 / g)), both minimized; the Pareto front is f2 = 1 - sqrt(f1) (x1.. = 0). Printed per
method, as medians over the seeds: the hypervolume of the results after 20, 40, 60
evaluations (:func:`analysis.hypervolume_of`, reference point (1.1, 11)) and the regret, the
front's hypervolume (11 - 1 + 2/3 + 1.1 = 11.767) minus the one reached (0 = the whole front).
Methods: hpostore's ``RandomSearcher`` and ``MultiObjectiveTPESearcher`` (random
scalarization) under the real tuner (in-memory log), beside Optuna's ``NSGAIISampler`` and
multi-objective ``TPESampler`` (ask/tell through ``study.optimize``), same seeds and budget.

BLAS threads: GP matrices here are at most 200 x 200, where OpenBLAS threads only add
contention (on 2 shared cores they make BO 3-10x slower). The script sets
``OPENBLAS_NUM_THREADS=1`` unless it is already set, and prints the value used.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported (see above)

import argparse  # noqa: E402
import inspect  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Mapping  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from analysis import anytime, hypervolume_of, time_to_target  # noqa: E402
from analysis.plots import anytime_plot  # noqa: E402
from hpostore import (  # noqa: E402
    BasicScheduler,
    BayesianSearcher,
    EventLog,
    EvolutionarySearcher,
    HPOScheduler,
    HPOSearcher,
    HPOTuner,
    MultiObjectiveTPESearcher,
    RandomSearcher,
    TPESearcher,
    open_store,
)
from hpostore.simulation import (  # noqa: E402
    Branin,
    Hartmann6,
    SimulatedClock,
    SimulatedExecutor,
    SyntheticBenchmark,
)

CHECKPOINTS = (10, 25, 50)  # evaluations
TIMES_S = (1000.0, 2000.0, 4000.0)  # simulated seconds (a full-fidelity evaluation: 40-120 s)


class OptunaSearcher(HPOSearcher):
    """An Optuna sampler behind the textbook searcher API (ask in sample, tell in update).

    With ``pruner`` (``"hyperband"`` or ``"sh"``, reduction factor 3 from 1 epoch to
    ``max_resource``) an objective reports each epoch through :meth:`report`, which says when
    Optuna prunes the trial; :meth:`update` then tells Optuna the trial was PRUNED.
    """

    def __init__(
        self,
        config_space: Mapping[str, Any],
        sampler: str = "tpe",
        seed: int | None = None,
        pruner: str | None = None,
        max_resource: int | None = None,
    ) -> None:
        import optuna

        self.save_hyperparameters()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        make = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}
        pruners: dict[str | None, Callable[[], optuna.pruners.BasePruner]] = {
            None: optuna.pruners.NopPruner,
            "hyperband": lambda: optuna.pruners.HyperbandPruner(
                min_resource=1, max_resource=max_resource or "auto", reduction_factor=3
            ),
            "sh": lambda: optuna.pruners.SuccessiveHalvingPruner(
                min_resource=1, reduction_factor=3
            ),
        }
        self._study = optuna.create_study(
            sampler=make[sampler](seed=seed), pruner=pruners[pruner]()
        )
        self._distributions: dict[str, optuna.distributions.BaseDistribution] = {
            name: optuna.distributions.FloatDistribution(
                float(d.support()[0]), float(d.support()[1])
            )
            for name, d in config_space.items()
        }
        self._asked: dict[str, Any] = {}
        self._pruned: set[int] = set()

    @staticmethod
    def _key(config: Mapping[str, Any]) -> str:
        return repr(sorted((k, v) for k, v in config.items() if k != "max_epochs"))

    def sample_configuration(self) -> dict[str, Any]:
        trial = self._study.ask(self._distributions)
        self._asked[self._key(trial.params)] = trial
        return dict(trial.params)

    def report(self, config: Mapping[str, Any], epoch: int, error: float) -> bool:
        """``trial.report(error, epoch)``; True when Optuna's pruner prunes the trial now."""
        trial = self._asked[self._key(config)]
        trial.report(error, epoch)
        if trial.should_prune():
            self._pruned.add(trial.number)
            return True
        return False

    def update(self, config: dict[str, Any], error: float, additional_info: Any = None) -> None:
        import optuna

        trial = self._asked.pop(self._key(config))
        if trial.number in self._pruned:
            self._study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            self._study.tell(trial, error)


#: searchers by name (``optuna-*``: Optuna's samplers through the adapter, without pruning)
METHODS: dict[str, Callable[[dict[str, Any], int], HPOSearcher]] = {
    "random": lambda space, seed: RandomSearcher(space, seed=seed),
    "bo": lambda space, seed: BayesianSearcher(space, seed=seed),
    "tpe": lambda space, seed: TPESearcher(space, seed=seed),
    "evolution": lambda space, seed: EvolutionarySearcher(space, seed=seed),
    "optuna-tpe": lambda space, seed: OptunaSearcher(space, "tpe", seed=seed),
    "optuna-random": lambda space, seed: OptunaSearcher(space, "random", seed=seed),
}


def _schedulers() -> dict[str, Callable[[HPOSearcher, SyntheticBenchmark], HPOScheduler]]:
    # issue 4's schedulers, imported late: not in every version of hpostore
    from hpostore.schedulers import ASHAScheduler, HyperbandScheduler

    return {
        "fifo": lambda searcher, bench: BasicScheduler(searcher),
        "asha": lambda searcher, bench: ASHAScheduler(
            searcher, eta=3, r_min=1, r_max=bench.max_resource
        ),
        "asha-stopping": lambda searcher, bench: ASHAScheduler(
            searcher, eta=3, r_min=1, r_max=bench.max_resource, type="stopping"
        ),
        "hyperband": lambda searcher, bench: HyperbandScheduler(
            searcher, eta=3, r_min=1, r_max=bench.max_resource, type="stopping"
        ),
    }


SCHEDULERS = ("fifo", "asha", "asha-stopping", "hyperband")
#: Optuna with a pruner: name -> (sampler, pruner)
PRUNED: dict[str, tuple[str, str]] = {
    "optuna-tpe+hyperband": ("tpe", "hyperband"),
    "optuna-random+sh": ("random", "sh"),
}


def time_budget_s(bench: SyntheticBenchmark, n: int) -> float:
    """The simulated time of ``n`` full-fidelity evaluations on average (1 s per epoch)."""
    return n * bench.max_resource * 1.0


def label(searcher: str, scheduler: str) -> str:
    """The method's name in study names and tables: ``tpe``, ``random+asha``, ..."""
    return searcher if scheduler == "fifo" else f"{searcher}+{scheduler}"


def epochwise_objective(
    bench: SyntheticBenchmark,
    clock: SimulatedClock,
    prune: Callable[[Mapping[str, Any], int, float], bool] | None = None,
) -> Callable[..., float]:
    """An objective ``f(**config, max_epochs=None, report)`` that trains epoch by epoch: after
    each it charges ``clock`` that epoch's share of ``bench.cost(config, epochs)``, calls
    ``report(epoch, error)`` and, with ``prune``, ``prune(config, epoch, error)``; it ends when
    either says so (or at ``max_epochs``) and returns the last error. The clock is charged
    ``cost(config, epochs run)`` in all."""

    def objective(**kwargs: Any) -> float:
        report = kwargs.pop("report")
        max_epochs = kwargs.pop("max_epochs", None)
        last = bench.max_resource if max_epochs is None else math.ceil(max_epochs)
        charged, error = 0.0, math.nan
        for epoch in range(1, last + 1):
            cost = bench.cost(kwargs, epoch)
            clock.advance(cost - charged)
            charged = cost
            error = bench.error(kwargs, epoch)
            stop = report(epoch, error)
            if (prune is not None and prune(kwargs, epoch, error)) or stop:
                break
        return error

    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter(p, keyword) for p in bench.config_space]
    params.append(inspect.Parameter("max_epochs", keyword, default=None))
    params.append(inspect.Parameter("report", keyword))
    objective.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    objective.__qualname__ = objective.__name__ = bench.name
    return objective


def run_hpostore(
    store: EventLog,
    bench: SyntheticBenchmark,
    searcher: str,
    scheduler: str,
    seed: int,
    n: int,
    workers: int = 1,
) -> float:
    """One study, ``<bench>-<label(searcher, scheduler)>-s<seed>``: searcher ``searcher`` (a
    :data:`METHODS` name) under ``scheduler`` (one of :data:`SCHEDULERS`) on ``workers``
    simulated workers (:class:`~hpostore.simulation.SimulatedExecutor`: trials report every
    epoch, a stopped trial ends at its report, a promoted trial resumes where it paused), FIFO
    for ``n`` evaluations, the others for :func:`time_budget_s` of simulated time; returns its
    wall-clock seconds."""
    chosen = METHODS[searcher](bench.config_space, seed)
    sched = _schedulers()[scheduler](chosen, bench)
    # FIFO reads no reports: skip them (5x faster, the same study otherwise)
    executor = SimulatedExecutor(workers, reports=scheduler != "fifo")
    study = f"{bench.name}-{label(searcher, scheduler)}-s{seed}"
    tuner = HPOTuner(sched, bench.curve_objective(), store=store, study=study,
                     executor=executor, verbose=False)  # fmt: skip
    t0 = time.perf_counter()
    if scheduler == "fifo":
        tuner.run(n)
    else:
        tuner.run(100_000, time_budget_s=time_budget_s(bench, n))
    return time.perf_counter() - t0


def run_optuna_pruned(
    store: EventLog, bench: SyntheticBenchmark, peer: str, seed: int, n: int
) -> float:
    """One study ``<bench>-<peer>-s<seed>`` of an Optuna sampler with its pruner (:data:`PRUNED`)
    for the simulated time of the hpostore ASHA runs; returns its wall-clock seconds."""
    sampler, pruner = PRUNED[peer]
    clock = SimulatedClock()
    searcher = OptunaSearcher(bench.config_space, sampler, seed, pruner, bench.max_resource)
    objective = epochwise_objective(bench, clock, prune=searcher.report)
    study = f"{bench.name}-{peer}-s{seed}"
    tuner = HPOTuner(BasicScheduler(searcher), objective, store=store, study=study, clock=clock,
                     verbose=False)  # fmt: skip
    t0 = time.perf_counter()
    tuner.run(100_000, time_budget_s=time_budget_s(bench, n))
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
    print(f"  {'normalized regret after':<46}{'simulated time to regret <= ' + str(target):>33}")
    print(f"  {'method':<22}{head}   {'median':>9} {'evals':>5} {'reached':>7}")
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
        print(f"  {method:<22}{cells}   {when} {len(reached):>4}/{len(mine)}")


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


def random_throughput(path: str, n: int, workers: int = 4) -> float:
    """Wall-clock seconds of ``n`` random-search trials on ``workers`` simulated workers
    (Branin, 81 epochs each), log included."""
    bench = Branin()
    store = open_store(path, durability="batched")
    t0 = time.perf_counter()
    tuner = HPOTuner(BasicScheduler(RandomSearcher(bench.config_space, seed=0)),
                     bench.curve_objective(), store=store, study="random-10k",
                     executor=SimulatedExecutor(workers, reports=False), verbose=False)  # fmt: skip
    tuner.run(n)
    store.close()
    return time.perf_counter() - t0


# --- the multi-objective case: ZDT1, hypervolume after N evaluations -------------------------
MO_REFERENCE = (1.1, 11.0)
MO_OPTIMUM = 11.0 - 1.0 + 2.0 / 3.0 + 0.1 * 11.0  # the front's hypervolume for MO_REFERENCE
MO_CHECKPOINTS = (20, 40, 60)  # evaluations
MO_METHODS = ("random", "mo-tpe", "optuna-nsga2", "optuna-tpe")


def zdt1(x: list[float]) -> tuple[float, float]:
    """ZDT1's two objectives at ``x`` in [0, 1]^d (both minimized; front: f2 = 1 - sqrt(f1))."""
    g = 1.0 + 9.0 * float(np.mean(x[1:]))
    return x[0], g * (1.0 - math.sqrt(x[0] / g))


def run_mo_hpostore(method: str, dims: int, seed: int, budget: int) -> list[tuple[float, float]]:
    """(f1, f2) of each trial, in trial order, of an hpostore study (in-memory log)."""
    space = {f"x{i}": stats.uniform(0, 1) for i in range(dims)}
    make: dict[str, Callable[[], HPOSearcher]] = {
        "random": lambda: RandomSearcher(space, seed=seed),
        "mo-tpe": lambda: MultiObjectiveTPESearcher(space, seed=seed),
    }

    def objective(**config: float) -> dict[str, float]:
        f1, f2 = zdt1([config[f"x{i}"] for i in range(dims)])
        return {"f1": f1, "f2": f2}

    tuner = HPOTuner(BasicScheduler(make[method]()), objective, metric=["f1", "f2"],
                     mode=["min", "min"], verbose=False)  # fmt: skip
    tuner.run(number_of_trials=budget)
    trials = [t.metrics(1.0, "f1") for t in tuner.state.trials.values()]
    tuner.close()
    return [(m["f1"], m["f2"]) for m in trials]


def run_mo_optuna(method: str, dims: int, seed: int, budget: int) -> list[tuple[float, float]]:
    """(f1, f2) of each trial of an Optuna study (``optuna-nsga2`` or ``optuna-tpe``)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = (
        optuna.samplers.NSGAIISampler(seed=seed)
        if method == "optuna-nsga2"
        else optuna.samplers.TPESampler(seed=seed)
    )
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(
        lambda trial: zdt1([trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(dims)]),
        n_trials=budget,
    )
    return [(t.values[0], t.values[1]) for t in study.trials]


def multi_objective(seeds: int, budget: int, dims: int) -> None:
    """Run and print the multi-objective case: every :data:`MO_METHODS` entry x ``seeds``."""
    checkpoints = [c for c in MO_CHECKPOINTS if c <= budget] or [budget]
    print(f"\nmulti-objective: ZDT1 in {dims} dims, reference {MO_REFERENCE}, front hypervolume "
          f"{MO_OPTIMUM:.3f}; median over {seeds} seeds")  # fmt: skip
    evs = "".join(f"{str(c) + ' ev':>8}" for c in checkpoints)
    width = 8 * len(checkpoints)
    print(f"  {'':<14}{'hypervolume after':>{width}}   {'regret (front - reached) after':>{width}}")
    print(f"  {'method':<14}{evs}   {evs}{'s/study':>9}")
    for method in MO_METHODS:
        volumes: dict[int, list[float]] = {c: [] for c in checkpoints}
        seconds = []
        for seed in range(seeds):
            t0 = time.perf_counter()
            fn = run_mo_optuna if method.startswith("optuna") else run_mo_hpostore
            points = fn(method, dims, seed, budget)
            seconds.append(time.perf_counter() - t0)
            for c in checkpoints:
                volumes[c].append(hypervolume_of(points[:c], MO_REFERENCE))
        reached = "".join(f"{np.median(volumes[c]):8.3f}" for c in checkpoints)
        regret = "".join(f"{MO_OPTIMUM - np.median(volumes[c]):8.3f}" for c in checkpoints)
        print(f"  {method:<14}{reached}   {regret}{np.median(seconds):9.2f}")


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
        "the same simulated time; their 'evals' count partial evaluations too. An entry "
        "searcher+scheduler picks another scheduler: asha-stopping or hyperband (stopping type), "
        "e.g. random+asha-stopping,tpe+hyperband",
    )
    parser.add_argument(
        "--pruned",
        default=",".join(PRUNED),
        help="Optuna samplers with pruners, run for the same simulated time as the ASHA runs "
        f"(any of {', '.join(PRUNED)}; '' for none)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="simulated workers for hpostore's studies (default 1; Optuna's peers run on 1)",
    )
    parser.add_argument("--quick", action="store_true", help="3 seeds, 1,000 random trials")
    parser.add_argument(
        "--mo-budget", type=int, default=max(MO_CHECKPOINTS),
        help="evaluations of the multi-objective case (ZDT1); 0 skips it",
    )  # fmt: skip
    parser.add_argument("--mo-dims", type=int, default=5, help="dimensions of ZDT1")
    parser.add_argument(
        "--mo-only", action="store_true", help="run only the multi-objective case (ZDT1)"
    )
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.random_trials = min(args.seeds, 3), 1000
    if args.mo_only:
        multi_objective(args.seeds, args.mo_budget, args.mo_dims)
        return
    out = Path(args.out or tempfile.mkdtemp(prefix="search_quality-"))
    out.mkdir(parents=True, exist_ok=True)
    source = str(out / "runs") + "/"
    shutil.rmtree(source, ignore_errors=True)
    methods = args.methods.split(",")
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}; log: {source}")

    benches: list[SyntheticBenchmark] = [Branin(), Hartmann6()]
    store = open_store(source, durability="batched")
    wall: dict[str, list[float]] = {}
    # (name in the tables, searcher or Optuna peer, scheduler; "" for an Optuna peer)
    runs: list[tuple[str, str, str]] = [(m, m, "fifo") for m in methods]
    for entry in (m for m in args.asha.split(",") if m):
        searcher, _, scheduler = entry.partition("+")
        scheduler = scheduler or "asha"
        if searcher not in METHODS or scheduler not in SCHEDULERS[1:]:
            parser.error(f"--asha: {entry!r} is not searcher[+{'|'.join(SCHEDULERS[1:])}]")
        if searcher.startswith("optuna"):  # one ask/tell per trial: no promotions, own pruners
            parser.error(f"--asha: {entry!r}: Optuna's samplers run with pruners via --pruned")
        runs.append((label(searcher, scheduler), searcher, scheduler))
    for peer in (p for p in args.pruned.split(",") if p):
        if peer not in PRUNED:
            parser.error(f"--pruned: {peer!r} is not one of {', '.join(PRUNED)}")
        runs.append((peer, peer, ""))
    for bench in benches:
        for name, searcher, scheduler in runs:
            for seed in range(args.seeds):
                if scheduler:
                    seconds = run_hpostore(
                        store, bench, searcher, scheduler, seed, args.budget, args.workers
                    )
                else:
                    seconds = run_optuna_pruned(store, bench, searcher, seed, args.budget)
                wall.setdefault(name, []).append(seconds)
    store.close()
    for bench in benches:
        names = [name for name, _, _ in runs]
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
    for log, path in (("in-memory", ":memory:"), ("Parquet, batched", str(out / "rnd") + "/")):
        seconds = random_throughput(path, args.random_trials)
        print(f"random search, {args.random_trials} simulated trials on 4 simulated workers, "
              f"{log} log: {seconds:.2f} s ({args.random_trials / seconds:,.0f} trials/s; "
              "target 10,000 in <= 5 s)")  # fmt: skip
    if args.mo_budget > 0:
        multi_objective(args.seeds, args.mo_budget, args.mo_dims)
    print(f"\nplots: {', '.join(str(p) for p in sorted(out.glob('anytime_*.png')))}")


if __name__ == "__main__":
    main()
