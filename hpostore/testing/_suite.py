"""The checks of :mod:`hpostore.testing`: determinism, in-space proposals, restore, resume."""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import HPOTuner, open_store  # the public API, as a third party uses it
from ..errors import HPOStoreError
from ..schedulers.base import BasicScheduler, HPOScheduler, TrialScheduler
from ..searchers.base import HPOSearcher
from ..space import Conditional, ConfigSpace
from ..study import StudyState, replay_table

#: what ``make(seed)`` returns: a searcher (run under FIFO) or a scheduler
Factory = Callable[[int], "HPOSearcher | HPOScheduler"]
#: one event of a study's stream: (kind, trial, config, resource, error)
StreamEvent = tuple[Any, ...]
#: kinds that carry session-specific data (ids, host, reasons): not compared
_SESSION_KINDS = frozenset({"study", "session", "end"})
#: epochs of the synthetic learning curve when the scheduler sets no resource
EPOCHS = 9


class ConformanceError(HPOStoreError, AssertionError):
    """A searcher or scheduler broke the contract a conformance check holds it to."""


def synthetic_objective(report: Callable[[float, float], bool], **config: Any) -> float:
    """A deterministic learning curve for any config: a pseudo-random level from the config's
    JSON (BLAKE2b) plus ``1 / epoch``, reported each epoch up to ``max_epochs`` (or 9) until
    the scheduler stops the trial."""
    epochs = config.pop("max_epochs", EPOCHS)
    text = json.dumps(config, sort_keys=True, default=str).encode()
    level = int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") / 2.0**64
    error = math.nan
    for epoch in range(1, max(1, math.ceil(epochs)) + 1):
        error = level + 1.0 / epoch
        if report(epoch, error):
            break
    return error


@dataclass(frozen=True, slots=True)
class StudyRun:
    """What :func:`run_study` ran: the event stream, the fold, the live scheduler."""

    events: list[StreamEvent]
    state: StudyState
    scheduler: Any


def _scheduler(obj: Any) -> Any:
    return BasicScheduler(obj) if isinstance(obj, HPOSearcher) else obj


def run_study(
    make: Factory,
    n: int,
    *,
    seed: int = 0,
    store: Any = None,
    study: str = "conformance",
    on_trial: Callable[[StudyState, Any], None] | None = None,
) -> StudyRun:
    """Run ``make(seed)`` to ``n`` results of ``study`` (resuming it if ``store`` holds some).
    ``on_trial(state, scheduler)`` is called as each trial's objective starts."""
    scheduler = _scheduler(make(seed))
    own = store is None
    store = open_store(":memory:") if own else store
    ref: list[HPOTuner] = []

    def objective(report: Callable[[float, float], bool], **config: Any) -> float:
        if on_trial is not None:
            on_trial(ref[0].state, scheduler)
        return synthetic_objective(report, **config)

    tuner = HPOTuner(scheduler, objective, store=store, study=study, verbose=False)
    ref.append(tuner)
    try:
        tuner.run(n)
        return StudyRun(stream(store, study), tuner.state, scheduler)
    finally:
        if own:
            store.close()


def stream(store: Any, study: str) -> list[StreamEvent]:
    """``(kind, trial, config, resource, error)`` of each event but study/session/end."""
    table = store.events(study)
    cols = [table.column(c).to_pylist() for c in ("kind", "trial", "config", "resource", "error")]
    return [row for row in zip(*cols) if row[0] not in _SESSION_KINDS]


def _fail(check: str, make: Factory, message: str) -> ConformanceError:
    built = make(0)
    searcher = getattr(built, "searcher", None)
    name = type(built).__name__ + (f"({type(searcher).__name__})" if searcher is not None else "")
    return ConformanceError(f"{check} failed for {name}: {message}")


def _first_difference(a: list[StreamEvent], b: list[StreamEvent]) -> str:
    i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
    return f"event {i}: {a[i]} vs {b[i]}" if i is not None else f"length {len(a)} vs {len(b)}"


def check_determinism(
    make: Factory, n: int = 12, seed: int = 7, *, seeds_differ: bool = True
) -> None:
    """The same seed gives the same event stream; another seed other configurations (unless
    ``seeds_differ=False``: a searcher that ignores its seed, such as an unshuffled grid)."""
    first = run_study(make, n, seed=seed).events
    again = run_study(make, n, seed=seed).events
    if first != again:
        raise _fail("check_determinism", make,
                    f"two runs with seed {seed} differ at {_first_difference(first, again)}")  # fmt: skip
    if not seeds_differ:
        return
    other = run_study(make, 3, seed=seed + 1).events
    configs = [c for kind, _, c, _, _ in first if kind == "suggest"][:3]
    if [c for kind, _, c, _, _ in other if kind == "suggest"][:3] == configs:
        raise _fail("check_determinism", make, f"seeds {seed} and {seed + 1} propose the same")


