"""Config spaces: dicts of frozen ``scipy.stats`` distributions, choices and constants.

A space is recorded as JSON in the ``study`` event and rebuilt from it, so a resumed study can
check that it is being continued with the same space. Sampling is an inverse-CDF transform of
uniforms the searcher derives from the logged seed; scipy's own RNG streams are never used.
``scipy.stats`` (about a second to import) is imported only where a space is built from it or
sampled beyond the closed forms, so reading a store or importing hpostore never loads it.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from types import ModuleType
from typing import Any

import numpy as np

from .errors import ConfigSpaceError

JSONScalar = bool | int | float | str | None

_HINT = (
    "Use a frozen scipy.stats distribution (e.g. stats.uniform(0, 1), stats.loguniform(1e-3, 1), "
    "stats.randint(32, 256)), a list or tuple of choices, or a constant (int, float, str, bool)."
)


# Families whose kind is known without importing scipy (True: integer-valued).
_KNOWN_FAMILIES = {"uniform": False, "loguniform": False, "reciprocal": False, "norm": False}
_KNOWN_FAMILIES["randint"] = True


def _stats() -> ModuleType:
    """``scipy.stats``, imported on first use (it costs about a second)."""
    from scipy import stats

    return stats


def check_text(value: str, *, where: str) -> str:
    """``value`` if it can be logged as text: valid UTF-8 (no lone surrogates), no NUL."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigSpaceError(
            f"{where}: {value!r} is not valid UTF-8 text ({exc.reason} at index {exc.start}); "
            "use a plain Unicode string"
        ) from None
    if "\x00" in value:
        raise ConfigSpaceError(
            f"{where}: {value!r} contains a NUL character, which the log's text columns and SQL "
            "readers cannot hold; remove it"
        )
    return value


def to_native(value: Any, *, where: str) -> JSONScalar:
    """``value`` as a plain Python JSON scalar (numpy scalars unwrapped); raises for anything else."""
    if isinstance(value, np.generic) or isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, str):
        return check_text(value, where=where)
    if value is None or isinstance(value, (bool, int)):
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
        return getattr(_stats(), self.dist)(*self.args, **dict(self.kwds))

    @property
    def is_integer(self) -> bool:
        known = _KNOWN_FAMILIES.get(self.dist)
        if known is not None:
            return known
        stats = _stats()
        return isinstance(getattr(stats, self.dist), stats.rv_discrete)

    def support(self) -> tuple[float, float]:
        """The smallest and largest value (closed forms for uniform, log-uniform, randint)."""
        form = _closed_form(self)
        if form is not None:
            family, a, b = form
            return (float(a), float(a + b)) if family == "uniform" else (float(a), float(b))
        low, high = self.frozen().support()
        return float(low), float(high)

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


def _params(domain: ScipyDomain, names: tuple[str, ...], defaults: tuple[float, ...]) -> Any:
    """The parameters ``names`` of ``domain`` (positional, then keywords, then ``defaults`` for
    the trailing ones), or None when they are given some other way."""
    kw = dict(domain.kwds)
    if len(domain.args) > len(names) or set(kw) - set(names[len(domain.args) :]):
        return None
    values = list(domain.args) + [kw.get(n) for n in names[len(domain.args) :]]
    n_required = len(names) - len(defaults)
    for i in range(n_required, len(names)):
        if values[i] is None:
            values[i] = defaults[i - n_required]
    return None if None in values else values


def _closed_form(domain: ScipyDomain) -> tuple[str, float, float] | None:
    """A uniform ``(loc, scale)``, log-uniform ``(a, b)`` or randint ``(low, largest value)``
    domain given the plain way, as (family, p0, p1); None otherwise. May be degenerate."""
    if domain.dist == "uniform" and (p := _params(domain, ("loc", "scale"), (0.0, 1.0))):
        return "uniform", p[0], p[1]
    if domain.dist in ("loguniform", "reciprocal") and (
        p := _params(domain, ("a", "b", "loc", "scale"), (0.0, 1.0))
    ):
        return ("loguniform", p[0], p[1]) if p[2:] == [0.0, 1.0] else None
    if domain.dist == "randint" and (p := _params(domain, ("low", "high", "loc"), (0,))):
        return "randint", p[0] + p[2], p[1] - 1 + p[2]
    return None


@functools.lru_cache(maxsize=1024)
def _inverse_cdf(domain: ScipyDomain) -> Callable[[float], int | float]:
    """A fast inverse CDF for ``domain``: closed forms for the common families, else scipy's
    ``ppf`` (built once per domain, not per sample)."""
    form = _closed_form(domain)
    if form is not None:
        family, a, b = form
        if family == "uniform":  # a = loc, b = scale
            return lambda u: a + u * b
        if family == "loguniform":
            lo, width = math.log(a), math.log(b) - math.log(a)
            return lambda u: min(max(math.exp(lo + u * width), a), b)
        low, high = int(a), int(b)
        return lambda u: min(low + int(u * (high - low + 1)), high)
    if domain.dist == "norm" and (p := _params(domain, ("loc", "scale"), (0.0, 1.0))):
        return NormalDist(float(p[0]), float(p[1])).inv_cdf
    frozen = domain.frozen()
    if domain.is_integer:
        return lambda u: int(frozen.ppf(u))
    return lambda u: float(frozen.ppf(u))


