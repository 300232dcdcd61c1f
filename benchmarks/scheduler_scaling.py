"""Seconds per simulated study for 1k/10k/100k results per built-in multi-fidelity scheduler.

Every scheduler decision is O(log n) in the number of trials (issue 12), so the time per result
should stay flat from 1k to 100k. Two measurements per scheduler and size:

- ``scheduler``: the scheduler driven by hand (it folds its own calls into a private
  ``StudyState``, as the tuner's fold would): ``suggest_trial``, one ``on_report`` per epoch of
  a Branin learning curve (``branin(x) + 10 / epoch``, until a stop), ``on_result``. This is
  the scheduler's own cost, with the fold's.
- ``study`` (``--study``): the same through ``HPOTuner`` on 4 simulated workers
  (:class:`~hpostore.simulation.SimulatedExecutor`, a batched in-memory DuckDB store), which
  adds the tuner's and the store's cost per event.

- ``optuna`` (``--optuna-max``, default 1000): Optuna's pruner of the same kind on the same
  simulated trials, for sizes up to ``--optuna-max`` only (its pruners read every trial of the
  study at each ``should_prune``, so a study costs O(n²) for SH and Hyperband: 0.6 / 3.3 s
  of CPU at 1k here, 4.7 / 24 s at 3k, so ~1 and ~5 minutes at 10k; median ~1 s per 1k): ``SuccessiveHalvingPruner`` (asynchronous SH, the peer of ``asha``; it stops,
  ASHA's promotion type here promotes), ``HyperbandPruner`` and ``MedianPruner`` (3 startup
  trials, no warm-up), ``RandomSampler``, in-memory storage; a study of ask, one
  ``report`` + ``should_prune`` per epoch, tell (PRUNED when pruned). Optuna has no
  synchronous SH: ``sh`` has no peer. Its figure includes its storage: compare it with
  ``study``.

Target: each 100k-result study ≤ 30 s (a ``target`` line per scheduler, ok/MISS on the CPU
seconds of the ``study`` run, or of the by-hand run without ``--study``). CPU seconds are
printed beside wall seconds: on a shared machine they are the figure to compare across sizes.
Usage::

    python benchmarks/scheduler_scaling.py [--sizes 1000 10000 100000] [--study] [--optuna-max N]

It loads the machine for a while (a minute or two for the default sizes): run it on a quiet one.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

from hpostore import (
    ASHAScheduler,
    HPOTuner,
    HyperbandScheduler,
    MedianStoppingScheduler,
    RandomSearcher,
    SuccessiveHalvingScheduler,
    open_store,
)
from hpostore.schedulers import Action, TrialScheduler
from hpostore.simulation import Branin, SimulatedExecutor

BENCH = Branin(max_resource=9)
R_MAX = BENCH.max_resource

SCHEDULERS: dict[str, Callable[[int], TrialScheduler]] = {
    "asha": lambda seed: ASHAScheduler(
        RandomSearcher(BENCH.config_space, seed=seed), eta=3, r_min=1, r_max=R_MAX
    ),
    "hyperband": lambda seed: HyperbandScheduler(
        RandomSearcher(BENCH.config_space, seed=seed), eta=3, r_min=1, r_max=R_MAX
    ),
    "median": lambda seed: MedianStoppingScheduler(
        RandomSearcher(BENCH.config_space, seed=seed),
        grace_resource=1,
        min_trials=3,
        resource_attr="max_epochs",
        r_max=R_MAX,
    ),
    "sh": lambda seed: SuccessiveHalvingScheduler(
        RandomSearcher(BENCH.config_space, seed=seed), eta=3, r_min=1, r_max=R_MAX
    ),
}


def branin(x1: float, x2: float) -> float:
    """Branin's function in plain Python (the by-hand runs time the scheduler, not numpy)."""
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def by_hand(scheduler: TrialScheduler, n: int) -> tuple[float, float]:
    """Wall and CPU seconds to drive ``scheduler`` sequentially to ``n`` results (reports
    every epoch)."""
    t0, c0 = time.perf_counter(), time.process_time()
    done, next_trial = 0, 0
    reached: dict[int, int] = {}  # epochs a paused trial already ran
    while done < n:
        suggestion = scheduler.suggest_trial(next_trial)
        if suggestion is None:
            raise RuntimeError(f"{type(scheduler).__name__} waits with nothing running")
        if suggestion.resume:
            assert suggestion.promoted_from is not None
            trial = suggestion.promoted_from
        else:
            trial, next_trial = next_trial, next_trial + 1
        config = dict(suggestion.config)
        epochs = math.ceil(config.get("max_epochs", R_MAX))
        final = branin(config["x1"], config["x2"])
        error = math.nan
        for epoch in range(reached.get(trial, 0) + 1, epochs + 1):
            error = final + 10.0 / epoch
            if scheduler.on_report(trial, epoch, error).action is Action.STOP:
                break
        reached[trial] = epochs
        scheduler.on_result(trial, error, None)
        done += 1
    return time.perf_counter() - t0, time.process_time() - c0


