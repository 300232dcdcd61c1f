"""The tuner: textbook parity, resume, spec checks, bad input and faults."""

from __future__ import annotations

import json
import math
import pathlib
from typing import Any

import numpy as np
import pytest
from _shared import SPACE, quadratic
from scipy import stats

import hpostore
from hpostore import (
    BasicScheduler,
    HPOScheduler,
    HPOSearcher,
    HPOStoreError,
    HPOTuner,
    InvalidArgument,
    ObjectiveSignatureError,
    RandomSearcher,
    ReplayDivergence,
    StudyMismatch,
    TooManyFailures,
    open_store,
)
from hpostore.log.events import FORMAT_VERSION

TEXTBOOK_SPACE = {"learning_rate": stats.loguniform(1e-2, 1), "batch_size": stats.randint(32, 256)}
INITIAL = {"learning_rate": 0.1, "batch_size": 128}


def lenet_like(learning_rate: float, batch_size: int, max_epochs: int = 10) -> float:
    return abs(math.log10(learning_rate) + 1) / 3 + batch_size / 2560


def kinds(store: hpostore.EventLog, study: str) -> list[str]:
    return store.events(study, columns=["kind"]).column("kind").to_pylist()


# --- textbook parity ----------------------------------------------------------------------------
class TextbookRandomSearcher(HPOSearcher):
    """The textbook's RandomSearcher, verbatim but for the base class import."""

    def __init__(self, config_space: dict, initial_config=None):  # type: ignore[no-untyped-def]
        self.save_hyperparameters()

    def sample_configuration(self) -> dict:
        if self.initial_config is not None:
            result = self.initial_config
            self.initial_config = None
        else:
            result = {name: domain.rvs() for name, domain in self.config_space.items()}
        return result


class TextbookBasicScheduler(HPOScheduler):
    def __init__(self, searcher: HPOSearcher):
        self.save_hyperparameters()

    def suggest(self) -> dict:
        return self.searcher.sample_configuration()

    def update(self, config: dict, error: float, info=None):  # type: ignore[no-untyped-def]
        self.searcher.update(config, error, additional_info=info)


def test_textbook_code_runs_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    np.random.seed(0)
    searcher = TextbookRandomSearcher(TEXTBOOK_SPACE, initial_config=INITIAL)
    scheduler = TextbookBasicScheduler(searcher=searcher)
    tuner = HPOTuner(scheduler=scheduler, objective=lenet_like)
    tuner.run(number_of_trials=5)
    out = capsys.readouterr().out
    assert "Trial 0: config = {'learning_rate': 0.1, 'batch_size': 128}" in out
    assert out.count("    error = ") == 5 and ", runtime = " in out
    assert (
        len(tuner.records) == len(tuner.incumbent_trajectory) == len(tuner.cumulative_runtime) == 5
    )
    assert tuner.records[0] == {
        "config": INITIAL,
        "error": lenet_like(**INITIAL),
        "runtime": tuner.records[0]["runtime"],
    }
    errors = [r["error"] for r in tuner.records]
    assert tuner.incumbent_error == min(errors)
    assert tuner.incumbent == tuner.records[errors.index(min(errors))]["config"]
    assert tuner.incumbent_trajectory == [min(errors[: i + 1]) for i in range(5)]
    assert tuner.cumulative_runtime == sorted(tuner.cumulative_runtime)
    assert tuner.current_runtime == tuner.cumulative_runtime[-1]
    for record in tuner.records:  # numpy scalars from domain.rvs() arrive as plain Python
        assert (
            type(record["config"]["learning_rate"]) is float
            and type(record["config"]["batch_size"]) is int
        )
    # the textbook's plotting loop
    for time_stamp, error in zip(tuner.cumulative_runtime, tuner.incumbent_trajectory):
        assert time_stamp >= 0 and error >= tuner.incumbent_error


def test_add_to_class_and_save_hyperparameters() -> None:
    class Thing(hpostore.HyperParameters):
        def __init__(self, a: int, b: str = "x") -> None:
            self.save_hyperparameters()

    @hpostore.add_to_class(Thing)
    def twice(self: Thing) -> int:
        return self.a * 2  # type: ignore[attr-defined]

    thing = Thing(3)
    assert (thing.a, thing.b, thing.twice()) == (3, "x", 6)  # type: ignore[attr-defined]
    assert thing.spec()["args"] == {"a": 3, "b": "x"}


