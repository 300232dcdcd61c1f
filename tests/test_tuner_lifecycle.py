"""The tuner's lifetime: a failed constructor releases the store, a re-run cell takes over,
the same end reasons on both paths, the failing trial named, restore errors are errors."""

from __future__ import annotations

import gc
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from scipy import stats

from hpostore import (
    BasicScheduler,
    HPOScheduler,
    HPOTuner,
    RandomSearcher,
    StudyMismatch,
    TooManyFailures,
    open_store,
)
from hpostore.study import StudyState

SPACE = {"x": stats.uniform(0, 1)}


def quadratic(x: float) -> float:
    return (x - 0.3) ** 2


def test_a_failed_constructor_releases_the_store_it_opened(store_path: str) -> None:
    with HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=1)), quadratic, store=store_path,
                  study="s", verbose=False) as tuner:  # fmt: skip
        tuner.run(2)
    other = {"y": stats.uniform(0, 1)}
    with pytest.raises(StudyMismatch):
        HPOTuner(BasicScheduler(RandomSearcher(other, seed=1)), quadratic, store=store_path,
                 study="s", verbose=False)  # fmt: skip
    with open_store(store_path) as store:  # not "locked by pid <this pid>"
        assert store.last_seq("s") > 0


def test_a_rerun_notebook_cell_takes_over_from_the_abandoned_tuner(store_path: str) -> None:
    def cell(n: int) -> HPOTuner:
        tuner = HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=1)), quadratic,
                         store=store_path, study="s", verbose=False)  # fmt: skip
        return tuner.run(n)

    runs = [cell(2)]  # never closed, still referenced: a notebook's `tuner` variable
    runs.append(cell(4))
    assert runs[1].state.n_finished == 4
    runs[1].close()
    del runs
    gc.collect()
    with open_store(store_path) as store:
        assert sum(e["kind"] == "evaluate" for e in store.events("s").to_pylist()) == 4


def _fails(x: float) -> float:
    raise ValueError(f"bad x={x:.3f}")


@pytest.mark.parametrize("parallel", [False, True])
def test_max_failures_names_the_failing_trial_and_both_paths_log_the_same_end(
    parallel: bool,
) -> None:
    kwargs: dict[str, Any] = {"executor": ThreadPoolExecutor(2), "n_workers": 2} if parallel else {}
    tuner = HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=1)), _fails, verbose=False,
                     max_failures=3, **kwargs)  # fmt: skip
    with pytest.raises(TooManyFailures) as raised:
        tuner.run(5)
    events = tuner.store.events(tuner.study).to_pylist()
    fails = [e for e in events if e["kind"] == "fail"]
    last = fails[2]  # the third failure in a row stopped the run
    message = json.loads(last["payload"])["message"]
    assert f"(trial {last['trial']}): {message}" in str(raised.value)
    assert json.loads(events[-1]["payload"]) == {"reason": "max_failures"}


class RestoreBreaks(BasicScheduler):
    """A scheduler whose own restore hits a NotImplementedError deep inside (a bug, not a
    request to be re-executed)."""

    def restore(self, state: StudyState) -> None:
        if state.trials:  # restore is called in every session, a new study's too
            raise NotImplementedError("a helper this restore calls is missing")
        super().restore(state)

    def restorable(self) -> bool:
        return True


class NoRestore(HPOScheduler):
    def __init__(self, searcher: RandomSearcher) -> None:
        self.save_hyperparameters()

    def suggest(self) -> dict[str, Any]:
        return self.searcher.sample_configuration()

    def update(self, config: dict[str, Any], error: float, info: Any = None) -> None:
        self.searcher.update(config, error)


def test_restore_is_chosen_by_override_and_its_errors_are_errors(store_path: str) -> None:
    with open_store(store_path) as store:
        HPOTuner(NoRestore(RandomSearcher(SPACE, seed=1)), quadratic, store=store, study="s",
                 verbose=False).run(2)  # fmt: skip
        resumed = HPOTuner(
            NoRestore(RandomSearcher(SPACE, seed=1)),
            quadratic,
            store=store,
            study="s",
            verbose=False,
        ).run(3)  # fmt: skip  (re-executed)
        assert resumed.state.n_finished == 3
        HPOTuner(RestoreBreaks(RandomSearcher(SPACE, seed=1)), quadratic, store=store,
                 study="t", verbose=False).run(1)  # fmt: skip
        broken = HPOTuner(RestoreBreaks(RandomSearcher(SPACE, seed=1)), quadratic, store=store,
                          study="t", verbose=False)  # fmt: skip
        with pytest.raises(NotImplementedError, match="helper this restore calls"):
            broken.run(2)
        end = store.events("t").to_pylist()[-1]
    assert json.loads(end["payload"]) == {"reason": "error: NotImplementedError"}
