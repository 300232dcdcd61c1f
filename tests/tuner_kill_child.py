"""A study run as a child process by tests/test_tuner_durability.py, which kills it on purpose.

``python tuner_kill_child.py STORE STUDY N WORKERS`` runs a random-search study. Unless the
environment holds ``NO_KILL=1``, the searcher's ``update`` — the first thing the tuner does
with a result after logging it — SIGKILLs this process, so the test can check that the result
the objective had returned was on disk before the tuner acted on it.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

from scipy import stats

from hpostore import BasicScheduler, HPOTuner, RandomSearcher

SPACE = {"x": stats.uniform(0, 1)}


def objective(x: float) -> float:
    time.sleep(0.05)
    return (x - 0.3) ** 2


class KillingSearcher(RandomSearcher):
    """A seeded random searcher whose ``update`` SIGKILLs the process (unless NO_KILL=1)."""

    def update(self, config: dict[str, Any], error: float, additional_info: Any = None) -> None:
        if os.environ.get("NO_KILL") != "1":
            os.kill(os.getpid(), signal.SIGKILL)
        super().update(config, error, additional_info)


def main() -> int:
    path, study, n, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    scheduler = BasicScheduler(KillingSearcher(SPACE, seed=5))
    with HPOTuner(
        scheduler, objective, store=path, study=study, verbose=False, n_workers=workers
    ) as tuner:
        tuner.run(n)
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
