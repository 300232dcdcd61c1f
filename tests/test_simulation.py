"""Simulated time: the clock, the synthetic benchmarks, and a tuner driven by them."""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hpostore import BasicScheduler, BayesianSearcher, HPOTuner, InvalidArgument, RandomSearcher
from hpostore.simulation import Branin, Hartmann6, SimulatedClock, SyntheticBenchmark


def test_clock_moves_only_when_advanced() -> None:
    clock = SimulatedClock(10.0)
    assert clock() == clock() == 10.0
    clock.advance(2.5)
    clock.sleep(0.5)
    assert clock() == 13.0
    for bad in (-1.0, math.inf, math.nan, "1"):
        with pytest.raises(InvalidArgument, match="finite number >= 0"):
            clock.advance(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bench", "argmin"),
    [
        (Branin(), {"x1": math.pi, "x2": 2.275}),
        (Branin(), {"x1": -math.pi, "x2": 12.275}),
        (Hartmann6(), dict(zip([f"x{i}" for i in range(1, 7)],
                               [0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573]))),
    ],
)  # fmt: skip
def test_known_optimum_at_full_fidelity_and_bias_below(
    bench: SyntheticBenchmark, argmin: dict[str, float]
) -> None:
    assert bench.error(argmin) == pytest.approx(bench.optimum, abs=1e-5)
    assert bench.error(argmin, bench.max_resource) == bench.error(argmin)
    rng = np.random.default_rng(0)
    for _ in range(200):  # nothing beats the optimum
        config = {n: lo + (hi - lo) * rng.random() for n, lo, hi in bench.bounds}
        assert bench.error(config) >= bench.optimum
    # lower fidelity: biased, worse at the optimum, and better with more epochs
    curve, seconds = bench.learning_curve(argmin)
    assert len(curve) == len(seconds) == bench.max_resource
    assert curve[0] > curve[26] > curve[-1] == pytest.approx(bench.optimum, abs=1e-5)
    assert bench.cost(argmin, 3) == pytest.approx(3 * seconds[0])
    assert 0 < bench.normalized_regret(bench.optimum + 1e-3) < 0.01
    assert bench.normalized_regret(bench.reference_error) == 1.0


def test_objective_takes_the_config_and_max_epochs_and_advances_the_clock() -> None:
    bench, clock = Branin(max_resource=27), SimulatedClock()
    f = bench.objective(clock)
    assert list(inspect.signature(f).parameters) == ["x1", "x2", "max_epochs"]
    assert f.__qualname__ == "branin"
    config = {"x1": 1.0, "x2": 2.0}
    assert f(**config) == bench.error(config)
    assert clock() == bench.cost(config) == 27 * bench.epoch_seconds(config)
    assert f(**config, max_epochs=3) == bench.error(config, 3)
    assert clock() == pytest.approx(30 * bench.epoch_seconds(config))


def _events(store: Path, seed: int) -> list[tuple[Any, ...]]:
    bench, clock = Hartmann6(), SimulatedClock()
    searcher = BayesianSearcher(bench.config_space, n_init=4, n_candidates=100, seed=seed)
    with HPOTuner(BasicScheduler(searcher), bench.objective(clock), store=store, study="h6",
                  clock=clock, verbose=False) as tuner:  # fmt: skip
        tuner.run(8)
        table = tuner.store.events("h6").to_pylist()
    return [
        (e["kind"], e["trial"], e["config"], e["error"], e["runtime"], e["elapsed"]) for e in table
    ]


def test_a_simulated_study_is_deterministic_and_its_elapsed_is_simulated(tmp_path: Path) -> None:
    first = _events(tmp_path / "a.duckdb", seed=3)
    assert _events(tmp_path / "b.duckdb", seed=3) == first
    bench = Hartmann6()
    total = 0.0
    for kind, _, _, _, runtime, elapsed in first:
        if kind == "evaluate":
            total += runtime
            assert elapsed == pytest.approx(total)  # no wall-clock time leaks in
            assert 0.5 * bench.max_resource <= runtime <= 1.5 * bench.max_resource
    assert first[-1][-1] == pytest.approx(total)


def test_random_search_on_the_simulator_logs_many_trials_quickly(tmp_path: Path) -> None:
    # A smoke test of the fast path (benchmarks/search_quality.py times 10,000 trials).
    bench, clock = Branin(), SimulatedClock()
    with HPOTuner(BasicScheduler(RandomSearcher(bench.config_space, seed=0)),
                  bench.objective(clock), store=str(tmp_path / "runs") + "/", study="r",
                  clock=clock, verbose=False) as tuner:  # fmt: skip
        tuner.run(300)
        assert tuner.state.n_finished == 300
        assert tuner.cumulative_runtime[-1] == pytest.approx(clock())
