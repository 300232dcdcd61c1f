"""Resume: the study spec (build, diff against the log), the seed, and catching a scheduler up."""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

from .._hyper import HyperParameters
from .._version import __version__
from ..errors import ConfigSpaceError, ReplayDivergence, StudyMismatch
from ..log.events import FORMAT_VERSION, objectives_of, upcast_spec
from ..space import ConfigSpace
from ..study import StudyState
from ._driver import TrialProtocol
from ._objective import native_config

#: the call codes of ``StudyState.calls``
_SUGGEST = 0


def searcher_of(scheduler: Any) -> Any:
    """The scheduler's searcher (the textbook's ``scheduler.searcher``), if it has one."""
    return getattr(scheduler, "searcher", None)


def bind_seed(scheduler: Any, seed: int) -> None:
    """Give the study's logged seed to the scheduler and its searcher (those that take one)."""
    for obj in (scheduler, searcher_of(scheduler)):
        bind = getattr(obj, "bind_seed", None)
        if callable(bind):
            bind(seed)


def new_seed(scheduler: Any) -> int:
    """The seed of a new study: the searcher's own, else a random one (logged by the study)."""
    seed = getattr(searcher_of(scheduler), "seed", None)
    if isinstance(seed, int) and not isinstance(seed, bool):
        return seed
    return int.from_bytes(os.urandom(8), "little") >> 1


#: (metric names, modes) of a study that names none: minimize "error"
DEFAULT_OBJECTIVES: tuple[tuple[str, ...], tuple[str, ...]] = (("error",), ("min",))


def new_study_spec(
    scheduler: Any,
    objective_name: str,
    objectives: tuple[tuple[str, ...], tuple[str, ...]] = DEFAULT_OBJECTIVES,
) -> dict[str, Any]:
    """The spec of a new study, its seed drawn (if the searcher has none) and bound first."""
    seed = new_seed(scheduler)
    bind_seed(scheduler, seed)
    return build_spec(scheduler, objective_name, seed, objectives)


def build_spec(
    scheduler: Any,
    objective_name: str,
    seed: int,
    objectives: tuple[tuple[str, ...], tuple[str, ...]] = DEFAULT_OBJECTIVES,
) -> dict[str, Any]:
    """The ``study`` event's payload: format, version, objectives, space, scheduler spec, seed
    (one objective: ``metric``/``mode`` are strings, as in v1; several: lists)."""
    metric, mode = objectives
    searcher = searcher_of(scheduler)
    space = getattr(searcher, "space", None) or getattr(searcher, "config_space", None)
    scheduler_spec = (
        scheduler.spec()
        if isinstance(scheduler, HyperParameters)
        else {"class": f"{type(scheduler).__module__}.{type(scheduler).__qualname__}"}
    )
    return {
        "format_version": FORMAT_VERSION,
        "hpostore_version": __version__,
        "metric": metric[0] if len(metric) == 1 else list(metric),
        "mode": mode[0] if len(mode) == 1 else list(mode),
        "seed": seed,
        "space": None if space is None else ConfigSpace(space).to_json(),
        "scheduler": scheduler_spec,
        "objective": objective_name,
    }


def _diff(logged: Any, now: Any, path: str = "") -> list[str]:
    if isinstance(logged, dict) and isinstance(now, dict):
        out = []
        for k in sorted(set(logged) | set(now), key=str):
            sub = f"{path}.{k}" if path else str(k)
            out += _diff(logged.get(k, "(absent)"), now.get(k, "(absent)"), sub)
        return out
    return (
        [] if logged == now else [f"  {path}: logged {json.dumps(logged)}, now {json.dumps(now)}"]
    )


def check_spec(
    logged: dict[str, Any],
    scheduler: Any,
    objective_name: str,
    study: str,
    where: str,
    objectives: tuple[tuple[str, ...], tuple[str, ...]] = DEFAULT_OBJECTIVES,
) -> None:
    """Bind the logged seed and refuse a setup that differs from the logged one."""
    was = objectives_of(upcast_spec(logged, study))
    if was != objectives:
        raise StudyMismatch(
            f"study {study!r} in {where} was created with metric={_plain(was[0])}, "
            f"mode={_plain(was[1])}, not metric={_plain(objectives[0])}, "
            f"mode={_plain(objectives[1])}. Resume it with the original metric and mode, or "
            "give this setup a new study name."
        )
    seed = logged.get("seed")
    if isinstance(seed, int):
        bind_seed(scheduler, seed)
    now = build_spec(scheduler, objective_name, seed if isinstance(seed, int) else 0)
    for key, what in (("space", "config space"), ("scheduler", "searcher/scheduler")):
        if logged.get(key) != now[key]:
            detail = "\n".join(_diff(logged.get(key), now[key])[:8])
            raise StudyMismatch(
                f"study {study!r} in {where} was created with a different {what}:\n"
                f"{detail}\nResume it with the original setup, or give this one a new study name."
            )


def _plain(names: tuple[str, ...]) -> str:
    return repr(names[0]) if len(names) == 1 else repr(list(names))


def catch_up(
    protocol: TrialProtocol, state: StudyState, *, caught_up: bool, trust_log: bool, study: str
) -> None:
    """Bring the scheduler to the log's ``state`` at the start of a session.

    A scheduler that overrides ``restore`` gets ``restore(state)`` with the live fold, every
    session (it may keep the reference and read trials from it). One that does not is re-executed
    against the log, once per tuner (``caught_up``: it already was, or the study was new).
    """
    if protocol.overrides_restore():
        protocol.restore(state)  # an error inside it is an error, never "re-execute instead"
    elif not caught_up:
        reexecute(protocol, state, trust_log=trust_log, study=study)


def reexecute(protocol: TrialProtocol, state: StudyState, *, trust_log: bool, study: str) -> None:
    """Replay the scheduler's logged calls, checking each re-drawn config against the log."""
    warned = False
    for code, trial in state.calls:
        t = state.trials[trial]
        if code != _SUGGEST:
            protocol.replay_result(t)
            continue
        try:
            redrawn: Any = native_config(protocol.replay_suggest(trial), trial=trial)
        except ConfigSpaceError as exc:
            redrawn = f"<{exc}>"
        if redrawn == t.config:
            continue
        if not trust_log:
            raise ReplayDivergence(
                f"study {study!r}, trial {trial}: re-executing the scheduler to resume "
                f"proposed {redrawn} but the log records {t.config}. The searcher is not "
                "deterministic given the log (e.g. it draws from numpy's global RNG without a "
                "seed). Seed it (np.random.seed(...) before building it, or use "
                "RandomSearcher(..., seed=...)), or pass trust_log=True to HPOTuner to continue "
                "with the logged configurations.",
                trial=trial,
            )
        if not warned:
            warnings.warn(
                f"study {study!r}: trial {trial} re-drew a different config; continuing "
                "with the logged configs (trust_log=True)",
                stacklevel=4,
            )
            warned = True
