"""The multi-objective case of search_quality.py: ZDT1 (known front) beside Optuna's samplers.

A script, not a test (``search_quality.py`` runs it after the single-objective cases;
``--mo-only`` runs just this)::

    .venv/bin/python benchmarks/search_quality_mo.py --seeds 3 --budget 60

ZDT1 in ``--dims`` dimensions (default 5) on [0, 1]: f1 = x0, g = 1 + 9 mean(x1..), f2 = g (1 -
sqrt(f1 / g)), both minimized; the Pareto front is f2 = 1 - sqrt(f1) (x1.. = 0). The figure is
the hypervolume of the results after N evaluations with the reference point (1.1, 11), whose
largest value (the whole front) is 11 - 1 + 2/3 + 1.1 = 11.767; printed as the median over seeds
of that optimum minus the hypervolume reached (0 = the whole front). Methods: hpostore's
``RandomSearcher`` and ``MultiObjectiveTPESearcher`` (random scalarization) under the real
tuner (in-memory log), Optuna's ``NSGAIISampler`` and multi-objective ``TPESampler``. The
hypervolume of every method is computed by :func:`analysis.hypervolume_of`.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import numpy as np
from scipy import stats

from analysis import hypervolume_of
from hpostore import BasicScheduler, HPOTuner, MultiObjectiveTPESearcher, RandomSearcher

REFERENCE = (1.1, 11.0)
OPTIMUM = 11.0 - 1.0 + 2.0 / 3.0 + 0.1 * 11.0  # the front's hypervolume for REFERENCE
CHECKPOINTS = (20, 40, 60)


def zdt1(x: list[float]) -> tuple[float, float]:
    g = 1.0 + 9.0 * float(np.mean(x[1:]))
    return x[0], g * (1.0 - math.sqrt(x[0] / g))


def _hv_after(points: list[tuple[float, float]], n: int) -> float:
    return hypervolume_of(points[:n], REFERENCE)


def run_hpostore(method: str, dims: int, seed: int, budget: int) -> list[tuple[float, float]]:
    space = {f"x{i}": stats.uniform(0, 1) for i in range(dims)}
    make: dict[str, Callable[[], object]] = {
        "random": lambda: RandomSearcher(space, seed=seed),
        "mo-tpe": lambda: MultiObjectiveTPESearcher(space, seed=seed),
    }

    def objective(**config: float) -> dict[str, float]:
        f1, f2 = zdt1([config[f"x{i}"] for i in range(dims)])
        return {"f1": f1, "f2": f2}

    tuner = HPOTuner(BasicScheduler(make[method]()), objective, metric=["f1", "f2"],  # type: ignore[arg-type]
                     mode=["min", "min"], verbose=False)  # fmt: skip
    tuner.run(number_of_trials=budget)
    out = [(t.metrics()["f1"], t.metrics(1.0, "f1")["f2"]) for t in tuner.state.trials.values()]
    tuner.close()
    return out


def run_optuna(method: str, dims: int, seed: int, budget: int) -> list[tuple[float, float]]:
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


METHODS = ("random", "mo-tpe", "optuna-nsga2", "optuna-tpe")


def run(seeds: int, budget: int, dims: int) -> None:
    checkpoints = [c for c in CHECKPOINTS if c <= budget] or [budget]
    print(f"\nmulti-objective: ZDT1 in {dims} dims, reference {REFERENCE}, front hypervolume "
          f"{OPTIMUM:.3f}; hypervolume regret (optimum - reached), median over {seeds} seeds")  # fmt: skip
    print(f"  {'method':<14}" + "".join(f"{'after ' + str(c):>11}" for c in checkpoints)
          + f"{'s/study':>9}")  # fmt: skip
    for method in METHODS:
        regrets: dict[int, list[float]] = {c: [] for c in checkpoints}
        seconds = []
        for seed in range(seeds):
            t0 = time.perf_counter()
            fn = run_optuna if method.startswith("optuna") else run_hpostore
            points = fn(method, dims, seed, budget)
            seconds.append(time.perf_counter() - t0)
            for c in checkpoints:
                regrets[c].append(OPTIMUM - _hv_after(points, c))
        print(f"  {method:<14}" + "".join(f"{np.median(regrets[c]):>11.3f}" for c in checkpoints)
              + f"{np.median(seconds):>9.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--dims", type=int, default=5)
    args = parser.parse_args()
    run(args.seeds, args.budget, args.dims)


if __name__ == "__main__":
    main()
