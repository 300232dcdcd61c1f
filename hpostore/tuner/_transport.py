"""Sending the objective to worker processes: by reference, or by value with cloudpickle.

By reference when a fresh process can import it, else by value (a notebook, ``python -c``, a
lambda). Transport only: nothing of this goes into the log (the study spec names the objective).
"""

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


class KeywordReports:
    """The objective, given a ``report`` that also takes the Syne Tune keyword form:
    ``report(epoch=e, validation_error=v)`` means ``report(e, v)`` under
    ``HPOTuner(resource_attr="epoch", metric="validation_error")``. Picklable (a worker gets it
    in place of the objective)."""

    __slots__ = ("objective", "resource_attr", "metric")

    def __init__(self, objective: Callable[..., Any], resource_attr: str | None, metric: str) -> None:  # fmt: skip
        self.objective, self.resource_attr, self.metric = objective, resource_attr, metric

    def __call__(self, **kwargs: Any) -> Any:
        report = kwargs.get("report")
        if report is not None:
            kwargs["report"] = _KeywordReport(report, self.resource_attr, self.metric)
        return self.objective(**kwargs)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return KeywordReports, (self.objective, self.resource_attr, self.metric)


class _KeywordReport:
    __slots__ = ("report", "resource_attr", "metric")

    def __init__(self, report: Callable[..., bool], resource_attr: str | None, metric: str) -> None:  # fmt: skip
        self.report, self.resource_attr, self.metric = report, resource_attr, metric

    def __call__(self, resource: Any = None, error: Any = None, **metrics: Any) -> bool:
        if resource is None and self.resource_attr is not None:
            resource = metrics.get(self.resource_attr)
        if error is None:
            error = metrics.get(self.metric)
        if resource is None or error is None:
            from ..errors import InvalidArgument

            raise InvalidArgument(
                f"report() needs the resource and the metric: report(resource, error), or "
                f"report({self.resource_attr or '<resource_attr>'}=..., {self.metric}=...) "
                f"(HPOTuner's resource_attr and metric); got {sorted(metrics)}"
            )
        named = (self.resource_attr, self.metric)
        extra = {k: v for k, v in metrics.items() if k not in named}  # logged as metrics
        return self.report(resource, error, **extra)
