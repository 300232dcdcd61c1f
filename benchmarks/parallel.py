"""Asynchronous tuner: throughput with 1, 2, 4 workers, per-trial and per-report overhead.

Objectives sleep 0.2 s, so on 2 cores sleeping trials scale past the core count. Figures:

- throughput with n_workers = 1 (sequential loop), 2, 4 (local process pool), as trials per
  0.2 s (target: >= 0.9 x n_workers), measured on the log's own clock: from the first
  ``start`` to the last ``evaluate`` (the pool's start-up is reported apart);
- per-trial overhead in ms, added by the process pool and by Ray (local, one worker each)
  over the sequential loop: (time per trial) - 0.2 s;
- per-report cost in ms (manager queue vs Ray actor): an objective that reports 20 times.

    python benchmarks/parallel.py [--trials 24] [--no-ray]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor

from scipy import stats

from hpostore import BasicScheduler, HPOTuner, RandomSearcher

SLEEP_S = 0.2
N_REPORTS = 20
SPACE = {"x": stats.uniform(0, 1)}


def noop(x: float) -> float:
    return x


def sleeping(x: float) -> float:
    time.sleep(SLEEP_S)
    return x


def reporting(x: float, report: Callable[[float, float], bool]) -> float:
    for epoch in range(1, N_REPORTS + 1):
        report(epoch, x)
    return x


def measure(
    objective: Callable[..., float],
    n_trials: int,
    n_workers: int = 1,
    executor: Executor | None = None,
) -> dict[str, float]:
    t0 = time.monotonic()
    tuner = HPOTuner(
        BasicScheduler(RandomSearcher(SPACE, seed=0)),
        objective,
        verbose=False,
        n_workers=n_workers,
        executor=executor,
    )
    tuner.run(n_trials)
    wall = time.monotonic() - t0
    events = tuner.store.events("default").to_pylist()
    tuner.close()
    k = max(n_workers, int(getattr(executor, "max_workers", 1) or 1))
    ends = sorted(e["elapsed"] for e in events if e["kind"] == "evaluate")
    first = min(e["elapsed"] for e in events if e["kind"] == "start")
    return {
        "wall_s": wall,
        "per_trial_s": (ends[-1] - first) / n_trials,
        # steady state: results between the k-th and the last (worker start-up excluded)
        "per_0.2s": (len(ends) - k) / (ends[-1] - ends[k - 1]) * SLEEP_S,
    }


def pool(n: int) -> ProcessPoolExecutor:
    from hpostore.executors import local_pool

    return local_pool(n)


def warm(executor: Executor, n: int) -> float:
    """Start the workers (each imports hpostore once) before timing; returns the seconds."""
    from hpostore.tuner import run_trial

    t0 = time.monotonic()
    for f in [executor.submit(run_trial, sleeping, {"x": 0.0}, None) for _ in range(n)]:
        f.result()
    return time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=24, help="trials per worker (default: 24)")
    p.add_argument("--no-ray", action="store_true", help="skip the Ray figures")
    args = p.parse_args(argv)
    print(f"{os.cpu_count()} CPUs, python {sys.version.split()[0]}, sleep {SLEEP_S} s per trial")

    rows = [("sequential (n_workers=1)", 1, measure(sleeping, args.trials))]
    startup: list[str] = []
    for n in (2, 4):
        with pool(n) as ex:
            startup.append(f"{n} workers {warm(ex, n):.2f} s")
            rows.append(
                (f"process pool n_workers={n}", n, measure(sleeping, args.trials * n, n, ex))
            )
    cold = measure(sleeping, args.trials * 2, 2)  # HPOTuner(n_workers=2) making its own pool
    overhead: list[tuple[str, float, float, float]] = []

    def row(name: str, executor: Executor | None) -> None:
        slept = measure(sleeping, args.trials, executor=executor)["per_trial_s"] - SLEEP_S
        bare = measure(noop, args.trials * 4, executor=executor)["per_trial_s"]
        reports = measure(reporting, args.trials, executor=executor)["per_trial_s"]
        overhead.append((name, slept, bare, (reports - bare) / N_REPORTS))

    row("sequential", None)
    with pool(1) as ex:
        warm(ex, 1)
        row("process pool (1 worker)", ex)
    if not args.no_ray:
        try:
            import ray
        except ImportError:
            print("(Ray is not installed: pip install 'hpostore[ray]' for its figures)")
        else:
            from hpostore.executors import RayExecutor

            here = os.path.dirname(os.path.abspath(__file__))
            t0 = time.monotonic()
            ray.init(
                num_cpus=4,
                include_dashboard=False,
                log_to_driver=False,
                runtime_env={"env_vars": {"PYTHONPATH": here}},
            )
            startup.append(f"ray.init {time.monotonic() - t0:.1f} s")
            try:
                startup.append(f"4 Ray workers {warm(RayExecutor(4), 4):.2f} s")
                row("Ray, local (1 worker)", RayExecutor(1))
                for n in (2, 4):
                    rows.append(
                        (
                            f"Ray n_workers={n}",
                            n,
                            measure(sleeping, args.trials * n, executor=RayExecutor(n)),
                        )
                    )
            finally:
                ray.shutdown()

    print("\nthroughput (trials per 0.2 s at steady state; target >= 0.9 x n_workers)")
    for name, n, r in rows:
        print(f"  {name:30} {r['per_0.2s']:6.2f}   (target {0.9 * n:.1f})")
    print(f"  start-up: {', '.join(startup)}")
    print(
        f"  HPOTuner(n_workers=2), own pool: {args.trials * 2} trials in {cold['wall_s']:.2f} s wall"
    )
    print("\nper-trial overhead (ms): over the 0.2 s sleep; of a no-op trial; cost per report")
    base = overhead[0][2]
    for name, slept, bare, per_report in overhead:
        extra = "" if name == "sequential" else f" (+{(bare - base) * 1e3:.1f} vs sequential)"
        print(
            f"  {name:26} sleep-0.2 s trial +{slept * 1e3:6.1f}   no-op trial {bare * 1e3:6.1f}"
            f"{extra:26}   report {per_report * 1e3:5.2f}"
        )
    return 0


if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