def test_verbose_false_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=1)), quadratic, verbose=False).run(3)
    assert capsys.readouterr().out == ""


def test_library_surface_is_importable_from_the_package() -> None:
    for name in (
        "HPOSearcher",
        "HPOScheduler",
        "HPOTuner",
        "RandomSearcher",
        "BasicScheduler",
        "open_store",
        "HPOStoreError",
    ):
        assert hasattr(hpostore, name)
    for name in hpostore.__all__:
        obj = getattr(hpostore, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, HPOStoreError), name


def test_no_pickle_anywhere() -> None:
    root = pathlib.Path(hpostore.__file__).parent
    for path in root.rglob("*.py"):
        source = path.read_text()
        if path.name == "_transport.py":  # cloudpickle there only sends objectives to workers
            source = source.replace("import cloudpickle", "")
        for banned in ("import pickle", "import dill", "import cloudpickle", "marshal."):
            assert banned not in source, f"{path}: {banned}"


# --- the log ------------------------------------------------------------------------------------
def test_every_step_is_an_event(store_path: str) -> None:
    with open_store(store_path) as store:
        tuner = HPOTuner(
            BasicScheduler(RandomSearcher(SPACE, seed=1)),
            quadratic,
            store=store,
            study="s",
            verbose=False,
        )
        tuner.run(2)
        assert kinds(store, "s") == [
            "study",
            "session",
            "suggest",
            "start",
            "evaluate",
            "update",
            "suggest",
            "start",
            "evaluate",
            "update",
            "end",
        ]
        spec = json.loads(store.events("s").column("payload")[0].as_py())
        assert (
            spec["format_version"] == FORMAT_VERSION and spec["seed"] == 1 and spec["mode"] == "min"
        )
        assert spec["space"]["lr"] == {
            "type": "scipy",
            "dist": "loguniform",
            "args": [0.001, 1],
            "kwds": {},
        }
        assert spec["scheduler"]["class"] == "hpostore.schedulers.base.BasicScheduler"
        assert spec["scheduler"]["args"]["searcher"]["args"]["seed"] == 1
        trials = store.trials("s").to_pylist()
        assert [t["status"] for t in trials] == ["finished", "finished"]


def test_same_seed_same_configs_different_seed_different() -> None:
    def configs(seed: int) -> list[dict[str, Any]]:
        tuner = HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=seed)), quadratic, verbose=False)
        return [r["config"] for r in tuner.run(6).records]

    assert configs(4) == configs(4)
    assert configs(4) != configs(5)


def test_unseeded_study_logs_its_seed_and_resumes_with_it(store_path: str) -> None:
    with open_store(store_path) as store:
        first = HPOTuner(
            BasicScheduler(RandomSearcher(SPACE)), quadratic, store=store, study="s", verbose=False
        ).run(3)
        seed = first.scheduler.searcher.seed  # type: ignore[attr-defined]
    with open_store(store_path) as store:
        again = HPOTuner(
            BasicScheduler(RandomSearcher(SPACE)), quadratic, store=store, study="s", verbose=False
        ).run(6)
    reference = HPOTuner(
        BasicScheduler(RandomSearcher(SPACE, seed=seed)), quadratic, verbose=False
    ).run(6)
    assert [r["config"] for r in again.records] == [r["config"] for r in reference.records]


