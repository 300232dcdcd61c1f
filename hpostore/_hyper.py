"""The textbook's ``HyperParameters`` helper and ``add_to_class``, plus JSON specs of objects.

``save_hyperparameters()`` stores the calling ``__init__``'s arguments as attributes (as d2l's
does) and keeps a snapshot of them: that snapshot is the object's *spec*, recorded in the
``study`` event so that a resumed study can check it is continued with the same setup.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np

from .errors import ConfigSpaceError
from .space import Conditional, ConfigSpace

C = TypeVar("C")


def add_to_class(cls: type) -> Callable[[C], C]:
    """Decorator that attaches a function to ``cls`` as a method (d2l's ``add_to_class``)."""

    def wrapper(fn: C) -> C:
        setattr(cls, fn.__name__, fn)  # type: ignore[attr-defined]
        return fn

    return wrapper


class HyperParameters:
    """Base class whose subclasses call ``self.save_hyperparameters()`` in ``__init__``."""

    _hparams: dict[str, Any]
    #: the arguments of the last ``save_hyperparameters()`` call (d2l's attribute)
    hparams: dict[str, Any]

    def save_hyperparameters(self, ignore: tuple[str, ...] | list[str] = ()) -> None:
        frame = inspect.currentframe()
        assert frame is not None and frame.f_back is not None
        _, _, _, local_vars = inspect.getargvalues(frame.f_back)
        hparams = {
            k: v
            for k, v in local_vars.items()
            if k not in set(ignore) | {"self", "__class__"} and not k.startswith("_")
        }
        snapshot = dict(getattr(self, "_hparams", {}))
        snapshot.update(hparams)
        self._hparams = snapshot
        self.hparams = hparams  # as d2l's: this call's arguments
        for k, v in hparams.items():
            setattr(self, k, v)

    def spec(self) -> dict[str, Any]:
        """JSON-able description: class and the arguments it was built with."""
        cls = type(self)
        args = getattr(self, "_hparams", {})
        return {
            "class": f"{cls.__module__}.{cls.__qualname__}",
            "args": {
                k: encode_value(v, where=f"{cls.__name__}.{k}") for k, v in sorted(args.items())
            },
        }


def _looks_like_space(value: Mapping[Any, Any]) -> bool:
    return any(
        isinstance(v, Conditional) or hasattr(v, "dist") and hasattr(v, "args")
        for v in value.values()
    )


def encode_value(value: Any, *, where: str) -> Any:
    """A JSON form of a constructor argument, for specs (never executed on load)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, HyperParameters):
        return value.spec()
    if isinstance(value, ConfigSpace):
        return {"config_space": value.to_json()}
    if isinstance(value, Mapping):
        if _looks_like_space(value):
            try:
                return {"config_space": ConfigSpace(value).to_json()}
            except ConfigSpaceError:
                pass
        return {str(k): encode_value(v, where=f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_value(v, where=f"{where}[{i}]") for i, v in enumerate(value)]
    if hasattr(value, "dist") and hasattr(value, "args"):
        return {"domain": str(ConfigSpace({"x": value}).domains["x"])}
    kind = type(value)
    name = getattr(value, "__qualname__", None) if callable(value) else None
    # Not JSON: recorded by type (and name) only, so the spec stays comparable across runs.
    return {"object": f"{kind.__module__}.{kind.__qualname__}", **({"name": name} if name else {})}
