"""Conformance suite: every built-in searcher under every scheduler, through the public tuner.

Each (searcher, scheduler) pair runs ``HPOTuner(scheduler, objective, store=, study=, clock=)``
on a cheap simulated objective (Branin's learning curve with 9 epochs, a
:class:`~hpostore.simulation.SimulatedClock`, a ``report`` per epoch so that the stopping-type
schedulers can stop trials) and is checked for:

- proposals inside the space, as native Python types (what the searcher returned, before the
  tuner's conversion, and what the log holds);
- determinism for a seed (and a different seed giving other configs);
- resume equivalence on a DuckDB file: run to ``RESUME_AT[0]`` finished trials, close, rebuild
  every object (store included), run to ``RESUME_AT[1]``, again, then to ``N``; the event stream
  equals the uninterrupted run's;
- the model-based searchers use the results: after their warm-up they leave random search's
  proposals, and the same seed on other results proposes other configs.

Everything is compared through the event stream ``(kind, trial, config, resource, error)``, never
through how a scheduler numbers its trials, so a promotion may be a new trial or a resumed one.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from hpostore import (
    ASHAScheduler,
    BasicScheduler,
    BayesianSearcher,
    Conditional,
    EvolutionarySearcher,
    GridSearcher,
    HPOScheduler,
    HPOSearcher,
    HPOTuner,
    HyperbandScheduler,
    MedianStoppingScheduler,
    RandomSearcher,
    SuccessiveHalvingScheduler,
    TPESearcher,
    open_store,
    testing,
)
from hpostore.simulation import Branin, SimulatedClock

BENCH = Branin(max_resource=9)
R_MAX = BENCH.max_resource
SEED = 11
N = 15  # finished trials per run: past the model searchers' warm-up and SH's first round (13)
WARMUP = 4  # the model-based searchers' random initial design
#: where the interrupted runs stop: at the end of the warm-ups (the next proposal is the first
#: from a model rebuilt from the log), and among SH's first promotions
RESUME_AT = (WARMUP, 10)

#: continuous, integer, categorical and boolean dimensions (Branin on x1, x2)
SPACE: dict[str, Any] = {
    "x1": stats.uniform(-5, 15),
    "x2": stats.uniform(0, 15),
    "width": stats.randint(1, 5),
    "act": ["relu", "tanh"],
    "bias": [True, False],
}
#: a discrete space for grid search (4,096 points, visited in a seeded shuffled order)
GRID_SPACE: dict[str, Any] = {
    "x1": stats.randint(-5, 11),
    "x2": stats.randint(0, 16),
    "width": stats.randint(1, 5),
    "act": ["relu", "tanh"],
    "bias": [True, False],
}

SEARCHERS: dict[str, Callable[[int], HPOSearcher]] = {
    "random": lambda seed: RandomSearcher(SPACE, seed=seed),
    "grid": lambda seed: GridSearcher(GRID_SPACE, shuffle=True, seed=seed),
    "bayesian": lambda seed: BayesianSearcher(SPACE, n_init=WARMUP, n_candidates=100, seed=seed),
    "tpe": lambda seed: TPESearcher(SPACE, n_startup=WARMUP, seed=seed),
    "evolution": lambda seed: EvolutionarySearcher(
        SPACE, population_size=WARMUP, sample_size=2, seed=seed
    ),
}
MODEL_BASED = ("bayesian", "tpe", "evolution")

SCHEDULERS: dict[str, Callable[[HPOSearcher], HPOScheduler]] = {
    "fifo": BasicScheduler,
    "sh": lambda s: SuccessiveHalvingScheduler(s, eta=3, r_min=1, r_max=R_MAX),
    "asha-promotion": lambda s: ASHAScheduler(s, eta=3, r_min=1, r_max=R_MAX, type="promotion"),
    "asha-stopping": lambda s: ASHAScheduler(s, eta=3, r_min=1, r_max=R_MAX, type="stopping"),
    "hyperband": lambda s: HyperbandScheduler(s, eta=3, r_min=1, r_max=R_MAX),
    "median": lambda s: MedianStoppingScheduler(
        s, grace_resource=1, min_trials=3, resource_attr="max_epochs", r_max=R_MAX
    ),
}
PAIRS = [(s, h) for s in SEARCHERS for h in SCHEDULERS]
#: events that carry no session-specific data (study/session/end do, and a resume adds some)
NOT_STREAM = frozenset({"study", "session", "end"})

Stream = list[tuple[Any, ...]]


def make_objective(clock: SimulatedClock, sign: float = 1.0) -> Callable[..., float]:
    """Branin's learning curve plus small penalties, one ``report`` per epoch (ends when the
    scheduler stops the trial), each epoch charged to ``clock``; ``sign=-1`` negates it."""

    def objective(
        x1: float,
        x2: float,
        width: int,
        act: str,
        bias: bool,
        report: Callable[[float, float], bool],
        max_epochs: float | None = None,
    ) -> float:
        assert max_epochs is None or 1 <= max_epochs <= R_MAX
        penalty = width / 10 + (0.5 if act == "tanh" else 0.0) + (0.25 if bias else 0.0)
        epochs = None if max_epochs is None else math.ceil(max_epochs)
        errors, seconds = BENCH.learning_curve({"x1": x1, "x2": x2}, epochs)
        error = math.nan
        for epoch, (e, s) in enumerate(zip(errors, seconds), 1):
            clock.advance(s)
            error = sign * (e + penalty)
            if report(epoch, error):
                break
        return error

    return objective


def stream(store: Any, study: str) -> Stream:
    table = store.events(study)
    cols = [table.column(c).to_pylist() for c in ("kind", "trial", "config", "resource", "error")]
    return [row for row in zip(*cols) if row[0] not in NOT_STREAM]


def build(searcher: str, scheduler: str, seed: int) -> tuple[HPOSearcher, HPOScheduler]:
    s = SEARCHERS[searcher](seed)
    return s, SCHEDULERS[scheduler](s)


def run(
    searcher: str,
    scheduler: str,
    store: Any,
    study: str,
    n: int,
    *,
    seed: int = SEED,
    sign: float = 1.0,
    proposals: list[dict[str, Any]] | None = None,
) -> int:
    """Run the pair to ``n`` finished trials of ``study`` (resuming it if it has some); returns
    the study's number of finished trials (the tuner's count). With
    ``proposals``, what the searcher's ``sample_configuration`` returns is appended there
    as it was returned (an instance-level spy; the class, and so restore, is unchanged)."""
    s, h = build(searcher, scheduler, seed)
    if proposals is not None:
        sample = s.sample_configuration

        def spy() -> dict[str, Any]:
            config = sample()
            proposals.append(dict(config))
            return config

        s.sample_configuration = spy  # type: ignore[method-assign]
    clock = SimulatedClock()
    tuner = HPOTuner(h, make_objective(clock, sign), store=store, study=study, clock=clock,
                     verbose=False)  # fmt: skip
    return tuner.run(n).state.n_finished


@functools.cache
def reference(searcher: str, scheduler: str, sign: float = 1.0) -> tuple[Stream, list[Any]]:
    """The uninterrupted run of a pair (shared by the tests): its stream and raw proposals."""
    proposals: list[dict[str, Any]] = []
    with open_store(":memory:") as store:
        finished = run(searcher, scheduler, store, "ref", N, sign=sign, proposals=proposals)
        assert finished >= N
        return stream(store, "ref"), proposals


def check_in_space(config: dict[str, Any], space: dict[str, Any], *, where: str) -> None:
    assert set(config) <= set(space) | {"max_epochs"}, where
    assert set(space) <= set(config), where
    for name, domain in space.items():
        value = config[name]
        if isinstance(domain, list):
            assert type(value) in (str, bool) and value in domain, (where, name, value)
            assert type(value) is type(domain[0]), (where, name, value)
            continue
        low, high = domain.support()
        if domain.dist.name == "randint":
            assert type(value) is int, (where, name, value)
        else:
            assert type(value) is float, (where, name, value)
        assert low <= value <= high, (where, name, value)
    if "max_epochs" in config:
        value = config["max_epochs"]
        assert type(value) in (int, float) and 1 <= value <= R_MAX, (where, value)


@pytest.mark.parametrize(("searcher", "scheduler"), PAIRS)
def test_proposals_are_native_values_inside_the_space(searcher: str, scheduler: str) -> None:
    events, proposals = reference(searcher, scheduler)
    space = GRID_SPACE if searcher == "grid" else SPACE
    assert proposals, "the searcher was never asked"
    for k, config in enumerate(proposals):  # as the searcher returned them
        assert "max_epochs" not in config
        check_in_space(config, space, where=f"proposal {k}")
    logged = [(trial, json.loads(c)) for kind, trial, c, _, _ in events if kind == "suggest"]
    assert len(logged) >= len(proposals)  # promotions may add suggestions, never drop one
    for trial, config in logged:  # and as the log holds them
        check_in_space(config, space, where=f"logged trial {trial}")
    assert any(kind == "evaluate" for kind, *_ in events)
    assert not any(kind == "fail" for kind, *_ in events)  # the objective's asserts held
    if scheduler != "fifo":  # the scheduler really decided something in these runs
        decisions = {kind for kind, *_ in events} & {"stop", "pause", "promote"}
        assert decisions, f"{scheduler} made no decision in {N} trials"


@pytest.mark.parametrize(("searcher", "scheduler"), PAIRS)
def test_a_seed_determines_the_event_stream(searcher: str, scheduler: str) -> None:
    events, _ = reference(searcher, scheduler)
    with open_store(":memory:") as store:
        run(searcher, scheduler, store, "again", N)
        run(searcher, scheduler, store, "other-seed", 3, seed=SEED + 1)
        assert stream(store, "again") == events
        first = [c for kind, _, c, _, _ in events if kind == "suggest"][:3]
        other = [c for kind, _, c, _, _ in stream(store, "other-seed") if kind == "suggest"]
        assert other[:3] != first


@pytest.mark.parametrize(("searcher", "scheduler"), PAIRS)
def test_a_resumed_study_logs_the_uninterrupted_stream(
    searcher: str, scheduler: str, tmp_path: Path
) -> None:
    path = str(tmp_path / "runs.duckdb")
    cuts = []  # the stream's length at each interruption
    for n in (*RESUME_AT, N):  # each session with fresh store, searcher, scheduler and tuner
        with open_store(path) as store:
            finished = run(searcher, scheduler, store, "resumed", n)
            resumed = stream(store, "resumed")
        assert finished >= n
        cuts.append(len(resumed))
    assert cuts == sorted(set(cuts)), "each session added events"
    events, _ = reference(searcher, scheduler)
    for i, (got, want) in enumerate(zip(resumed, events)):
        assert got == want, f"event {i} differs (the sessions ended after {cuts[:-1]} events)"
    assert len(resumed) == len(events)


def random_proposals(space: dict[str, Any], n: int) -> list[dict[str, Any]]:
    searcher = RandomSearcher(space, seed=SEED)
    return [searcher.sample_configuration() for _ in range(n)]


@pytest.mark.parametrize(("searcher", "scheduler"), [(s, h) for s, h in PAIRS if s in MODEL_BASED])
def test_model_based_searchers_learn_from_results(searcher: str, scheduler: str) -> None:
    _, proposals = reference(searcher, scheduler)
    _, on_negated = reference(searcher, scheduler, sign=-1.0)
    assert len(proposals) > WARMUP + 2 and len(on_negated) > WARMUP + 2
    design = random_proposals(SPACE, max(len(proposals), len(on_negated)))
    # the initial design is random search's with this seed, whatever the results
    assert proposals[:WARMUP] == on_negated[:WARMUP] == design[:WARMUP]
    # then the model: not random search's configs, and other results give other configs
    assert proposals[WARMUP:] != design[WARMUP : len(proposals)]
    m = min(len(proposals), len(on_negated))
    assert proposals[WARMUP:m] != on_negated[WARMUP:m]


def test_random_and_grid_proposals_ignore_the_results() -> None:
    for scheduler in ("fifo", "asha-promotion"):
        for searcher in ("random", "grid"):
            _, proposals = reference(searcher, scheduler)
            _, on_negated = reference(searcher, scheduler, sign=-1.0)
            m = min(len(proposals), len(on_negated))
            assert proposals[:m] == on_negated[:m]
        _, proposals = reference("random", scheduler)
        assert proposals == random_proposals(SPACE, len(proposals))


# --- the shipped suite (hpostore.testing), over every built-in and a third party's searcher ----
SUITE_SCHEDULERS = {k: v for k, v in SCHEDULERS.items() if k != "fifo"}


@pytest.mark.parametrize("searcher", sorted(SEARCHERS))
def test_the_shipped_suite_passes_every_builtin_searcher(searcher: str) -> None:
    space = GRID_SPACE if searcher == "grid" else SPACE
    testing.check_conformance(SEARCHERS[searcher], space, n=8)


@pytest.mark.parametrize("scheduler", sorted(SUITE_SCHEDULERS))
def test_the_shipped_suite_passes_every_builtin_scheduler(scheduler: str) -> None:
    make = SUITE_SCHEDULERS[scheduler]
    testing.check_conformance(lambda seed: make(RandomSearcher(SPACE, seed=seed)), SPACE, n=10)


#: SPACE with conditional hyperparameters: one under a choice, a chain, one under an integer
COND_SPACE: dict[str, Any] = {
    **SPACE,
    "momentum": Conditional(stats.uniform(0.0, 0.99), when={"act": "relu"}),
    "nesterov": Conditional([True, False], when={"momentum_on": True}),
    "momentum_on": Conditional([True, False], when={"act": "relu"}),
    "depth": Conditional(stats.randint(1, 4), when={"width": [3, 4]}),
}
COND_GRID_SPACE: dict[str, Any] = {
    **GRID_SPACE,
    "momentum": Conditional([0.0, 0.9], when={"act": "relu"}),
    "nesterov": Conditional([True, False], when={"momentum": 0.9}),
}
COND_SEARCHERS: dict[str, Callable[[int], HPOSearcher | HPOScheduler]] = {
    "random": lambda seed: RandomSearcher(COND_SPACE, seed=seed),
    "grid": lambda seed: GridSearcher(COND_GRID_SPACE, shuffle=True, seed=seed),
    "bayesian": lambda seed: BayesianSearcher(
        COND_SPACE, n_init=WARMUP, n_candidates=100, seed=seed
    ),
    "tpe": lambda seed: TPESearcher(COND_SPACE, n_startup=WARMUP, seed=seed),
    "evolution": lambda seed: EvolutionarySearcher(
        COND_SPACE, population_size=WARMUP, sample_size=2, seed=seed
    ),
    "tpe+asha-promotion": lambda seed: SCHEDULERS["asha-promotion"](
        TPESearcher(COND_SPACE, n_startup=WARMUP, seed=seed)
    ),
}


@pytest.mark.parametrize("searcher", sorted(COND_SEARCHERS))
def test_the_shipped_suite_accepts_a_conditional_space(searcher: str) -> None:
    space = COND_GRID_SPACE if searcher == "grid" else COND_SPACE
    testing.check_conformance(COND_SEARCHERS[searcher], space, n=10)


class ThirdPartySearcher(HPOSearcher):
    """A user's searcher: seeded numpy draws, no restore (resumed by re-execution)."""

    def __init__(self, seed: int) -> None:
        self.save_hyperparameters()
        self.rng = np.random.default_rng(seed)

    def sample_configuration(self) -> dict[str, Any]:
        return {
            "x1": float(self.rng.uniform(-5, 10)),
            "x2": float(self.rng.uniform(0, 15)),
            "width": int(self.rng.integers(1, 5)),
            "act": str(self.rng.choice(["relu", "tanh"])),
            "bias": bool(self.rng.random() < 0.5),
        }


def test_a_third_party_searcher_can_run_the_suite_and_the_suite_catches_faults() -> None:
    testing.check_conformance(ThirdPartySearcher, SPACE, n=8)

    class Unseeded(ThirdPartySearcher):  # ignores its seed: two runs differ
        def __init__(self, seed: int) -> None:
            super().__init__(seed)
            self.rng = np.random.default_rng()

    with pytest.raises(testing.ConformanceError, match="check_determinism.*differ at event"):
        testing.check_determinism(Unseeded, n=4)

    class OutOfSpace(ThirdPartySearcher):
        def sample_configuration(self) -> dict[str, Any]:
            return {**super().sample_configuration(), "width": 7}

    with pytest.raises(testing.ConformanceError, match="width=7 is outside"):
        testing.check_in_space(OutOfSpace, SPACE, n=4)
