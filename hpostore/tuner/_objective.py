"""The objective call: signature check, injected arguments, result classification (also in workers)."""

from __future__ import annotations

import contextlib
import inspect
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from .._processes import worker_name
from ..errors import ConfigSpaceError, InvalidArgument, ObjectiveSignatureError
from ..space import native_values

#: the metric a study minimizes by default; an objective may return it alone or in a dict
METRIC = "error"
MODES = ("min", "max")


def check_objectives(metric: Any, mode: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(metric names, modes)`` of ``HPOTuner(metric=..., mode=...)``: a name and "min"/"max",
    or lists of equal length (multi-objective); raises :class:`InvalidArgument` otherwise."""
    metrics = tuple(metric) if isinstance(metric, (list, tuple)) else (metric,)
    modes = tuple(mode) if isinstance(mode, (list, tuple)) else (mode,)
    if len(modes) == 1 and len(metrics) > 1:
        modes = modes * len(metrics)
    if not metrics or not all(isinstance(m, str) and m for m in metrics):
        raise InvalidArgument(f"metric must be a name or a list of names, got {metric!r}")
    if len(set(metrics)) != len(metrics):
        raise InvalidArgument(f"metric names must differ, got {metric!r}")
    if len(modes) != len(metrics) or not all(m in MODES for m in modes):
        raise InvalidArgument(
            f"mode must be 'min' or 'max' (or a list of them, one per metric {list(metrics)}), "
            f"got {mode!r}"
        )
    return metrics, modes


def native_config(config: Any, *, trial: int) -> dict[str, Any]:
    """A config as a dict of plain JSON scalars (numpy scalars unwrapped)."""
    if not isinstance(config, dict) and not isinstance(config, Mapping):  # dict: no ABC check
        raise ConfigSpaceError(
            f"trial {trial}: the scheduler suggested a {type(config).__name__}, not a dict"
        )
    for name in config:
        if not isinstance(name, str):
            raise ConfigSpaceError(f"trial {trial}: config keys must be strings, got {name!r}")
    return native_values(config, where=f"trial {trial}")


def check_multi_objective(scheduler: Any, metric: tuple[str, ...]) -> None:
    """Refuse a multi-objective study under a scheduler that ranks trials by one error (early
    stopping: ASHA, Hyperband, successive halving, median stopping) unless it declares
    ``supports_multi_objective = True``; a textbook FIFO scheduler runs every trial."""
    from ..schedulers.base import TrialScheduler

    if len(metric) < 2 or not isinstance(scheduler, TrialScheduler):
        return
    if getattr(scheduler, "supports_multi_objective", False):
        return
    raise InvalidArgument(
        f"{type(scheduler).__name__} stops or promotes trials by one error, which is not "
        f"defined for the objectives {list(metric)}; use BasicScheduler (every trial runs to "
        "the end) with a multi-objective study, or optimize one metric"
    )


def _describe(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not hide the broken result
        text = f"<repr failed: {type(exc).__name__}>"
    return f"a {type(value).__name__} ({text:.80})"


def as_error(value: Any) -> tuple[float | None, str | None]:
    """(error, None) for a usable objective value, else (None, why not).

    Usable: anything that converts to a finite float, or a dict holding one under ``"error"``.
    Never raises: a value whose conversion fails is a failed trial, not a failed study.
    """
    if isinstance(value, Mapping):
        if METRIC not in value:
            keys = ", ".join(repr(k) for k in list(value)[:8])
            return None, (
                f"the objective returned a dict without {METRIC!r} (keys: {keys}); return the "
                f"error to minimize, or a dict with an {METRIC!r} entry"
            )
        value = value[METRIC]
    if value is None:
        return (
            None,
            "the objective returned None; it must return the error to minimize (a finite number)",
        )
    if isinstance(value, (str, bytes, bool)):
        return None, f"the objective returned {_describe(value)}, not a number"
    try:
        error = float(value)
    except (TypeError, ValueError):
        return None, f"the objective returned {_describe(value)}, not a number"
    except OverflowError:
        return None, f"the objective returned {_describe(value)}, too large for a float"
    except Exception as exc:  # a __float__ that raises: the result is unusable, the study goes on
        return None, (
            f"the objective returned {_describe(value)}, whose conversion to float raised "
            f"{type(exc).__name__}: {exc}"
        )
    if not math.isfinite(error):
        return None, f"the objective returned {error}; errors must be finite"
    return error, None


def classify(value: Any) -> tuple[float | None, dict[str, float] | None, str | None]:
    """``(error, metrics, why not)`` of what an objective returned: a number is the error; a
    dict is a set of metrics (every value a finite number; the tuner picks its objectives
    from it, :func:`resolve`). Never raises."""
    if type(value) is float and math.isfinite(value):
        return value, None, None  # the common case, without the ABC checks below
    if not isinstance(value, Mapping):
        error, why = as_error(value)
        return error, None, why
    metrics: dict[str, float] = {}
    for name, item in value.items():
        if not isinstance(name, str):
            return None, None, f"the objective returned a dict with a key {name!r}; use names"
        number, why = as_error(item)
        if why is not None:
            return None, None, f"metric {name!r}: {why}"
        assert number is not None
        metrics[name] = number
    return None, metrics, None


def _exception_message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception as inner:  # a broken __str__ must not hide the failure it describes
        text = f"<str() failed: {type(inner).__name__}>"
    return f"{type(exc).__name__}: {text}"


class TrialOutcome(NamedTuple):
    """What a trial call returns: the error (None if unusable, with ``message``), timings.

    An immutable record built once per trial: a named tuple, as it costs a third of what a
    frozen dataclass's ``__init__`` does (~0.6 µs a trial).
    """

    error: float | None
    message: str | None
    runtime: float
    worker: str
    #: every metric of a dict the objective returned (None for a plain number), measured
    metrics: dict[str, float] | None = None


def resolve(outcome: TrialOutcome, metric: tuple[str, ...]) -> TrialOutcome:
    """``outcome`` with its error taken from its metrics for the objectives ``metric`` (the
    first one's value as measured); a result without every objective is a failed trial."""
    if outcome.message is not None:
        return outcome
    metrics = outcome.metrics
    if metrics is None:
        if len(metric) == 1:
            return outcome
        why = (
            f"the objective returned one number, but the study has objectives {list(metric)}; "
            "return a dict with an entry for each"
        )
        return TrialOutcome(None, why, outcome.runtime, outcome.worker)
    missing = [m for m in metric if m not in metrics]
    if missing:
        keys = ", ".join(repr(k) for k in list(metrics)[:8])
        why = (
            f"the objective returned a dict without {missing[0]!r} (keys: {keys}); return the "
            f"metric to optimize{'' if len(metric) == 1 else 's ' + str(list(metric))}, or a "
            f"dict with {'an entry' if len(metric) == 1 else 'entries'} for "
            f"{metric[0] if len(metric) == 1 else 'each'}"
        )
        return TrialOutcome(None, why, outcome.runtime, outcome.worker)
    return TrialOutcome(metrics[metric[0]], None, outcome.runtime, outcome.worker, metrics)


def run_trial(
    objective: Callable[..., Any],
    kwargs: dict[str, Any],
    reporter: Callable[[float, float], bool] | None,
    clock: Callable[[], float] = time.monotonic,
) -> TrialOutcome:
    """Run ``objective(**kwargs)`` (with ``report=reporter`` when given) and classify it.

    Whatever the objective raises, ``SystemExit`` included, is data (a failed trial): it is
    caught here and sent back as a message, so the worker stays healthy and no traceback has to
    cross processes. Only ``KeyboardInterrupt`` (the user's Ctrl-C) leaves this function.
    """
    if reporter is not None:  # a copy (the caller's dict stays as it was)
        kwargs = {**kwargs, "report": reporter}
    t0 = clock()
    message: str | None
    try:
        value = objective(**kwargs)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # the objective's failure is data: logged, and the study goes on
        error, metrics, message = None, None, _exception_message(exc)
    else:
        error, metrics, message = classify(value)
    return TrialOutcome(error, message, clock() - t0, worker_name(), metrics)


class ObjectiveCall:
    """The objective and what the tuner passes it besides the config."""

    def __init__(self, objective: Callable[..., Any]) -> None:
        if not callable(objective):
            raise InvalidArgument(
                f"objective must be callable as objective(**config), got {type(objective).__name__}"
            )
        self.objective = objective
        self.name: str = getattr(objective, "__qualname__", type(objective).__qualname__)
        self._signature: inspect.Signature | None = None
        with contextlib.suppress(TypeError, ValueError):
            self._signature = inspect.signature(objective)
        params = self._signature.parameters if self._signature is not None else {}
        #: the objective takes a ``report`` callable (intermediate results)
        self.wants_report = "report" in params
        #: the objective takes a ``checkpoint_dir`` (a directory per trial, kept across resumes)
        self.wants_checkpoint = "checkpoint_dir" in params
        #: the study's objectives and modes (``HPOTuner(metric=..., mode=...)``)
        self.objectives: tuple[tuple[str, ...], tuple[str, ...]] = ((METRIC,), ("min",))
        self._checked: set[frozenset[str]] = set()

    def check(self, config: dict[str, Any], trial: int) -> None:
        """Raise :class:`ObjectiveSignatureError` unless ``objective(**config, ...)`` binds."""
        keys = frozenset(config)
        if self._signature is None or keys in self._checked:
            return  # binding depends on the keys only: check each key set once
        extra = self.extra(None, None)
        clash = sorted(set(extra) & set(config))
        if clash:
            raise ObjectiveSignatureError(
                f"trial {trial}: the config has a {clash[0]!r} entry, but the objective's "
                f"`{clash[0]}` parameter receives what the tuner passes; rename the hyperparameter"
            )
        try:
            self._signature.bind(**config, **extra)
        except TypeError as exc:
            raise ObjectiveSignatureError(
                f"trial {trial}: the objective {self.name}{self._signature} cannot be called with "
                f"the config {config}: {exc}. The config space's names must match the "
                "objective's parameters."
            ) from None
        self._checked.add(keys)

    def extra(self, report: Any, checkpoint_dir: str | None) -> dict[str, Any]:
        """What the tuner passes besides the config (placeholders when checking the signature)."""
        extra: dict[str, Any] = {}
        if self.wants_report:
            extra["report"] = report
        if self.wants_checkpoint:
            extra["checkpoint_dir"] = checkpoint_dir
        return extra

    def check_picklable(self) -> None:
        """Raise :class:`InvalidArgument` unless the objective can travel to worker processes."""
        from multiprocessing.reduction import ForkingPickler

        try:  # what the process pool will do with it, tried up front for a clear message
            ForkingPickler.dumps(self.objective)
        except Exception as exc:
            raise InvalidArgument(
                f"the objective {self.name} cannot be sent to worker processes "
                f"({type(exc).__name__}: {exc}); with n_workers > 1 it must be picklable: a "
                "module-level function (not a lambda or a closure), defined in an importable "
                "module or under `if __name__ == '__main__':` guarded scripts"
            ) from None