def study(make: Callable[[int], TrialScheduler], n: int) -> float:
    """CPU seconds for an ``HPOTuner`` study of ``n`` results on 4 simulated workers."""
    with open_store(":memory:", durability="batched") as store:
        tuner = HPOTuner(make(0), BENCH.curve_objective(), store=store, study="scaling",
                         executor=SimulatedExecutor(4), verbose=False)  # fmt: skip
        c0 = time.process_time()
        tuner.run(n)
        return time.process_time() - c0


#: Optuna's pruner of the same kind as each scheduler (none for synchronous SH)
OPTUNA_PEERS = {"asha": "SuccessiveHalvingPruner", "hyperband": "HyperbandPruner",
                "median": "MedianPruner"}  # fmt: skip
TARGET_S = 30.0  # a 100k-result study (issue 12)


def optuna_study(name: str, n: int) -> tuple[float, float]:
    """Wall and CPU seconds of an Optuna study of ``n`` simulated trials under the pruner of
    the same kind as scheduler ``name`` (:data:`OPTUNA_PEERS`), the same curves as
    :func:`by_hand`."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    make = {
        "asha": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
        "hyperband": lambda: optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=R_MAX, reduction_factor=3
        ),
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
    }
    (lo1, hi1), (lo2, hi2) = (BENCH.config_space[k].support() for k in ("x1", "x2"))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), pruner=make[name]())
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        trial = study.ask()
        final = branin(trial.suggest_float("x1", lo1, hi1), trial.suggest_float("x2", lo2, hi2))
        state, error = optuna.trial.TrialState.COMPLETE, math.nan
        for epoch in range(1, R_MAX + 1):
            error = final + 10.0 / epoch
            trial.report(error, epoch)
            if trial.should_prune():
                state = optuna.trial.TrialState.PRUNED
                break
        study.tell(trial, error if state is optuna.trial.TrialState.COMPLETE else None, state=state)
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--schedulers", nargs="+", default=sorted(SCHEDULERS))
    parser.add_argument("--study", action="store_true", help="also time full tuner studies")
    parser.add_argument("--optuna-max", type=int, default=1000,
                        help="largest size for Optuna's pruners (O(n^2) a study; 0: none)")  # fmt: skip
    args = parser.parse_args()
    header = f"{'scheduler':<10} {'results':>8} {'wall s':>8} {'cpu s':>8} {'cpu µs/result':>14}"
    if args.study:
        header += f" {'study cpu s':>12} {'µs/result':>10}"
    print(header)
    largest: dict[str, float] = {}
    for name in args.schedulers:
        for n in args.sizes:
            wall, cpu = by_hand(SCHEDULERS[name](0), n)
            line = f"{name:<10} {n:>8} {wall:>8.2f} {cpu:>8.2f} {cpu / n * 1e6:>14.0f}"
            largest[name] = cpu
            if args.study:
                total = study(SCHEDULERS[name], n)
                line += f" {total:>12.2f} {total / n * 1e6:>10.0f}"
                largest[name] = total
            print(line, flush=True)
        peer = OPTUNA_PEERS.get(name)
        for n in (n for n in args.sizes if peer and n <= args.optuna_max):
            wall, cpu = optuna_study(name, n)
            print(f"{'  optuna':<10} {n:>8} {wall:>8.2f} {cpu:>8.2f} {cpu / n * 1e6:>14.0f}  "
                  f"{peer}, a whole in-memory study", flush=True)  # fmt: skip
    n_max = max(args.sizes)
    what = "study" if args.study else "by-hand"
    for name, cpu in largest.items():
        verdict = "ok" if cpu <= TARGET_S else "MISS"
        if n_max < 100_000:
            verdict = f"(not checked: largest size {n_max:,})"
        print(f"target {name:<10} 100k-result study <= {TARGET_S:g} s: {what} CPU {cpu:.2f} s "
              f"at {n_max:,} {verdict}")  # fmt: skip


if __name__ == "__main__":
    main()