def _in_domain(value: Any, domain: Any) -> bool:
    if isinstance(domain, (list, tuple)):
        return any(value == v and type(value) is type(v) for v in domain)
    support = getattr(domain, "support", None)
    if not callable(support):
        return bool(value == domain)  # a constant
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    low, high = support()
    discrete = hasattr(getattr(domain, "dist", None), "pmf")
    return (not discrete or isinstance(value, int)) and low <= value <= high


def check_in_space(
    make: Factory, space: Mapping[str, Any], n: int = 12, *, resource_attr: str = "max_epochs"
) -> None:
    """Every logged proposal names exactly ``space``'s hyperparameters (plus the scheduler's
    ``resource_attr``) with a native value inside its domain; of a conditional hyperparameter
    (:class:`~hpostore.space.Conditional`), exactly when its condition holds."""
    recorded = ConfigSpace(space)
    for kind, trial, config_json, _, _ in run_study(make, n).events:
        if kind != "suggest" and not (kind == "start" and config_json):
            continue
        config = json.loads(config_json)
        config.pop(resource_attr, None)
        active = recorded.active(config) if recorded.conditions else set(space)
        if set(config) != active:
            raise _fail("check_in_space", make, f"trial {trial} proposed {sorted(config)}, "
                        f"not the space's {sorted(active)} active under it")  # fmt: skip
        for name, value in config.items():
            domain = space[name]
            if not _in_domain(value, domain.domain if isinstance(domain, Conditional) else domain):
                raise _fail("check_in_space", make,
                            f"trial {trial}: {name}={value!r} is outside {space[name]!r}")  # fmt: skip


def check_restore(make: Factory, n: int = 12, seed: int = 7) -> None:
    """``restore(replay(log))`` equals the live object: for a :class:`TrialScheduler` its
    ``snapshot()`` at every trial's start and at the end; for a searcher or a FIFO scheduler,
    the next three proposals. Nothing to check when the object has no ``restore`` (it is
    resumed by re-execution, which :func:`check_resume` covers)."""
    seen: list[tuple[int, Any]] = []

    def snap(state: StudyState, scheduler: Any) -> None:
        if isinstance(scheduler, TrialScheduler):
            seen.append((state.seq, scheduler.snapshot()))

    with open_store(":memory:") as store:
        run = run_study(make, n, seed=seed, store=store, on_trial=snap)
        live = run.scheduler
        restorable = getattr(live, "restorable", None)
        if not callable(restorable) or not restorable():
            return
        table = store.events("conformance")
        logged_seed = (run.state.spec or {}).get("seed", seed)

    def restored(upto: int) -> Any:
        fresh = _scheduler(make(seed))
        _bind(fresh, logged_seed)
        fresh.restore(replay_table("conformance", table.slice(0, upto)))
        return fresh

    if isinstance(live, TrialScheduler):
        for seq, snapshot in [*seen, (table.num_rows, live.snapshot())]:
            if restored(seq).snapshot() != snapshot:
                raise _fail("check_restore", make, f"restore of the first {seq} events "
                            "differs from the live scheduler's snapshot()")  # fmt: skip
        return
    again = restored(table.num_rows)
    want = [live.suggest() for _ in range(3)]
    got = [again.suggest() for _ in range(3)]
    if got != want:
        raise _fail("check_restore", make, f"restored proposes {got}, the live one {want}")


def _bind(scheduler: Any, seed: int) -> None:
    for obj in (scheduler, getattr(scheduler, "searcher", None)):
        bind = getattr(obj, "bind_seed", None)
        if callable(bind):
            bind(seed)


def check_resume(make: Factory, n: int = 12, cuts: tuple[int, ...] = (4, 8)) -> None:
    """A study stopped after ``cuts`` results and resumed each time with fresh objects and a
    reopened DuckDB file logs the uninterrupted run's event stream."""
    reference = run_study(make, n).events
    with tempfile.TemporaryDirectory(prefix="hpostore-conformance-") as tmp:
        path = str(Path(tmp) / "resume.duckdb")
        for upto in (*cuts, n):
            with open_store(path) as store:
                resumed = run_study(make, upto, store=store).events
    if resumed != reference:
        raise _fail("check_resume", make, f"resumed after {cuts} results, the stream differs "
                    f"from the uninterrupted run's at {_first_difference(resumed, reference)}")  # fmt: skip


def check_conformance(
    make: Factory, space: Mapping[str, Any], n: int = 12, *, seeds_differ: bool = True
) -> None:
    """Every check: determinism, in-space proposals, restore == live, resume equivalence."""
    check_determinism(make, n, seeds_differ=seeds_differ)
    check_in_space(make, space, n)
    check_restore(make, n)
    check_resume(make, n)