def test_resume_continues_and_a_finished_study_only_reports(
    store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def tuner(store: hpostore.EventLog) -> HPOTuner:
        return HPOTuner(
            BasicScheduler(RandomSearcher(SPACE, seed=2)), quadratic, store=store, study="s"
        )

    with open_store(store_path) as store:
        tuner(store).run(3)
    with open_store(store_path) as store:
        resumed = tuner(store)
        assert len(resumed.records) == 3  # attributes are views of the log, before any run
        resumed.run(5)
        events_before = store.last_seq("s")
        capsys.readouterr()
        resumed_again = tuner(store).run(5)
        assert "already holds 5 finished trials" in capsys.readouterr().out
        assert store.last_seq("s") == events_before  # nothing written
        assert resumed_again.incumbent_error == resumed.incumbent_error
        sessions = [
            json.loads(p)["reason"]
            for k, p in zip(kinds(store, "s"), store.events("s").column("payload").to_pylist())
            if k == "session"
        ]
        assert sessions == ["new", "resume"]
    uninterrupted = HPOTuner(
        BasicScheduler(RandomSearcher(SPACE, seed=2)), quadratic, verbose=False
    ).run(5)
    assert [r["config"] for r in resumed.records] == [r["config"] for r in uninterrupted.records]


def test_elapsed_survives_resume_without_counting_downtime(store_path: str) -> None:
    now = [100.0]

    def two_second_trial(**config: Any) -> float:
        now[0] += 2
        return 0.5

    def session(n: int) -> HPOTuner:
        with open_store(store_path) as store:
            scheduler = BasicScheduler(RandomSearcher(SPACE, seed=2))
            tuner = HPOTuner(
                scheduler,
                two_second_trial,
                store=store,
                study="s",
                verbose=False,
                clock=lambda: now[0],
            )
            return tuner.run(n)

    session(2)
    now[0] = 10_000.0  # a long pause between sessions
    tuner = session(4)
    assert tuner.cumulative_runtime == [2.0, 4.0, 6.0, 8.0]
    assert max(tuner.state.finished_elapsed) == tuner.state.elapsed == 8.0


# --- spec checks --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change, fragment",
    [
        (
            lambda: BasicScheduler(
                RandomSearcher({**SPACE, "lr": stats.loguniform(1e-4, 1)}, seed=2)
            ),
            "different config space",
        ),
        (lambda: BasicScheduler(RandomSearcher(SPACE, seed=3)), "seed=2"),
        (
            lambda: BasicScheduler(
                RandomSearcher(
                    SPACE, initial_config={"x": 0.0, "lr": 0.1, "n": 2, "act": "relu"}, seed=2
                )
            ),
            "initial_config",
        ),
    ],
)
def test_resuming_with_a_different_setup_is_refused(
    store_path: str, change: Any, fragment: str
) -> None:
    with open_store(store_path) as store:
        HPOTuner(
            BasicScheduler(RandomSearcher(SPACE, seed=2)),
            quadratic,
            store=store,
            study="s",
            verbose=False,
        ).run(2)
    with open_store(store_path) as store:
        before = store.last_seq("s")
        with pytest.raises(StudyMismatch, match=fragment):
            HPOTuner(change(), quadratic, store=store, study="s", verbose=False)
        assert store.last_seq("s") == before


def test_newer_format_version_is_refused(store_path: str) -> None:
    with open_store(store_path) as store:
        store.append(
            "s",
            "study",
            elapsed=0.0,
            session="x",
            payload=json.dumps({"format_version": FORMAT_VERSION + 1, "hpostore_version": "9.0"}),
        )
    with (
        open_store(store_path) as store,
        pytest.raises(
            hpostore.FormatVersionError,
            match=f"format version {FORMAT_VERSION + 1} .hpostore 9.0.*Upgrade",
        ),
    ):
        HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=2)), quadratic, store=store, study="s")


# --- user-written stateful schedulers: resumed by re-execution ---------------------------------
class GlobalRNGSearcher(HPOSearcher):
    def __init__(self, config_space: dict) -> None:
        self.save_hyperparameters()

    def sample_configuration(self) -> dict:
        return {name: domain.rvs() for name, domain in self.config_space.items()}


class QueueScheduler(HPOScheduler):
    """Textbook-style: keeps a queue and writes max_epochs into the configs it suggests."""

    def __init__(self, searcher: HPOSearcher, rungs: tuple[int, ...] = (1, 3)) -> None:
        self.save_hyperparameters()
        self.queue: list[dict] = []
        self.results: list[tuple[float, dict]] = []

    def suggest(self) -> dict:
        if not self.queue:
            base = self.searcher.sample_configuration()
            self.queue = [{**base, "max_epochs": r} for r in self.rungs]
        return self.queue.pop(0)

    def update(self, config: dict, error: float, info: Any = None) -> None:
        self.results.append((error, config))


