"""The textbook bases are not ABCs: d2l code attaches methods with ``add_to_class`` after the
class exists (d2l's sh-intro ``SuccessiveHalvingScheduler``, pasted below in its shape)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pytest
from scipy import stats

from hpostore import (
    ASHAScheduler,
    HPOScheduler,
    HPOSearcher,
    HPOTuner,
    RandomSearcher,
    add_to_class,
    open_store,
)
from hpostore.schedulers import TrialScheduler


class SuccessiveHalvingScheduler(HPOScheduler):  # d2l chapter 19.4, as the book writes it
    def __init__(self, searcher: Any, eta: int, r_min: int, r_max: int, prefact: int = 1) -> None:
        self.save_hyperparameters()
        # Compute K, which is later used to determine the number of configurations
        self.K = int(np.log(r_max / r_min) / np.log(eta))
        # Define the rungs
        self.rung_levels = [r_min * eta**k for k in range(self.K + 1)]
        if r_max not in self.rung_levels:
            # The final rung should be r_max
            self.rung_levels.append(r_max)
            self.K += 1
        # Bookkeeping
        self.observed_error_at_rungs: Any = defaultdict(list)
        self.all_observed_error_at_rungs: Any = defaultdict(list)
        # Our processing queue
        self.queue: list[dict[str, Any]] = []


@add_to_class(SuccessiveHalvingScheduler)
def suggest(self: Any) -> dict[str, Any]:
    if len(self.queue) == 0:
        # Start a new round of successive halving
        # Number of configurations for the first rung:
        n0 = int(self.prefact * self.eta**self.K)
        for _ in range(n0):
            config = self.searcher.sample_configuration()
            config["max_epochs"] = self.r_min  # Set r = r_min
            self.queue.append(config)
    # Return an element from the queue
    return self.queue.pop()


@add_to_class(SuccessiveHalvingScheduler)
def update(self: Any, config: dict[str, Any], error: float, info: Any = None) -> None:
    ri = int(config["max_epochs"])  # Rung r_i
    # Update our searcher, e.g if we use Bayesian optimization later
    self.searcher.update(config, error, additional_info=info)
    self.all_observed_error_at_rungs[ri].append((config, error))
    if ri < self.r_max:
        # Bookkeeping
        self.observed_error_at_rungs[ri].append((config, error))
        # Determine how many configurations should be evaluated on the next rung
        ki = self.K - self.rung_levels.index(ri)
        ni = int(self.prefact * self.eta**ki)
        # If we observed all configuration on this rung r_i, we estimate the
        # top 1 / eta configuration, add them to queue and promote them for
        # the next rung r_{i+1}
        if len(self.observed_error_at_rungs[ri]) >= ni:
            kiplus1 = ki - 1
            niplus1 = int(self.prefact * self.eta**kiplus1)
            best_performing_configurations = self.get_top_n_configurations(rng=ri, n=niplus1)
            riplus1 = self.rung_levels[self.K - kiplus1]  # r_{i+1}
            # Queue may not be empty: insert new entries at the beginning
            self.queue = [
                dict(config, max_epochs=riplus1) for config in best_performing_configurations
            ] + self.queue
            self.observed_error_at_rungs[ri] = []  # Reset


@add_to_class(SuccessiveHalvingScheduler)
def get_top_n_configurations(self: Any, rng: int, n: int) -> list[dict[str, Any]]:
    rung = self.observed_error_at_rungs[rng]
    if not rung:
        return []
    sorted_rung = sorted(rung, key=lambda x: x[1])
    return [x[0] for x in sorted_rung[:n]]


def objective(x: float, max_epochs: int) -> float:
    return (x - 0.3) ** 2 + 1.0 / max_epochs


def events(store: Any, study: str) -> list[tuple[Any, ...]]:
    table = store.events(study)
    cols = [table.column(c).to_pylist() for c in ("kind", "trial", "config", "error")]
    return [row for row in zip(*cols) if row[0] in ("suggest", "evaluate")]


def test_the_textbook_successive_halving_runs_and_resumes_by_re_execution() -> None:
    def make() -> SuccessiveHalvingScheduler:
        return SuccessiveHalvingScheduler(
            RandomSearcher({"x": stats.uniform(0, 1)}, seed=3), eta=2, r_min=1, r_max=4
        )

    with open_store(":memory:") as store:
        tuner = HPOTuner(make(), objective, store=store, study="sh", verbose=False)
        tuner.run(7)  # one round: 4 configs at 1 epoch, the best 2 at 2, the best at 4
        epochs = [c["max_epochs"] for c in (t.config for t in tuner.state.trials.values())]
        assert sorted(epochs) == [1, 1, 1, 1, 2, 2, 4]
        best_at_1 = sorted(
            (t.error, t.config["x"]) for t in tuner.state.trials.values() if t.trial < 4
        )
        promoted = {t.config["x"] for t in tuner.state.trials.values() if t.trial >= 4}
        assert promoted == {x for _, x in best_at_1[:2]}  # the top half went on
        for n in (3, 7):  # a fresh scheduler, re-executed from the log (it has no restore)
            HPOTuner(make(), objective, store=store, study="resumed", verbose=False).run(n)
        assert events(store, "resumed") == events(store, "sh")


def test_unimplemented_textbook_methods_raise_not_implemented() -> None:
    scheduler = HPOScheduler()  # instantiable: not an ABC
    with pytest.raises(NotImplementedError, match="suggest"):
        scheduler.suggest()
    with pytest.raises(NotImplementedError, match="update"):
        scheduler.update({}, 0.0)
    assert not scheduler.restorable()
    assert not TrialScheduler().restorable()  # a user's trial scheduler without restore
    asha = ASHAScheduler(RandomSearcher({"x": stats.uniform(0, 1)}, seed=0))
    assert asha.restorable() and asha.searcher.restorable()  # the built-ins restore

    class Searcher(HPOSearcher):
        def __init__(self, values: list[float]) -> None:
            self.save_hyperparameters()

    with pytest.raises(NotImplementedError, match="sample_configuration"):
        Searcher([1.0]).sample_configuration()

    @add_to_class(Searcher)
    def sample_configuration(self: Any) -> dict[str, Any]:
        return {"x": self.values.pop()}

    searcher = Searcher([0.5, 0.25])
    assert searcher.sample_configuration() == {"x": 0.25}
    assert not searcher.restorable()  # a user searcher is resumed by re-execution
