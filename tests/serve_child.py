"""A live study for the dashboard's browser test:
``python serve_child.py STORE STUDY N1 N2 GATE`` runs N1 results, waits for the file GATE,
then resumes the study for N2 more in a second session.

Asynchronous ASHA (stopping type) with 2 worker processes, short trials that report every
epoch, and a few failures, so that every chart of the dashboard has something to draw.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from scipy import stats

from hpostore import ASHAScheduler, HPOTuner, RandomSearcher

SPACE = {
    "x": stats.uniform(0, 1),
    "lr": stats.loguniform(1e-4, 1e-1),
    "act": ["relu", "tanh", "gelu"],
}


def objective(
    x: float, lr: float, act: str, max_epochs: int, report: Callable[[float, float], bool]
) -> float:
    if x > 0.95:
        raise RuntimeError(f"diverged at x={x:.3f}")
    error = 1.0
    for epoch in range(1, int(max_epochs) + 1):
        time.sleep(0.04)
        error = (x - 0.3) ** 2 + 0.2 / epoch + abs(lr - 0.01) + (0.02 if act == "tanh" else 0.0)
        if report(epoch, error):
            break
    return error


def main() -> int:
    path, study = sys.argv[1], sys.argv[2]
    first, more, gate = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    for n in (first, more):  # two sessions: the second resumes once the gate file exists
        scheduler = ASHAScheduler(RandomSearcher(SPACE, seed=5), eta=3, r_max=9, type="stopping")
        with HPOTuner(
            scheduler, objective, store=path, study=study, verbose=False, n_workers=2
        ) as tuner:
            tuner.run(n)
        deadline = time.monotonic() + 120
        while not os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.05)
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
