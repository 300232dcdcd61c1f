"""Conditional hyperparameters: validation, JSON round trip, valid proposals, resume, views."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import analysis
from hpostore import (
    BasicScheduler,
    BayesianSearcher,
    EvolutionarySearcher,
    GridSearcher,
    HPOSearcher,
    HPOTuner,
    RandomSearcher,
    TPESearcher,
    open_store,
    testing,
)
from hpostore.errors import ConfigSpaceError, StudyMismatch
from hpostore.searchers._encoding import UnitCube
from hpostore.space import Conditional, ConfigSpace

#: a chain (nesterov needs momentum_on needs sgd), a multi-valued condition, an integer parent
SPACE: dict[str, Any] = {
    "optimizer": ["sgd", "adam", "rmsprop"],
    "lr": stats.loguniform(1e-4, 1.0),
    "momentum": Conditional(stats.uniform(0.0, 0.99), when={"optimizer": "sgd"}),
    "nesterov": Conditional([True, False], when={"momentum_on": True}),
    "momentum_on": Conditional([True, False], when={"optimizer": "sgd"}),
    "beta2": Conditional(stats.uniform(0.9, 0.099), when={"optimizer": ["adam", "rmsprop"]}),
    "layers": stats.randint(1, 4),
    "width2": Conditional(stats.randint(8, 64), when={"layers": [2, 3]}),
}
#: every dimension discrete (for the grid)
GRID_SPACE: dict[str, Any] = {
    "optimizer": ["sgd", "adam"],
    "momentum": Conditional([0.0, 0.5, 0.9], when={"optimizer": "sgd"}),
    "nesterov": Conditional([True, False], when={"momentum": [0.5, 0.9]}),
    "beta2": Conditional([0.99, 0.999], when={"optimizer": "adam"}),
    "layers": stats.randint(1, 3),
    "width2": Conditional([16, 32], when={"layers": 2}),
}
WARMUP = 4

SEARCHERS: dict[str, Callable[[int], HPOSearcher]] = {
    "random": lambda seed: RandomSearcher(SPACE, seed=seed),
    "grid": lambda seed: GridSearcher(GRID_SPACE, shuffle=True, seed=seed),
    "bayesian": lambda seed: BayesianSearcher(SPACE, n_init=WARMUP, n_candidates=60, seed=seed),
    "tpe": lambda seed: TPESearcher(SPACE, n_startup=WARMUP, seed=seed),
    "evolution": lambda seed: EvolutionarySearcher(
        SPACE, population_size=WARMUP, sample_size=2, seed=seed
    ),
}


def objective_value(config: dict[str, Any]) -> float:
    """Deterministic, depends on the conditional values (so models have something to learn)."""
    value = math.log10(config["lr"]) ** 2 / 10
    if config["optimizer"] == "sgd":
        value += (config["momentum"] - 0.9) ** 2 + (0.0 if config.get("nesterov") else 0.1)
    else:
        value += 0.5 + 10 * (config["beta2"] - 0.99) ** 2
    return value + 0.01 * config.get("width2", 0) / 64


def valid(space: ConfigSpace, config: dict[str, Any]) -> None:
    """``config`` names exactly the hyperparameters active under it, each inside its domain."""
    assert set(config) == space.active(config), config
    assert space.check_config(config) == config
    for name, value in config.items():
        domain = space.domains[name]
        if hasattr(domain, "values"):
            assert domain.index(value) >= 0
        elif hasattr(domain, "support"):
            low, high = domain.support()
            assert low <= value <= high, (name, value)
            assert isinstance(value, int) == domain.is_integer


# --- validation -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"a": Conditional([1, 2], when={"b": 1})}, "'b', which is not a hyperparameter"),
        ({"a": Conditional([1, 2], when={"a": 1})}, "names itself"),
        (
            {"a": Conditional([1, 2], when={"b": 1}), "b": Conditional([1, 2], when={"a": 1})},
            "cycle: a -> b -> a",
        ),
        (
            {
                "a": Conditional([1, 2], when={"c": 1}),
                "b": Conditional([1, 2], when={"a": 1}),
                "c": Conditional([1, 2], when={"b": 2}),
            },
            "cycle: a -> c -> b -> a",
        ),
        ({"o": ["sgd"], "m": Conditional([1], when={"o": "SGD"})}, "'SGD' is not one of 'o'"),
        ({"x": stats.uniform(0, 1), "m": Conditional([1], when={"x": 0.5})}, "is continuous"),
        ({"n": stats.randint(1, 4), "m": Conditional([1], when={"n": 7})}, "not an integer value"),
        ({"c": 3, "m": Conditional([1], when={"c": 4})}, "the constant 3, never 4"),
        ({"o": ["a"], "m": Conditional([1], when={})}, "non-empty dict"),
        ({"o": ["a"], "m": Conditional([1], when={"o": []})}, "could never be active"),
        ({"o": ["a"], "m": Conditional([1], when="o")}, "non-empty dict"),
    ],
)
def test_bad_conditions_are_config_space_errors(space: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigSpaceError, match=message.replace("(", r"\(")):
        ConfigSpace(space)


def test_a_bad_domain_inside_a_conditional_is_refused_like_any() -> None:
    with pytest.raises(ConfigSpaceError, match="scale"):
        ConfigSpace({"o": ["a"], "m": Conditional(stats.uniform(1, -1), when={"o": "a"})})


def test_configs_must_leave_inactive_hyperparameters_out() -> None:
    space = ConfigSpace(SPACE)
    adam = {"optimizer": "adam", "lr": 0.1, "beta2": 0.95, "layers": 1}
    assert space.check_config(adam) == adam
    with pytest.raises(ConfigSpaceError, match=r"names \['momentum'\], inactive.*optimizer"):
        space.check_config({**adam, "momentum": 0.5})
    with pytest.raises(ConfigSpaceError, match=r"missing: \['momentum', 'momentum_on'\]"):
        space.check_config({"optimizer": "sgd", "lr": 0.1, "layers": 1})
    with pytest.raises(ConfigSpaceError, match="initial_config"):
        RandomSearcher(SPACE, initial_config={**adam, "width2": 9})


def test_the_active_set_follows_chains_and_constant_parents() -> None:
    space = ConfigSpace(SPACE)
    assert space.active({"optimizer": "sgd", "momentum_on": False, "layers": 1}) == {
        "optimizer", "lr", "momentum", "momentum_on", "layers"
    }  # fmt: skip
    # nesterov's parent is inactive under adam, whatever value a stale dict gives it
    assert "nesterov" not in space.active({"optimizer": "adam", "momentum_on": True, "layers": 1})
    constant = ConfigSpace({"c": "on", "x": Conditional([1, 2], when={"c": "on"})})
    assert constant.sample([0.9]) == {"c": "on", "x": 2}


# --- JSON round trip --------------------------------------------------------------------------
def test_a_space_without_conditions_serializes_as_before() -> None:
    space = ConfigSpace({"lr": stats.loguniform(1e-3, 1), "act": ["relu", "tanh"], "epochs": 10})
    assert space.to_json() == {
        "lr": {"type": "scipy", "dist": "loguniform", "args": [0.001, 1], "kwds": {}},
        "act": {"type": "choice", "values": ["relu", "tanh"]},
        "epochs": {"type": "constant", "value": 10},
    }


def test_conditions_round_trip_exactly_through_json_text() -> None:
    space = ConfigSpace(SPACE)
    text = json.dumps(space.to_json())
    again = ConfigSpace.from_json(json.loads(text))
    assert json.dumps(again.to_json()) == text
    assert again.conditions == space.conditions and again.domains == space.domains
    assert json.loads(text)["nesterov"]["when"] == {"momentum_on": [True]}
    assert json.loads(text)["beta2"]["when"] == {"optimizer": ["adam", "rmsprop"]}
    assert again.sample([0.1] * space.n_random) == space.sample([0.1] * space.n_random)
    assert ConfigSpace.from_json(json.loads(text)).describe_difference(space) == ""


def test_the_study_event_records_the_conditions_and_resume_checks_them(tmp_path: Path) -> None:
    path = str(tmp_path / "runs.duckdb")
    with open_store(path) as store:
        testing.run_study(SEARCHERS["random"], 3, store=store)
    with open_store(path) as store:
        table = store.events("conformance")
        spec = json.loads(table.column("payload")[0].as_py())
        assert spec["space"] == ConfigSpace(SPACE).to_json()
        # the searcher's own argument is recorded as a space too, conditions included
        assert '"when": {"momentum_on": [true]}' in json.dumps(spec["scheduler"])
        testing.run_study(SEARCHERS["random"], 5, store=store)  # same space: resumes
        kinds = store.events("conformance").column("kind").to_pylist()
        assert kinds.count("evaluate") == 5
        wider = Conditional(stats.uniform(0, 0.99), when={"optimizer": ["sgd", "adam"]})
        changed = {**SPACE, "momentum": wider}
        with pytest.raises(StudyMismatch, match=r"momentum\.when\.optimizer"):
            testing.run_study(lambda seed: RandomSearcher(changed, seed=seed), 6, store=store)


# --- every searcher proposes only valid configs -----------------------------------------------
@pytest.mark.parametrize("name", sorted(SEARCHERS))
@settings(max_examples=4)
@given(seed=st.integers(0, 2**32))
def test_every_searcher_proposes_only_valid_configs(name: str, seed: int) -> None:
    searcher = SEARCHERS[name](seed)
    space = ConfigSpace(GRID_SPACE if name == "grid" else SPACE)
    seen = []
    for _ in range(14):
        config = searcher.sample_configuration()
        valid(space, config)
        seen.append(json.dumps(config, sort_keys=True))
        searcher.update(config, objective_value(config) if name != "grid" else 0.0)
    if name == "grid":
        assert len(set(seen)) == len(seen)


def test_model_searchers_propose_both_sides_of_a_condition_after_warmup() -> None:
    for name in ("bayesian", "tpe", "evolution"):
        searcher = SEARCHERS[name](3)
        configs = []
        for _ in range(30):
            config = searcher.sample_configuration()
            configs.append(config)
            searcher.update(config, objective_value(config))
        later = configs[WARMUP:]
        assert any("momentum" in c for c in later), name
        # the model found the better branch (sgd with momentum near 0.9) at least once
        assert min(objective_value(c) for c in later) < 0.35, name


def test_grid_holds_each_valid_config_once() -> None:
    grid = GridSearcher(GRID_SPACE)
    space = ConfigSpace(GRID_SPACE)
    points = list(grid)
    # brute force: every full combination, inactive values dropped, duplicates removed
    values = [list(d.values) if hasattr(d, "values") else [1, 2] for d in space.domains.values()]
    brute = set()
    for combo in itertools.product(*values):
        full = dict(zip(space.domains, combo))
        active = space.active(full)
        brute.add(json.dumps({n: v for n, v in full.items() if n in active}, sort_keys=True))
    assert {json.dumps(p, sort_keys=True) for p in points} == brute
    # sgd: momentum 0.0, or 0.5/0.9 x nesterov (5); adam: beta2 (2); x layers 1, or 2 x width2 (3)
    assert len(points) == len(brute) == grid.size == (5 + 2) * 3
    for p in points:
        valid(space, p)
    proposed = [grid.sample_configuration() for _ in range(grid.size)]
    assert proposed == points
    shuffled = GridSearcher(GRID_SPACE, shuffle=True, seed=5)
    drawn = [shuffled.sample_configuration() for _ in range(grid.size)]
    assert sorted(map(json.dumps, drawn)) == sorted(map(json.dumps, points)) and drawn != points


# --- the model's view of inactive dimensions -----------------------------------------------
def test_inactive_dimensions_are_nan_for_the_cube_and_imputed_only_for_models() -> None:
    cube = UnitCube(ConfigSpace(SPACE))
    adam = {"optimizer": "adam", "lr": 0.01, "beta2": 0.95, "layers": 1}
    q = cube.encode(adam)
    names = [d.name for d in cube.dims]
    inactive = {"momentum", "nesterov", "momentum_on", "width2"}
    assert [math.isnan(x) for x in q] == [n in inactive for n in names]
    decoded = cube.decode(q)  # NaN decodes to "absent", never to a value
    assert decoded == {**adam, "lr": pytest.approx(0.01)} and list(decoded) == list(adam)
    x = cube.inputs(q[None, :])[0]
    assert not np.isnan(x).any()
    assert x[names.index("momentum")] == -0.5 and x[names.index("nesterov")] == -1
    # a candidate row: whatever its values for inactive dims, the model sees them masked
    full = cube.fill_inactive(q[None, :], 0.3)
    np.testing.assert_array_equal(cube.mask_inactive(full), q[None, :])


# --- resume equivalence on a DuckDB file, and the shipped suite -------------------------------
@pytest.mark.parametrize("name", sorted(SEARCHERS))
def test_a_resumed_study_proposes_what_an_uninterrupted_one_does(name: str) -> None:
    # stops after the warm-up and mid-model, each time with fresh objects and a reopened file
    testing.check_resume(SEARCHERS[name], n=10, cuts=(WARMUP, 7))
    testing.check_in_space(SEARCHERS[name], GRID_SPACE if name == "grid" else SPACE, n=10)


def test_the_shipped_suite_catches_a_config_that_ignores_a_condition() -> None:
    class Careless(RandomSearcher):  # momentum even when the optimizer is not sgd
        def sample_configuration(self) -> dict[str, Any]:
            return {"momentum": 0.5, **super().sample_configuration()}

    with pytest.raises(testing.ConformanceError, match="check_in_space.*momentum"):
        testing.check_in_space(lambda seed: Careless(SPACE, seed=seed), SPACE, n=8)


# --- views ------------------------------------------------------------------------------------
def test_inactive_hyperparameters_are_null_in_the_trials_view(tmp_path: Path) -> None:
    path = str(tmp_path / "runs.duckdb")

    def objective(optimizer: str, lr: float, layers: int, **conditional: Any) -> float:
        return objective_value({"optimizer": optimizer, "lr": lr, "layers": layers, **conditional})

    with open_store(path) as store:
        tuner = HPOTuner(
            BasicScheduler(RandomSearcher(SPACE, seed=2)), objective, store=store, study="cond",
            verbose=False,
        )  # fmt: skip
        tuner.run(number_of_trials=16)
    rows = analysis.query(
        path,
        "SELECT trial, optimizer, momentum, momentum_on, nesterov, beta2, layers, width2, config "
        "FROM trials WHERE study = 'cond' ORDER BY trial",
    ).to_pylist()
    assert len(rows) == 16
    assert {r["optimizer"] for r in rows} >= {"sgd", "adam"}
    for row in rows:
        config = json.loads(row["config"])
        for name in ("momentum", "momentum_on", "nesterov", "beta2", "width2"):
            assert (row[name] is None) == (name not in config), (name, row)
            if name in config:
                assert row[name] == config[name]
        assert (row["momentum"] is None) == (row["optimizer"] != "sgd")
    assert isinstance(next(r["width2"] for r in rows if r["width2"] is not None), int)
