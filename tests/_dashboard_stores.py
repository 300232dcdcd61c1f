"""Studies for the dashboard's tests: seeds of one setup (quantile bands) and multi-objective
studies (Pareto front), small enough to run in a second or two."""

from __future__ import annotations

import math

from _shared import SPACE, quadratic
from scipy import stats

from hpostore import BasicScheduler, HPOTuner, RandomSearcher

MO_SPACE = {f"x{i}": stats.uniform(0, 1) for i in range(3)}


def zdt1(x0: float, x1: float, x2: float) -> dict[str, float]:
    """ZDT1 in three dimensions (the front is f2 = 1 - sqrt(f1)), and a third metric."""
    g = 1 + 9 * (x1 + x2) / 2
    return {"f1": x0, "f2": g * (1 - math.sqrt(x0 / g)), "cost": x1 + x2}


def add_seeds(store: object, trials: int = 15) -> None:
    """Studies rs1, rs2, rs3: random search with three seeds (one setup repeated)."""
    for seed in (1, 2, 3):
        scheduler = BasicScheduler(RandomSearcher(SPACE, seed=seed))
        HPOTuner(scheduler, quadratic, store=store, study=f"rs{seed}", verbose=False).run(trials)


def add_multi_objective(store: object, trials: int = 40) -> None:
    """Studies mo (f1 min, f2 max), mo-min (both min) and mo3 (three objectives, all min)."""
    for study, metric, mode in (
        ("mo", ["f1", "f2"], ["min", "max"]),
        ("mo-min", ["f1", "f2"], ["min", "min"]),
        ("mo3", ["f1", "f2", "cost"], ["min", "min", "min"]),
    ):
        scheduler = BasicScheduler(RandomSearcher(MO_SPACE, seed=4))
        HPOTuner(scheduler, zdt1, metric=metric, mode=mode, store=store, study=study,
                 verbose=False).run(trials)  # fmt: skip
