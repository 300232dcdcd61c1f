"""Domains of a config space: scipy distributions by name, choices, constants, and their checks.

Each domain samples by inverse CDF (closed forms for uniform, log-uniform, randint and normal;
scipy's ``ppf`` otherwise) and is refused at construction when its samples would be NaN,
infinite, reversed or a single value. ``scipy.stats`` is imported only when a domain needs it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from statistics import NormalDist
from types import ModuleType
from typing import Any

import numpy as np

from .errors import ConfigSpaceError

JSONScalar = bool | int | float | str | None


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


def native_values(config: Mapping[str, Any], *, where: str) -> dict[str, Any]:
    """``{name: to_native(value)}`` of a proposed config (``where``: "trial 3", for errors).
    Plain ints and finite floats, the common case, pass as they are: no message is built for
    them (this runs for every proposal)."""
    out = {}
    for name, value in config.items():
        kind = type(value)
        if kind is int or kind is float and math.isfinite(value):
            out[name] = value
        else:
            out[name] = to_native(value, where=f"{where} config[{name!r}]")
    return out


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


def sampler(domain: Domain) -> Callable[[float], JSONScalar] | None:
    """``domain.sample`` as a callable to keep (the scipy inverse CDF itself, without the
    per-call cache lookup, which hashes the domain); None for a constant (it draws nothing)."""
    if isinstance(domain, Constant):
        return None
    if isinstance(domain, ScipyDomain):
        return _inverse_cdf(domain)
    return domain.sample


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
            fix = (
                f"a log scale cannot reach {a!r}: start at a small positive value, e.g. "
                f"{domain.dist}({b * 1e-6!r}, {b!r}), or use uniform({a!r}, {b - a!r})"
            )
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


def check_domain(domain: ScipyDomain, where: str) -> None:
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
