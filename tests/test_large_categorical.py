"""BO and TPE with a categorical of 100k choices: memory independent of choices x results,
proposals a pure function of (seed, k, results), and the model can learn a category."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest
from scipy import stats

from hpostore import BayesianSearcher, TPESearcher
from hpostore.searchers import trial_uniforms
from hpostore.space import ConfigSpace

N_CHOICES = 100_000


def _space() -> dict[str, Any]:
    return {"cat": [f"c{i}" for i in range(N_CHOICES)], "x": stats.uniform(-5, 10)}


def _error(config: dict[str, Any]) -> float:
    return (config["x"] - 1) ** 2 + (0.0 if config["cat"] == "c7" else 5.0)


def _results(n: int) -> list[tuple[dict[str, Any], float, Any]]:
    space = ConfigSpace(_space())
    out = []
    for k in range(n):
        config = space.sample(trial_uniforms(1, k, space.n_random))
        if k % 4 == 0:
            config["cat"] = "c7"
        out.append((config, _error(config), None))
    return out


@pytest.mark.parametrize("cls", [BayesianSearcher, TPESearcher])
def test_a_proposal_allocates_no_memory_per_choice_and_result(cls: type) -> None:
    searcher = cls(_space(), seed=0)
    searcher.restore_results(40, _results(40))
    tracemalloc.start()
    try:
        config = searcher.sample_configuration()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert config["cat"] in searcher.space.domains["cat"].values
    # a one-hot encoding would hold 100k x 40 float64 = 32 MB per copy (BO's used to be GBs)
    assert peak < 8 * 2**20, f"{cls.__name__} peaked at {peak / 2**20:.1f} MiB"


@pytest.mark.parametrize("cls", [BayesianSearcher, TPESearcher])
def test_proposals_with_a_large_categorical_resume_exactly(cls: type) -> None:
    results = _results(30)
    straight = cls(_space(), seed=5)
    straight.restore_results(30, results)
    proposals = []
    for _ in range(3):
        config = straight.sample_configuration()
        proposals.append(config)
        straight.update(config, _error(config))
    resumed = cls(_space(), seed=5)
    resumed.restore_results(31, results + [(proposals[0], _error(proposals[0]), None)])
    assert resumed.sample_configuration() == proposals[1]


def test_bo_learns_that_one_category_of_many_is_better() -> None:
    # every fourth result is the good category "c7": the same-or-not kernel term lets the GP
    # tell it apart, so proposals come back to it far more often than 1 in 100k
    searcher = BayesianSearcher(_space(), seed=0, n_candidates=200)
    searcher.restore_results(40, _results(40))
    picks = []
    for _ in range(6):
        config = searcher.sample_configuration()
        picks.append(config["cat"])
        searcher.update(config, _error(config))
    assert picks.count("c7") >= 3, picks