def test_user_scheduler_resumes_by_reexecution(store_path: str) -> None:
    def make() -> QueueScheduler:
        np.random.seed(7)
        return QueueScheduler(GlobalRNGSearcher(TEXTBOOK_SPACE))

    with open_store(store_path) as store:
        HPOTuner(make(), lenet_like, store=store, study="s", verbose=False).run(3)
    with open_store(store_path) as store:
        scheduler = make()
        resumed = HPOTuner(scheduler, lenet_like, store=store, study="s", verbose=False).run(6)
        assert len(scheduler.results) == 6  # the re-executed updates rebuilt its state
    reference = HPOTuner(make(), lenet_like, verbose=False).run(6)
    assert [r["config"] for r in resumed.records] == [r["config"] for r in reference.records]
    assert [r["config"]["max_epochs"] for r in resumed.records] == [1, 3, 1, 3, 1, 3]


def test_divergent_reexecution_names_the_trial_unless_the_log_is_trusted(store_path: str) -> None:
    np.random.seed(1)
    with open_store(store_path) as store:
        HPOTuner(
            QueueScheduler(GlobalRNGSearcher(TEXTBOOK_SPACE)),
            lenet_like,
            store=store,
            study="s",
            verbose=False,
        ).run(2)
    np.random.seed(2)  # a different global RNG state: the re-drawn configs differ
    with open_store(store_path) as store:
        with pytest.raises(ReplayDivergence, match="trial 0: re-executing") as info:
            HPOTuner(
                QueueScheduler(GlobalRNGSearcher(TEXTBOOK_SPACE)),
                lenet_like,
                store=store,
                study="s",
                verbose=False,
            ).run(4)
        assert info.value.trial == 0
        logged = [
            r["config"]
            for r in HPOTuner(
                QueueScheduler(GlobalRNGSearcher(TEXTBOOK_SPACE)),
                lenet_like,
                store=store,
                study="s",
            ).records
        ]
        with pytest.warns(UserWarning, match="trust_log=True"):
            trusted = HPOTuner(
                QueueScheduler(GlobalRNGSearcher(TEXTBOOK_SPACE)),
                lenet_like,
                store=store,
                study="s",
                verbose=False,
                trust_log=True,
            ).run(4)
        assert [r["config"] for r in trusted.records][:2] == logged


# --- bad input and faults -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, fragment",
    [
        (RuntimeError("out of memory"), "RuntimeError: out of memory"),
        (math.nan, "returned nan"),
        (math.inf, "returned inf"),
        (None, "returned None"),
        ("0.3", "returned a str"),
        ([0.1, 0.2], "returned a list"),
        (True, "returned a bool"),
    ],
)
def test_bad_objective_results_are_failed_trials_and_the_study_goes_on(
    value: Any, fragment: str
) -> None:
    calls = []

    def objective(**config: Any) -> Any:
        calls.append(config)
        if len(calls) == 2:
            if isinstance(value, Exception):
                raise value
            return value
        return 0.5

    tuner = HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=1)), objective, verbose=False)
    tuner.run(3)
    trials = tuner.store.trials(tuner.study).to_pylist()
    assert [t["status"] for t in trials] == ["finished", "failed", "finished", "finished"]
    assert fragment in trials[1]["message"]
    assert len(tuner.records) == 3 and tuner.state.n_failed == 1


def test_numpy_results_are_accepted() -> None:
    tuner = HPOTuner(
        BasicScheduler(RandomSearcher(SPACE, seed=1)), lambda **c: np.float32(0.25), verbose=False
    )
    assert tuner.run(2).incumbent_error == 0.25


def test_max_failures_stops_a_study_that_only_fails(store_path: str) -> None:
    def broken(**config: Any) -> float:
        raise ValueError("bad data path")

    with open_store(store_path) as store:
        tuner = HPOTuner(
            BasicScheduler(RandomSearcher(SPACE, seed=1)),
            broken,
            store=store,
            study="s",
            verbose=False,
            max_failures=3,
        )
        with pytest.raises(
            TooManyFailures, match="3 trials in a row failed .*ValueError: bad data path"
        ):
            tuner.run(10)
        events = store.events("s").to_pylist()
    assert [e["kind"] for e in events].count("fail") == 3
    assert (
        events[-1]["kind"] == "end"
        and json.loads(events[-1]["payload"])["reason"] == "max_failures"
    )


def test_objective_signature_mismatch_is_caught_before_anything_runs() -> None:
    def objective(learning_rate: float) -> float:
        return learning_rate

    tuner = HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=1)), objective, verbose=False)
    with pytest.raises(ObjectiveSignatureError, match="cannot be called with the config"):
        tuner.run(1)
    assert "suggest" not in kinds(tuner.store, tuner.study)


