"""Config spaces: dicts of frozen ``scipy.stats`` distributions, choices and constants.

A space is recorded as JSON in the ``study`` event and rebuilt from it, so a resumed study can
check that it is being continued with the same space. Sampling is an inverse-CDF transform of
uniforms the searcher derives from the logged seed; scipy's own RNG streams are never used.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from scipy import stats

from .errors import ConfigSpaceError

JSONScalar = bool | int | float | str | None

_HINT = (
    "Use a frozen scipy.stats distribution (e.g. stats.uniform(0, 1), stats.loguniform(1e-3, 1), "
    "stats.randint(32, 256)), a list or tuple of choices, or a constant (int, float, str, bool)."
)


def to_native(value: Any, *, where: str) -> JSONScalar:
    """``value`` as a plain Python JSON scalar (numpy scalars unwrapped); raises for anything else."""
    if isinstance(value, np.generic) or isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigSpaceError(
                f"{where}: {value!r} is not a finite number and cannot be logged"
            )
        return value
    raise ConfigSpaceError(
        f"{where}: cannot record a {type(value).__name__} ({value!r}); configs hold plain "
        "int, float, str, bool or None values"
    )


@dataclass(frozen=True, slots=True)
class ScipyDomain:
    """A frozen scipy.stats distribution, recorded by name, positional args and keywords."""

    dist: str
    args: tuple[float, ...]
    kwds: tuple[tuple[str, float], ...]

    def frozen(self) -> Any:
        return getattr(stats, self.dist)(*self.args, **dict(self.kwds))

    @property
    def is_integer(self) -> bool:
        return isinstance(getattr(stats, self.dist), stats.rv_discrete)

    def sample(self, u: float) -> int | float:
        """The value at quantile ``u`` (inverse CDF), as a plain int or float."""
        return _inverse_cdf(self)(u)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "scipy",
            "dist": self.dist,
            "args": list(self.args),
            "kwds": dict(self.kwds),
        }

    def __str__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwds]
        return f"{self.dist}({', '.join(parts)})"


@functools.lru_cache(maxsize=1024)
def _inverse_cdf(domain: ScipyDomain) -> Callable[[float], int | float]:
    """A fast inverse CDF for ``domain``: closed forms for the common families, else scipy's
    ``ppf`` (built once per domain, not per sample)."""
    kw = dict(domain.kwds)
    args = domain.args
    if domain.dist == "uniform":
        loc = float(kw.get("loc", args[0] if args else 0.0))
        scale = float(kw.get("scale", args[1] if len(args) > 1 else 1.0))
        return lambda u: loc + u * scale
    if domain.dist in ("loguniform", "reciprocal") and not kw and len(args) == 2:
        a, b = float(args[0]), float(args[1])
        lo, width = math.log(a), math.log(b) - math.log(a)
        return lambda u: min(max(math.exp(lo + u * width), a), b)
    frozen = domain.frozen()
    if domain.dist == "randint" and len(args) + len(kw) >= 2:
        low, high = (int(v) for v in frozen.support())
        return lambda u: min(low + int(u * (high - low + 1)), high)
    if domain.dist == "norm" and len(args) + len(kw) <= 2:
        return NormalDist(float(frozen.mean()), float(frozen.std())).inv_cdf
    if domain.is_integer:
        return lambda u: int(frozen.ppf(u))
    return lambda u: float(frozen.ppf(u))


@dataclass(frozen=True, slots=True)
class Choice:
    """A categorical domain: one of ``values``, uniformly."""

    values: tuple[JSONScalar, ...]

    def sample(self, u: float) -> JSONScalar:
        return self.values[min(int(u * len(self.values)), len(self.values) - 1)]

    def to_json(self) -> dict[str, Any]:
        return {"type": "choice", "values": list(self.values)}

    def __str__(self) -> str:
        return f"choice{list(self.values)}"


@dataclass(frozen=True, slots=True)
class Constant:
    """A fixed value, passed to the objective unchanged."""

    value: JSONScalar

    def sample(self, u: float) -> JSONScalar:
        return self.value

    def to_json(self) -> dict[str, Any]:
        return {"type": "constant", "value": self.value}

    def __str__(self) -> str:
        return repr(self.value)


Domain = ScipyDomain | Choice | Constant


def _number(value: Any, where: str) -> float:
    try:
        native = to_native(value, where=where)
    except ConfigSpaceError:
        native = None
    if not isinstance(native, (int, float)) or isinstance(native, bool):
        raise ConfigSpaceError(f"{where}: distribution parameters must be numbers, got {value!r}")
    return native


def to_domain(name: str, value: Any) -> Domain:
    """The domain for one config-space entry; raises :class:`ConfigSpaceError` with a hint."""
    where = f"config_space[{name!r}]"
    if isinstance(value, (ScipyDomain, Choice, Constant)):
        return value
    if isinstance(value, (stats.rv_continuous, stats.rv_discrete)):
        raise ConfigSpaceError(
            f"{where}: got the distribution family {value.name!r}, not a frozen distribution; "
            f"call it with its parameters, e.g. stats.{value.name}(...). {_HINT}"
        )
    dist = getattr(value, "dist", None)
    if isinstance(dist, (stats.rv_continuous, stats.rv_discrete)) and hasattr(value, "args"):
        family = getattr(stats, dist.name, None)
        if family is None or type(family) is not type(dist):
            raise ConfigSpaceError(
                f"{where}: the distribution {dist.name!r} is not a scipy.stats distribution that can "
                f"be recorded by name. {_HINT}"
            )
        args = tuple(_number(a, where) for a in value.args)
        kwds = tuple(sorted((k, _number(v, where)) for k, v in value.kwds.items()))
        domain = ScipyDomain(dist.name, args, kwds)
        try:
            domain.frozen().support()
        except Exception as exc:  # scipy raises assorted errors for bad parameters
            raise ConfigSpaceError(f"{where}: invalid parameters for {domain}: {exc}") from exc
        return domain
    if isinstance(value, (list, tuple)):
        if not value:
            raise ConfigSpaceError(f"{where}: an empty list of choices; give at least one value")
        return Choice(tuple(to_native(v, where=f"{where} choice {i}") for i, v in enumerate(value)))
    if value is None or isinstance(value, (bool, int, float, str, np.generic)):
        return Constant(to_native(value, where=where))
    raise ConfigSpaceError(f"{where}: cannot record a {type(value).__name__} ({value!r}). {_HINT}")


def domain_from_json(name: str, obj: Any) -> Domain:
    where = f"config_space[{name!r}]"
    if not isinstance(obj, dict) or "type" not in obj:
        raise ConfigSpaceError(f"{where}: not a recorded domain: {obj!r}")
    kind = obj["type"]
    if kind == "scipy":
        if not isinstance(
            getattr(stats, str(obj.get("dist")), None), (stats.rv_continuous, stats.rv_discrete)
        ):
            raise ConfigSpaceError(f"{where}: scipy.stats has no distribution {obj.get('dist')!r}")
        return ScipyDomain(
            str(obj["dist"]),
            tuple(obj.get("args", ())),
            tuple(sorted(dict(obj.get("kwds", {})).items())),
        )
    if kind == "choice":
        return Choice(tuple(obj["values"]))
    if kind == "constant":
        return Constant(obj["value"])
    raise ConfigSpaceError(f"{where}: unknown domain type {kind!r}")


class ConfigSpace:
    """An ordered mapping of hyperparameter names to domains.

    >>> space = ConfigSpace({"lr": stats.loguniform(1e-3, 1), "act": ["relu", "tanh"], "epochs": 10})
    >>> ConfigSpace.from_json(space.to_json()).to_json() == space.to_json()
    True
    """

    __slots__ = ("domains",)

    def __init__(self, space: Mapping[str, Any]) -> None:
        if isinstance(space, ConfigSpace):
            self.domains: dict[str, Domain] = dict(space.domains)
            return
        if not isinstance(space, Mapping):
            raise ConfigSpaceError(
                f"config_space must be a dict of name -> domain, got {type(space).__name__}. {_HINT}"
            )
        if not space:
            raise ConfigSpaceError("config_space is empty; give at least one hyperparameter")
        self.domains = {}
        for name, value in space.items():
            if not isinstance(name, str) or not name:
                raise ConfigSpaceError(f"config_space keys must be non-empty strings, got {name!r}")
            self.domains[name] = to_domain(name, value)

    @property
    def names(self) -> list[str]:
        return list(self.domains)

    @property
    def n_random(self) -> int:
        """How many uniforms one sample consumes (one per non-constant domain, in order)."""
        return sum(not isinstance(d, Constant) for d in self.domains.values())

    def sample(self, uniforms: Sequence[float]) -> dict[str, JSONScalar]:
        """The config at ``uniforms`` (each in (0, 1)), one per non-constant domain in order."""
        it = iter(uniforms)
        return {
            name: (d.value if isinstance(d, Constant) else d.sample(next(it)))
            for name, d in self.domains.items()
        }

    def to_json(self) -> dict[str, Any]:
        return {name: d.to_json() for name, d in self.domains.items()}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ConfigSpace:
        return cls({name: domain_from_json(name, d) for name, d in obj.items()})

    def check_config(
        self, config: Mapping[str, Any], *, what: str = "config"
    ) -> dict[str, JSONScalar]:
        """``config`` with native values, checked to name exactly this space's hyperparameters."""
        if not isinstance(config, Mapping):
            raise ConfigSpaceError(f"{what} must be a dict, got {type(config).__name__}")
        unknown = sorted(set(config) - set(self.domains))
        missing = [
            n for n, d in self.domains.items() if n not in config and not isinstance(d, Constant)
        ]
        if unknown or missing:
            raise ConfigSpaceError(
                f"{what} must name the config space's hyperparameters {self.names}; "
                f"unknown: {unknown}, missing: {missing}"
            )
        out: dict[str, JSONScalar] = {}
        for name, d in self.domains.items():
            value = config[name] if name in config else getattr(d, "value", None)
            out[name] = to_native(value, where=f"{what}[{name!r}]")
        return out

    def describe_difference(self, other: ConfigSpace) -> str:
        """One line per hyperparameter that differs (for mismatch errors)."""
        lines = []
        for name in sorted(set(self.domains) | set(other.domains)):
            a, b = self.domains.get(name), other.domains.get(name)
            if a != b:
                lines.append(
                    f"  {name}: logged {a if a is not None else '(absent)'}, now {b if b is not None else '(absent)'}"
                )
        return "\n".join(lines)
