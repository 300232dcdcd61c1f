"""Rebuild a study's scheduler from its logged spec, from the built-in classes only.

No endpoint executes user-supplied code: a spec names classes and arguments, and only the
schedulers and searchers that hpostore exports are built from it (arguments decoded as JSON,
config spaces from their logged form). Anything else is refused with a clear message.
"""

from __future__ import annotations

from typing import Any

from ..errors import HPOStoreError, InvalidArgument
from ..log.events import objectives_of, upcast_spec


class ServiceError(HPOStoreError):
    """A request the service refuses; ``status`` is its HTTP status (nothing was logged)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _allowed() -> dict[str, type]:
    """The built-in schedulers and searchers, by the name a spec records."""
    from .. import schedulers, searchers
    from .._hyper import HyperParameters

    out: dict[str, type] = {}
    for module in (schedulers, searchers):
        for name in module.__all__:
            cls = getattr(module, name)
            if isinstance(cls, type) and issubclass(cls, HyperParameters):
                out[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return out


def _decode(value: Any, allowed: dict[str, type], where: str) -> Any:
    from ..space import ConfigSpace

    if isinstance(value, list):
        return [_decode(v, allowed, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    if set(value) == {"config_space"}:
        return ConfigSpace.from_json(value["config_space"])
    if set(value) <= {"class", "args"} and "class" in value:
        cls = allowed.get(str(value["class"]))
        if cls is None:
            raise ServiceError(409, f"{where}: {value['class']!r} is not a built-in scheduler or "
                               "searcher; serve this study from Python with "
                               "hpostore.serve.serve_study(tuner)")  # fmt: skip
        args = value.get("args") or {}
        return cls(**{k: _decode(v, allowed, f"{where}.{k}") for k, v in args.items()})
    if "object" in value or "domain" in value:
        raise ServiceError(409, f"{where}: the spec records {value} by name only, so it cannot "
                           "be rebuilt; serve this study from Python with serve_study(tuner)")  # fmt: skip
    return {k: _decode(v, allowed, f"{where}.{k}") for k, v in value.items()}


def rebuild(spec: dict[str, Any], study: str) -> tuple[Any, tuple[list[str], list[str]]]:
    """The scheduler a logged spec describes (built-in classes only), and (metrics, modes)."""
    spec = upcast_spec(spec, study)
    scheduler = _decode(spec.get("scheduler"), _allowed(), "scheduler")
    metrics, modes = objectives_of(spec)
    return scheduler, (list(metrics), list(modes))


def served_by_workers(**config: Any) -> None:
    """The objective of a served study: its trials run in workers, never in the server."""
    raise InvalidArgument("this study is served: its trials run in `hpostore worker` processes")