def test_a_hyperparameter_named_report_reaches_an_objective_without_a_report_parameter() -> None:
    """Only the objective's own ``report`` parameter is the tuner's; a config entry of that name
    is a hyperparameter like any other (it was once dropped without a word)."""
    seen: list[dict[str, Any]] = []

    def objective(**config: Any) -> float:
        seen.append(config)
        return float(config["x"])

    space = {"x": stats.uniform(0, 1), "report": stats.randint(1, 4)}
    tuner = HPOTuner(BasicScheduler(RandomSearcher(space, seed=1)), objective, verbose=False)
    tuner.run(3)
    assert [sorted(c) for c in seen] == [["report", "x"]] * 3
    assert [c["report"] for c in seen] == [r["config"]["report"] for r in tuner.records]


def test_keyboard_interrupt_logs_the_trial_as_interrupted_and_resume_reruns_it(
    store_path: str,
) -> None:
    state = {"interrupt": True}

    def objective(**config: Any) -> float:
        if state["interrupt"] and len(config) and objective.calls == 1:  # type: ignore[attr-defined]
            raise KeyboardInterrupt
        objective.calls += 1  # type: ignore[attr-defined]
        return quadratic(**config)

    objective.calls = 0  # type: ignore[attr-defined]
    with open_store(store_path) as store:
        tuner = HPOTuner(
            BasicScheduler(RandomSearcher(SPACE, seed=5)),
            objective,
            store=store,
            study="s",
            verbose=False,
        )
        with pytest.raises(KeyboardInterrupt):
            tuner.run(3)
        events = store.events("s").to_pylist()
        assert [e["kind"] for e in events][-2:] == ["interrupt", "end"]
        assert (
            events[-2]["trial"] == 1
            and json.loads(events[-1]["payload"])["reason"] == "interrupted"
        )
        assert store.trials("s").column("status").to_pylist() == ["finished", "interrupted"]
    state["interrupt"] = False
    with open_store(store_path) as store:
        resumed = HPOTuner(
            BasicScheduler(RandomSearcher(SPACE, seed=5)),
            objective,
            store=store,
            study="s",
            verbose=False,
        ).run(3)
        starts = [
            json.loads(e["payload"])["attempt"]
            for e in store.events("s").to_pylist()
            if e["kind"] == "start" and e["trial"] == 1
        ]
        assert starts == [1, 2]
    reference = HPOTuner(
        BasicScheduler(RandomSearcher(SPACE, seed=5)), quadratic, verbose=False
    ).run(3)
    assert [r["config"] for r in resumed.records] == [r["config"] for r in reference.records]


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"scheduler": object()}, "suggest"),
        ({"objective": 3}, "callable"),
        ({"max_failures": 0}, "max_failures"),
        ({"study": ""}, "study"),
    ],
)
def test_bad_tuner_arguments(kwargs: dict[str, Any], fragment: str) -> None:
    args: dict[str, Any] = {
        "scheduler": BasicScheduler(RandomSearcher(SPACE, seed=1)),
        "objective": quadratic,
        **kwargs,
    }
    with pytest.raises(InvalidArgument, match=fragment):
        HPOTuner(**args)


def test_bad_run_and_searcher_arguments() -> None:
    tuner = HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=1)), quadratic, verbose=False)
    for n in (-1, 2.5, "3", True):
        with pytest.raises(InvalidArgument, match="number_of_trials"):
            tuner.run(n)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="seed"):
        RandomSearcher(SPACE, seed=-1)
    with pytest.raises(hpostore.ConfigSpaceError, match="initial_config"):
        RandomSearcher(SPACE, initial_config={"x": 0.1})


def test_batched_mode_gives_the_same_stream(tmp_path: pathlib.Path) -> None:
    streams = []
    for durability in ("durable", "batched"):
        with open_store(str(tmp_path / f"{durability}.duckdb"), durability=durability) as store:
            HPOTuner(
                BasicScheduler(RandomSearcher(SPACE, seed=9)),
                quadratic,
                store=store,
                study="s",
                verbose=False,
            ).run(20)
            ev = store.events("s", columns=["kind", "trial", "config", "error"]).to_pylist()
            streams.append([e for e in ev if e["kind"] not in ("session",)])
    assert streams[0] == streams[1]
