"""Simulated time: the clock, the synthetic benchmarks, and a tuner driven by them."""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hpostore import (
    ASHAScheduler,
    BasicScheduler,
    BayesianSearcher,
    HPOTuner,
    InvalidArgument,
    RandomSearcher,
)
from hpostore.simulation import (
    Branin,
    Hartmann6,
    LearningCurve,
    SimulatedClock,
    SimulatedExecutor,
    SyntheticBenchmark,
)


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


def test_branin_curves_are_its_vectorized_function_bit_for_bit() -> None:
    # Branin's learning curve is computed in plain floats (no numpy per trial): every value
    # must equal the vectorized ``values`` exactly, so simulated studies log what they did
    rng = np.random.default_rng(1)
    for max_resource in (1, 9, 81):
        bench = Branin(max_resource)
        for i in range(300):
            x = [-5 + 15 * rng.random(), 15 * rng.random()]
            if i % 3 == 0:  # integer inputs too (exact squares, cos of whole numbers)
                x = [float(v) for v in np.round(x)]
            n = int(rng.integers(1, max_resource + 1))
            curve, _ = bench.learning_curve({"x1": x[0], "x2": x[1]}, n)
            z = np.arange(1, n + 1) / max_resource
            assert curve == bench.values(np.array(x), z).tolist()

    class Shifted(Branin):  # a subclass's own function is used, not the plain-float copy
        def values(self, x: np.ndarray, z: np.ndarray) -> np.ndarray:
            return super().values(x, z) + 1.0

    assert Shifted(9).learning_curve({"x1": 1.0, "x2": 2.0}, 3)[0] == [
        e + 1.0 for e in Branin(9).learning_curve({"x1": 1.0, "x2": 2.0}, 3)[0]
    ]


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


# --- simulated workers -----------------------------------------------------------------------
def _simulate(
    scheduler: Any, n_workers: int, n: int, *, reports: bool = True, bench: Any = None
) -> tuple[list[dict[str, Any]], SimulatedExecutor]:
    bench = bench or Branin(max_resource=9)
    executor = SimulatedExecutor(n_workers, reports=reports)
    tuner = HPOTuner(scheduler, bench.curve_objective(), executor=executor, verbose=False)
    tuner.run(n)
    return tuner.store.events("default").to_pylist(), executor


def _stream(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    keys = ("kind", "trial", "config", "resource", "error", "runtime", "elapsed", "worker")
    return [tuple(e[k] for k in keys) for e in events if e["kind"] not in ("session", "study")]


def test_simulated_workers_follow_the_worker_schedule() -> None:
    bench = Branin(max_resource=9)
    events, executor = _simulate(
        BasicScheduler(RandomSearcher(bench.config_space, seed=1)), 3, 30, reports=False
    )
    assert [e["elapsed"] for e in events] == sorted(e["elapsed"] for e in events)
    starts = {e["trial"]: e["elapsed"] for e in events if e["kind"] == "start"}
    ends = {e["trial"]: e for e in events if e["kind"] == "evaluate"}
    configs = {e["trial"]: json.loads(e["config"]) for e in events if e["kind"] == "suggest"}
    # Replay the schedule by hand: each trial starts on the worker that frees up first.
    free = [0.0, 0.0, 0.0]
    for trial in sorted(starts):
        t0 = min(free)
        assert starts[trial] == pytest.approx(t0), trial
        end = t0 + bench.cost(configs[trial])
        assert ends[trial]["elapsed"] == pytest.approx(end)
        assert ends[trial]["runtime"] == pytest.approx(bench.cost(configs[trial]))
        assert ends[trial]["error"] == bench.error(configs[trial])
        free[free.index(t0)] = end
    assert max(free) == pytest.approx(executor.clock())
    assert {e["worker"] for e in ends.values()} == {"sim-0", "sim-1", "sim-2"}


def test_simulated_workers_are_deterministic_and_scale() -> None:
    bench = Branin(max_resource=9)

    def run(workers: int) -> tuple[list[tuple[Any, ...]], float]:
        scheduler = BasicScheduler(RandomSearcher(bench.config_space, seed=4))
        events, executor = _simulate(scheduler, workers, 40, bench=bench)
        return _stream(events), executor.clock()

    one, t1 = run(1)
    four, t4 = run(4)
    assert run(4) == (four, t4)  # the same seed, the same study, elapsed included
    assert 3.0 < t1 / t4 <= 4.0  # 40 trials of uneven cost on 4 workers
    # each trial reports every epoch, at the end of that epoch
    reports = [r for r in four if r[0] == "report"]
    assert len(reports) == 40 * 9
    assert {r[1] for r in one if r[0] == "evaluate"} == {r[1] for r in four if r[0] == "evaluate"}


def test_a_stop_ends_the_simulated_trial_at_the_report_it_follows() -> None:
    bench = Branin(max_resource=9)
    scheduler = ASHAScheduler(RandomSearcher(bench.config_space, seed=2), eta=3, r_max=9,
                              type="stopping")  # fmt: skip
    events, _ = _simulate(scheduler, 2, 30, bench=bench)
    stopped = {e["trial"] for e in events if e["kind"] == "stop"}
    assert stopped
    for trial in stopped:
        mine = [e for e in events if e["trial"] == trial]
        last_report = [e for e in mine if e["kind"] == "report"][-1]
        evaluate = next(e for e in mine if e["kind"] == "evaluate")
        assert last_report["resource"] in (1.0, 3.0)  # stopped at a rung below r_max
        assert evaluate["elapsed"] == last_report["elapsed"]
        assert evaluate["error"] == last_report["error"]
        assert evaluate["resource"] == last_report["resource"]


def test_simulated_executor_rejects_what_it_cannot_run() -> None:
    bench = Branin(max_resource=3)
    with pytest.raises(InvalidArgument, match="n_workers must be a positive int"):
        SimulatedExecutor(0)
    executor = SimulatedExecutor(2)
    with pytest.raises(InvalidArgument, match="runs the tuner's trials only"):
        executor.submit(print, "x")
    scheduler = BasicScheduler(RandomSearcher(bench.config_space, seed=0))
    with pytest.raises(InvalidArgument, match="pass clock=executor.clock"):
        HPOTuner(scheduler, bench.curve_objective(), executor=executor, clock=SimulatedClock())
    tuner = HPOTuner(scheduler, bench.objective(executor.clock), executor=executor, verbose=False)
    with pytest.raises(InvalidArgument, match="returns a LearningCurve"):
        tuner.run(2)
    with pytest.raises(InvalidArgument, match="one error and one epoch time per epoch"):
        LearningCurve([0.1, 0.2], [1.0])


def test_a_store_opened_for_a_simulated_executor_commits_in_batches(tmp_path: Path) -> None:
    bench = Branin(max_resource=3)
    scheduler = BasicScheduler(RandomSearcher(bench.config_space, seed=0))
    tuner = HPOTuner(scheduler, bench.curve_objective(), store=f"{tmp_path}/runs/",
                     executor=SimulatedExecutor(2), verbose=False)  # fmt: skip
    assert tuner.store.durability == "batched"
    tuner.run(50)
    tuner.close()
    segments = list((tmp_path / "runs").rglob("*.parquet"))
    assert 1 <= len(segments) < 10  # not a segment per trial
