"""Sending the objective to worker processes: by reference when a fresh process can import it,
else by value with cloudpickle (a notebook, ``python -c``, a lambda). Transport only: nothing of
this goes into the log (the study spec names the objective)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _importable(fn: Any) -> bool:
    """Whether a fresh worker process finds ``fn`` by its module and qualified name."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", "")
    if module in (None, "__main__", "__mp_main__") or "<" in qualname:
        return False  # __main__ of a notebook / python -c is not the worker's; lambdas, locals
    from multiprocessing.reduction import ForkingPickler

    try:
        ForkingPickler.dumps(fn)
    except Exception:  # any pickling failure: send it by value instead
        return False
    return True


class ByValue:
    """A callable that travels as cloudpickle bytes and is rebuilt once per worker process."""

    __slots__ = ("_blob", "_fn")

    def __init__(self, blob: bytes) -> None:
        self._blob = blob
        self._fn: Callable[..., Any] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        fn = self._fn
        if fn is None:
            import cloudpickle

            fn = self._fn = cloudpickle.loads(self._blob)
        return fn(*args, **kwargs)

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return ByValue, (self._blob,)


def for_workers(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` itself if workers can import it, else a :class:`ByValue` of it."""
    if _importable(fn):
        return fn
    import cloudpickle

    return ByValue(cloudpickle.dumps(fn))
