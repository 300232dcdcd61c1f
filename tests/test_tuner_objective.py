"""Whatever the objective returns or raises (but Ctrl-C) is a failed trial, never a failed study."""

from __future__ import annotations

import math
from typing import Any

import parallel_child as pc
import pytest
from scipy import stats

from hpostore import BasicScheduler, HPOTuner, RandomSearcher, open_store

SPACE = {"x": stats.uniform(0, 1)}


class FloatRaises:
    def __float__(self) -> float:
        raise RuntimeError("no float for you")


class ReprRaises(FloatRaises):
    def __repr__(self) -> str:
        raise ValueError("no repr either")


class StrRaises(Exception):
    def __str__(self) -> str:
        raise RuntimeError("broken __str__")


class Custom(BaseException):
    """A BaseException that is neither Exception nor KeyboardInterrupt."""


BAD_RESULTS = [
    (10**400, "too large for a float"),
    (FloatRaises(), "RuntimeError: no float for you"),
    (ReprRaises(), "repr failed"),
    ({"loss": 0.1}, "dict without 'error'"),
    ({"error": math.nan}, "errors must be finite"),
    (None, "returned None"),
    (math.nan, "errors must be finite"),
    (-math.inf, "errors must be finite"),
]
RAISED = [
    (SystemExit(3), "SystemExit: 3"),
    (GeneratorExit("closing"), "GeneratorExit: closing"),
    (Custom("odd"), "Custom: odd"),
    (StrRaises(), "StrRaises: <str() failed: RuntimeError>"),
    (MemoryError("big"), "MemoryError: big"),
]


@pytest.mark.parametrize(("value", "fragment"), BAD_RESULTS + RAISED)
def test_a_bad_result_or_any_exception_is_a_failed_trial_that_is_not_repeated(
    value: Any, fragment: str, store_path: str
) -> None:
    def objective(x: float, calls: list[int] = []) -> Any:  # noqa: B006
        calls.append(1)
        if len(calls) == 2:
            if isinstance(value, BaseException):
                raise value
            return value
        return x

    def tuner(store: Any) -> HPOTuner:
        return HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=1)), objective, store=store,
                        study="s", verbose=False)  # fmt: skip

    with open_store(store_path) as store:
        tuner(store).run(3)
        trials = {t["trial"]: t for t in store.trials("s").to_pylist()}
        assert trials[1]["status"] == "failed" and fragment in trials[1]["message"]
        tuner(store).run(4)  # a resume: the failed trial stays failed, nothing re-runs it
        starts = [e["trial"] for e in store.events("s").to_pylist() if e["kind"] == "start"]
    assert starts.count(1) == 1 and len(starts) == 5


def test_a_dict_with_the_metric_is_a_result() -> None:
    tuner = HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=1)),
                     lambda x: {"error": x, "accuracy": 1 - x}, verbose=False)  # fmt: skip
    tuner.run(2)
    assert [r["error"] for r in tuner.records] == [r["config"]["x"] for r in tuner.records]


def test_system_exit_in_a_worker_process_fails_the_trial_and_the_pool_goes_on() -> None:
    tuner = HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=2)), pc.exits, n_workers=2,
                     verbose=False, max_failures=None)  # fmt: skip
    tuner.run(6)
    failed = [t for t in tuner.state.trials.values() if t.status.value == "failed"]
    assert failed and all("SystemExit: 4" in (t.message or "") for t in failed)
    assert all(t.config["x"] > 0.5 for t in failed)
    assert tuner.state.n_finished == 6
