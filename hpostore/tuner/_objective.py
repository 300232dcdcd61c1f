"""The objective call: signature check, injected arguments, result classification (also in workers)."""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigSpaceError, InvalidArgument, ObjectiveSignatureError
from ..space import to_native

#: the metric a study minimizes; an objective may return it alone or in a dict under this key
METRIC = "error"


def native_config(config: Any, *, trial: int) -> dict[str, Any]:
    """A config as a dict of plain JSON scalars (numpy scalars unwrapped)."""
    if not isinstance(config, Mapping):
        raise ConfigSpaceError(
            f"trial {trial}: the scheduler suggested a {type(config).__name__}, not a dict"
        )
    out = {}
    for name, value in config.items():
        if not isinstance(name, str):
            raise ConfigSpaceError(f"trial {trial}: config keys must be strings, got {name!r}")
        out[name] = to_native(value, where=f"trial {trial} config[{name!r}]")
    return out


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


def _exception_message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception as inner:  # a broken __str__ must not hide the failure it describes
        text = f"<str() failed: {type(inner).__name__}>"
    return f"{type(exc).__name__}: {text}"


@dataclass(frozen=True, slots=True)
class TrialOutcome:
    """What a trial call returns: the error (None if unusable, with ``message``), timings."""

    error: float | None
    message: str | None
    runtime: float
    worker: str


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
    kwargs = dict(kwargs)
    if reporter is not None:
        kwargs["report"] = reporter
    t0 = clock()
    message: str | None
    try:
        value = objective(**kwargs)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # the objective's failure is data: logged, and the study goes on
        error, message = None, _exception_message(exc)
    else:
        error, message = as_error(value)
    return TrialOutcome(error, message, clock() - t0, f"{socket.gethostname()}:{os.getpid()}")


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