@dataclass(frozen=True, slots=True)
class Choice:
    """A categorical domain: one of ``values``, uniformly."""

    values: tuple[JSONScalar, ...]
    # value -> first index, by exact type first (True is not 1), then by equality (1.0 is 1)
    _exact: dict[tuple[type, JSONScalar], int] = field(
        init=False, repr=False, compare=False, hash=False
    )
    _equal: dict[JSONScalar, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        exact: dict[tuple[type, JSONScalar], int] = {}
        equal: dict[JSONScalar, int] = {}
        for i, v in enumerate(self.values):
            exact.setdefault((type(v), v), i)
            equal.setdefault(v, i)
        object.__setattr__(self, "_exact", exact)
        object.__setattr__(self, "_equal", equal)

    def index(self, value: Any) -> int:
        """The position of ``value`` among the choices (O(1)); ValueError if it is none of them."""
        try:
            found = self._exact.get((type(value), value))
            return found if found is not None else self._equal[value]
        except (KeyError, TypeError):
            raise ValueError(f"{value!r} is not one of the {len(self.values)} choices") from None

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
        raise ConfigSpaceError(
            f"{where}: distribution parameters must be finite numbers, got {value!r}"
        )
    return native


def _check_closed_form(domain: ScipyDomain, where: str) -> None:
    """Refuse a uniform/log-uniform/randint range that is empty, a single value or reversed,
    with the fix in the message (scipy itself would only give NaN samples or a math error)."""
    form = _closed_form(domain)
    if form is None:
        return
    family, a, b = form
    if family == "uniform" and not b > 0:
        fix = (
            f"for the range [{a + b!r}, {a!r}] write uniform({a + b!r}, {-b!r})"
            if b < 0
            else f"for the single value {a!r} use the constant {a!r}"
        )
        raise ConfigSpaceError(
            f"{where}: {domain} has scale={b!r}, but `scale > 0` must hold: uniform(loc, scale) "
            f"draws from [loc, loc + scale] (the second argument is a width, not an upper "
            f"bound); {fix}"
        )
    if family == "loguniform" and not 0 < a < b:
        if a <= 0:
            fix = f"a log scale cannot reach {a!r}: start at a small positive value, e.g. {domain.dist}({b * 1e-6!r}, {b!r}), or use uniform({a!r}, {b - a!r})"
        elif a == b:
            fix = f"the range is the single value {a!r}: use the constant {a!r}"
        else:
            fix = f"swap them: {domain.dist}({b!r}, {a!r})"
        raise ConfigSpaceError(
            f"{where}: {domain} needs `0 < low < high`, but got (low={a!r}, high={b!r}); {fix}"
        )
    if family == "randint" and not b >= a:  # a single value is refused below, as for others
        low, high = a, b + 1
        raise ConfigSpaceError(
            f"{where}: {domain} draws the integers low, ..., high - 1, so `low < high` must hold, "
            f"but got (low={low!r}, high={high!r}); for the single value {low!r} use the constant "
            f"{low!r}, for {low!r} to N inclusive write randint({low!r}, N + 1)"
        )


def _check_domain(domain: ScipyDomain, where: str) -> None:
    """Refuse parameters whose samples would be NaN, infinite or always the same value."""
    _check_closed_form(domain, where)
    try:
        low, high = domain.support()
        samples = [_inverse_cdf(domain)(u) for u in (1e-12, 0.5, 1.0 - 1e-12)]
    except (ArithmeticError, TypeError, ValueError) as exc:  # scipy's errors for bad parameters
        raise ConfigSpaceError(
            f"{where}: {domain} has invalid parameters (scipy.stats says: {exc}); check the "
            "family's parameter ranges in the scipy.stats documentation"
        ) from exc
    if math.isnan(low) or math.isnan(high) or not all(math.isfinite(x) for x in samples):
        raise ConfigSpaceError(
            f"{where}: {domain} has invalid parameters (scipy.stats gives NaN or infinite values "
            "for them); check the family's parameter ranges, e.g. scale > 0"
        )
    if low == high or samples[0] == samples[2]:
        raise ConfigSpaceError(
            f"{where}: {domain} always gives {samples[1]!r}; use the constant {samples[1]!r} "
            "or widen the distribution"
        )


def _scipy_family(value: Any) -> Any:
    """The scipy.stats family (rv_continuous/rv_discrete instance) that ``value`` is or freezes,
    else None; scipy.stats is looked up only if the caller already imported it."""
    stats = sys.modules.get("scipy.stats")
    if stats is None:
        return None
    families = (stats.rv_continuous, stats.rv_discrete)
    if isinstance(value, families):
        return value
    dist = getattr(value, "dist", None)
    return dist if isinstance(dist, families) and hasattr(value, "args") else None


def to_domain(name: str, value: Any) -> Domain:
    """The domain for one config-space entry; raises :class:`ConfigSpaceError` with a hint."""
    where = f"config_space[{name!r}]"
    if isinstance(value, (ScipyDomain, Choice, Constant)):
        return value
    dist = _scipy_family(value)
    if dist is value:
        raise ConfigSpaceError(
            f"{where}: got the distribution family {dist.name!r}, not a frozen distribution; "
            f"call it with its parameters, e.g. stats.{dist.name}(...). {_HINT}"
        )
    if dist is not None:
        family = getattr(_stats(), dist.name, None)
        if family is None or type(family) is not type(dist):
            raise ConfigSpaceError(
                f"{where}: the distribution {dist.name!r} is not a scipy.stats distribution that can "
                f"be recorded by name. {_HINT}"
            )
        args = tuple(_number(a, where) for a in value.args)
        kwds = tuple(sorted((k, _number(v, where)) for k, v in value.kwds.items()))
        domain = ScipyDomain(dist.name, args, kwds)
        _check_domain(domain, where)
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
        if obj.get("dist") not in _KNOWN_FAMILIES and not isinstance(
            getattr(_stats(), str(obj.get("dist")), None),
            (_stats().rv_continuous, _stats().rv_discrete),
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

    >>> from scipy import stats
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
            check_text(name, where="config_space key")
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
