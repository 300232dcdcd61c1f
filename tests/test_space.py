from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from hpostore import ConfigSpace, ConfigSpaceError, HPOStoreError
from hpostore.searchers import trial_uniforms

SPACE = {
    "u": stats.uniform(2, 3),
    "u_kw": stats.uniform(loc=-1, scale=0.5),
    "lr": stats.loguniform(1e-4, 1),
    "bs": stats.randint(32, 256),
    "z": stats.norm(1, 2),
    "g": stats.gamma(2.0),
    "act": ("relu", "tanh", "gelu"),
    "flag": [True, False],
    "epochs": 10,
    "name": "lenet",
}


def test_json_round_trip_is_exact() -> None:
    space = ConfigSpace(SPACE)
    encoded = json.loads(json.dumps(space.to_json()))
    assert ConfigSpace.from_json(encoded).to_json() == space.to_json()
    assert encoded["lr"] == {"type": "scipy", "dist": "loguniform", "args": [1e-4, 1], "kwds": {}}
    assert encoded["act"] == {"type": "choice", "values": ["relu", "tanh", "gelu"]}
    assert encoded["epochs"] == {"type": "constant", "value": 10}


@given(st.integers(0, 2**63 - 1), st.integers(0, 10_000))
def test_samples_are_native_and_inside_their_domain(seed: int, index: int) -> None:
    space = ConfigSpace(SPACE)
    config = space.sample(trial_uniforms(seed, index, space.n_random))
    assert type(config["u"]) is float and 2 <= config["u"] <= 5
    assert type(config["u_kw"]) is float and -1 <= config["u_kw"] <= -0.5
    assert type(config["lr"]) is float and 1e-4 <= config["lr"] <= 1
    assert type(config["bs"]) is int and 32 <= config["bs"] <= 255
    assert type(config["z"]) is float and np.isfinite(config["z"])
    assert type(config["g"]) is float and config["g"] > 0
    assert config["act"] in ("relu", "tanh", "gelu")
    assert config["flag"] in (True, False)
    assert config["epochs"] == 10 and config["name"] == "lenet"


def test_samples_follow_the_distribution() -> None:
    space = ConfigSpace({"lr": stats.loguniform(1e-4, 1), "bs": stats.randint(0, 4)})
    draws = [space.sample(trial_uniforms(0, k, 2)) for k in range(4000)]
    logs = np.log10([d["lr"] for d in draws])
    assert abs(np.mean(logs) + 2) < 0.1  # log-uniform on [-4, 0]: mean -2
    counts = np.bincount([d["bs"] for d in draws], minlength=4)
    assert counts.min() > 900  # each of 4 values ~1000 times
    assert stats.kstest(np.asarray(logs), stats.uniform(-4, 4).cdf).pvalue > 1e-3


def test_uniforms_are_deterministic_and_open_interval() -> None:
    assert trial_uniforms(1, 2, 20) == trial_uniforms(1, 2, 20)
    assert trial_uniforms(1, 2, 3) != trial_uniforms(1, 3, 3)
    assert all(0 < u < 1 for k in range(200) for u in trial_uniforms(5, k, 9))


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ({"x": stats.uniform}, "not a frozen distribution"),
        ({"x": lambda: 1.0}, "cannot record a function"),
        ({"x": []}, "empty list of choices"),
        ({"x": [object()]}, "cannot record a object"),
        ({"x": stats.uniform(np.array([0, 1]), 1)}, "must be numbers"),
        ({"x": float("nan")}, "not a finite number"),
        ({1: stats.uniform(0, 1)}, "keys must be non-empty strings"),
        ({}, "empty"),
        ([("x", 1)], "must be a dict"),
    ],
)
def test_unrecordable_spaces_get_a_clear_error(bad: object, fragment: str) -> None:
    with pytest.raises(ConfigSpaceError, match=fragment) as info:
        ConfigSpace(bad)  # type: ignore[arg-type]
    assert isinstance(info.value, HPOStoreError)


def test_check_config_names_missing_and_unknown_keys() -> None:
    space = ConfigSpace({"a": stats.uniform(0, 1), "b": [1, 2], "c": 3})
    assert space.check_config({"a": np.float64(0.5), "b": np.int64(2)}) == {
        "a": 0.5,
        "b": 2,
        "c": 3,
    }
    with pytest.raises(ConfigSpaceError, match=r"unknown: \['z'\], missing: \['b'\]"):
        space.check_config({"a": 0.5, "z": 1})
