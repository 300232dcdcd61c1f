"""Objectives for the parallel tests (importable by worker processes) and a child tuner.

``python parallel_child.py STORE STUDY N MARKER_DIR`` runs an asynchronous ASHA (stopping type)
study with 2 worker processes; tests/test_parallel.py SIGKILLs it while trials run and runs the
same command again to resume. Each objective call creates ``MARKER_DIR/started-<x>-<pid>`` so
the test knows when trials are in flight.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from scipy import stats

from hpostore import HPOTuner, RandomSearcher
from hpostore.schedulers import ASHAScheduler

SPACE = {"x": stats.uniform(0, 1)}
CRASH_SEED = 11


def curve(x: float, epoch: int) -> float:
    return (x - 0.3) ** 2 + 1.0 / epoch


def sleepy(x: float, sleep_s: float = 0.1) -> float:
    """A trial that takes ``sleep_s`` seconds (throughput and dispatch tests)."""
    time.sleep(sleep_s)
    return (x - 0.3) ** 2


def dies(x: float) -> float:
    """Kills its worker process (a segfaulting extension, the OOM killer)."""
    if x > 0.5:
        os._exit(3)
    time.sleep(0.5)
    return x


def exits(x: float) -> float:
    """Raises SystemExit in its worker for x > 0.5 (a script's sys.exit inside the objective)."""
    if x > 0.5:
        raise SystemExit(4)
    return x


def flaky_worker(x: float) -> float:
    """Kills its worker process 20 ms after it starts for x > 0.7, else sleeps a little."""
    time.sleep(0.02)
    if x > 0.7:
        os._exit(5)
    time.sleep(0.05)
    return x


def reporting(
    x: float, max_epochs: int, report: Callable[[float, float], bool], epoch_s: float = 0.05
) -> float:
    """One report per epoch; ends at the first report after a stop decision."""
    error = 1.0
    for epoch in range(1, int(max_epochs) + 1):
        time.sleep(epoch_s)
        error = curve(x, epoch)
        if report(epoch, error):
            break
    return error


def marked(x: float, max_epochs: int, report: Callable[[float, float], bool]) -> float:
    """:func:`reporting`, leaving a marker file first (the crash test's kill signal)."""
    marker_dir = os.environ["HPOSTORE_MARKERS"]
    open(os.path.join(marker_dir, f"started-{x!r}-{os.getpid()}"), "w").close()
    return reporting(x, max_epochs, report, epoch_s=0.15)


def crash_scheduler() -> ASHAScheduler:
    return ASHAScheduler(
        RandomSearcher(SPACE, seed=CRASH_SEED), eta=2, r_min=1, r_max=4, type="stopping"
    )


def main() -> int:
    path, study, n, marker_dir = sys.argv[1:5]
    os.environ["HPOSTORE_MARKERS"] = marker_dir  # inherited by the spawned workers
    with HPOTuner(
        crash_scheduler(), marked, store=path, study=study, verbose=False, n_workers=2
    ) as tuner:
        tuner.run(int(n))
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
