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
        ({"x": stats.uniform(np.array([0, 1]), 1)}, "must be finite numbers"),
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


@pytest.mark.parametrize(
    "bad, fragments",
    [
        # loguniform(0, 1) used to fail at the first sample with "math domain error"
        (stats.loguniform(0, 1), ["`0 < low < high`", "low=0", "loguniform(1e-06, 1)"]),
        (stats.loguniform(-1, 1), ["`0 < low < high`", "log scale cannot reach -1"]),
        # loguniform(1, 1) used to raise ZeroDivisionError under TPE/BO
        (stats.loguniform(1, 1), ["single value 1", "use the constant 1"]),
        (stats.loguniform(2, 1), ["swap them: loguniform(1, 2)"]),
        (stats.reciprocal(1e-3, 1e-3), ["single value 0.001"]),
        # randint(5, 5) used to fail with "cannot convert float NaN to integer"
        (
            stats.randint(5, 5),
            ["`low < high`", "(low=5, high=5)", "constant 5", "randint(5, N + 1)"],
        ),
        (stats.randint(5, 4), ["`low < high`"]),
        (stats.randint(5, 6), ["always gives 5", "use the constant 5"]),
        (stats.randint(low=3, high=3), ["`low < high`"]),
        # uniform(0, -1) used to sample negatives silently
        (stats.uniform(0, -1), ["scale=-1", "`scale > 0`", "uniform(-1, 1)"]),
        (stats.uniform(loc=2, scale=0), ["scale=0", "constant 2"]),
        (stats.uniform(0, float("inf")), ["finite numbers", "inf"]),
        (stats.loguniform(1e-3, float("inf")), ["finite numbers"]),
        (stats.norm(0, float("nan")), ["finite numbers"]),
        (stats.norm(0, 0), ["invalid parameters", "sigma"]),
        (stats.norm(0, -2), ["invalid parameters"]),
        (stats.gamma(-1.0), ["invalid parameters"]),
        (stats.binom(5, 0.0), ["always gives 0"]),
    ],
)
def test_degenerate_or_invalid_distributions_are_refused_at_construction(
    bad: object, fragments: list[str]
) -> None:
    with pytest.raises(ConfigSpaceError) as info:
        ConfigSpace({"lr": bad, "ok": stats.uniform(0, 1)})
    message = str(info.value)
    assert isinstance(info.value, HPOStoreError)
    assert message.startswith("config_space['lr']: "), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


@pytest.mark.parametrize(
    "space",
    [
        {"x": stats.loguniform(1, 1)},
        {"x": stats.randint(5, 5)},
        {"x": stats.uniform(0, -1)},
        {"x": stats.loguniform(0, 1)},
    ],
)
def test_searchers_refuse_degenerate_spaces_before_proposing(space: dict[str, object]) -> None:
    from hpostore import BayesianSearcher, RandomSearcher, TPESearcher

    for cls in (RandomSearcher, TPESearcher, BayesianSearcher):
        with pytest.raises(ConfigSpaceError, match=r"config_space\['x'\]"):
            cls(space, seed=0)


def test_valid_edge_ranges_still_sample_inside() -> None:
    space = ConfigSpace(
        {
            "two": stats.randint(5, 7),
            "neg": stats.uniform(-1, 1),
            "tiny": stats.loguniform(1e-300, 1e-299),
            "kw": stats.randint(low=0, high=3, loc=10),
            "kw_lr": stats.loguniform(a=1e-3, b=1.0),
        }
    )
    for k in range(200):
        c = space.sample(trial_uniforms(0, k, space.n_random))
        assert c["two"] in (5, 6)
        assert -1 <= c["neg"] <= 0
        assert 1e-300 <= c["tiny"] <= 1e-299
        assert c["kw"] in (10, 11, 12)
        assert 1e-3 <= c["kw_lr"] <= 1


@pytest.mark.parametrize(
    "space, fragment",
    [
        ({"x\x00y": stats.uniform(0, 1)}, "NUL"),
        ({"\ud800": stats.uniform(0, 1)}, "not valid UTF-8"),
        ({"x": ["ok", "bad\x00"]}, "NUL"),
        ({"x": ["ok", "\udcff"]}, "not valid UTF-8"),
        ({"x": "\x00"}, "NUL"),
    ],
)
def test_text_that_cannot_be_logged_is_refused(space: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigSpaceError, match=fragment):
        ConfigSpace(space)


def test_choice_index_tells_true_from_one_and_finds_equal_numbers() -> None:
    choice = ConfigSpace({"c": [1, True, "a", 2.5]}).domains["c"]
    assert choice.index(True) == 1 and choice.index(1) == 0 and choice.index(1.0) == 0  # type: ignore[union-attr]
    assert choice.index("a") == 2 and choice.index(np.float64(2.5)) == 3  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="not one of the 4 choices"):
        choice.index("b")  # type: ignore[union-attr]


def test_space_module_imports_without_scipy() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import hpostore.space as s;"
        "sp = s.ConfigSpace.from_json({'x': {'type': 'scipy', 'dist': 'uniform', 'args': [0, 2],"
        " 'kwds': {}}, 'n': {'type': 'scipy', 'dist': 'randint', 'args': [1, 4], 'kwds': {}}});"
        "c = sp.sample([0.5, 0.5]); assert c == {'x': 1.0, 'n': 2}, c;"
        "assert 'scipy' not in sys.modules, sorted(m for m in sys.modules if 'scipy' in m)[:5]"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
