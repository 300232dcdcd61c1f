"""Config spaces: dicts of frozen ``scipy.stats`` distributions, choices, constants, conditions.

A space is recorded as JSON in the ``study`` event and rebuilt from it, so a resumed study can
check that it is being continued with the same space. Sampling is an inverse-CDF transform of
uniforms the searcher derives from the logged seed; scipy's own RNG streams are never used.
``scipy.stats`` (about a second to import) is imported only where a space is built from it or
sampled beyond the closed forms, so reading a store or importing hpostore never loads it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._conditions import (
    Condition,
    Conditional,
    check_conditions,
    matcher,
    matches,
    to_condition,
    topological_order,
)
from ._domains import (
    _KNOWN_FAMILIES,
    Choice,
    Constant,
    Domain,
    JSONScalar,
    ScipyDomain,
    _stats,
    check_domain,
    check_text,
    native_values,
    sampler,
    to_native,
)
from .errors import ConfigSpaceError

__all__ = [
    "Choice",
    "Condition",
    "Conditional",
    "ConfigSpace",
    "Constant",
    "Domain",
    "JSONScalar",
    "ScipyDomain",
    "check_text",
    "domain_from_json",
    "native_values",
    "to_domain",
    "to_native",
]

_HINT = (
    "Use a frozen scipy.stats distribution (e.g. stats.uniform(0, 1), stats.loguniform(1e-3, 1), "
    "stats.randint(32, 256)), a list or tuple of choices, or a constant (int, float, str, bool)."
)


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
        check_domain(domain, where)
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
    """An ordered mapping of hyperparameter names to domains, some of them conditional.

    An entry wrapped in :class:`Conditional` exists only when its parents take the given
    values; otherwise it is absent from the config (see :class:`Conditional`).

    >>> from scipy import stats
    >>> space = ConfigSpace({"lr": stats.loguniform(1e-3, 1), "act": ["relu", "tanh"], "epochs": 10})
    >>> ConfigSpace.from_json(space.to_json()).to_json() == space.to_json()
    True
    """

    __slots__ = ("domains", "conditions", "_order", "_allowed", "_samplers")
    domains: dict[str, Domain]
    conditions: dict[str, Condition]
    _order: tuple[str, ...]  # parents before children
    _allowed: dict[tuple[str, str], frozenset[Any]]  # (child, parent) -> what matches
    #: per domain (name, its sampler or None for a constant, the constant's value), and how
    #: many draw: built from ``domains`` (fixed by then) at the first :meth:`sample`, which
    #: runs once per proposal; never pickled (a sampler may be a lambda)
    _samplers: tuple[tuple[tuple[str, Any, JSONScalar], ...], int] | None

    def __init__(self, space: Mapping[str, Any]) -> None:
        if isinstance(space, ConfigSpace):
            self.domains = dict(space.domains)
            self.conditions = dict(space.conditions)
            self._order = space._order
            self._allowed = space._allowed
            self._samplers = None
            return
        if not isinstance(space, Mapping):
            raise ConfigSpaceError(
                f"config_space must be a dict of name -> domain, got {type(space).__name__}. {_HINT}"
            )
        if not space:
            raise ConfigSpaceError("config_space is empty; give at least one hyperparameter")
        self._samplers = None
        self.domains = {}
        self.conditions = {}
        for name, value in space.items():
            if not isinstance(name, str) or not name:
                raise ConfigSpaceError(f"config_space keys must be non-empty strings, got {name!r}")
            check_text(name, where="config_space key")
            if isinstance(value, Conditional):
                self.conditions[name] = to_condition(name, value.when)
                value = value.domain
            self.domains[name] = to_domain(name, value)
        check_conditions(self.domains, self.conditions)
        # parents before children, to decide which hyperparameters are active in one pass
        self._order = topological_order(list(self.domains), self.conditions)
        self._allowed = {
            (name, parent): matcher(self.domains[parent], values)
            for name, c in self.conditions.items()
            for parent, values in c.when
        }

    def active(self, values: Mapping[str, Any]) -> set[str]:
        """The hyperparameters active under ``values`` (a full assignment, or a config in which
        inactive ones are absent; constants may be omitted)."""
        active: set[str] = set()
        for name in self._order:
            condition = self.conditions.get(name)
            if condition is None or all(
                parent in active
                and matches(
                    self.domains[parent],
                    self._allowed[name, parent],
                    values[parent]
                    if parent in values
                    else getattr(self.domains[parent], "value", None),
                )
                for parent in condition.parents
            ):
                active.add(name)
        return active

    @property
    def names(self) -> list[str]:
        return list(self.domains)

    @property
    def n_random(self) -> int:
        """How many uniforms one sample consumes (one per non-constant domain, in order)."""
        return self._sampling()[1]

    def _sampling(self) -> tuple[tuple[tuple[str, Any, JSONScalar], ...], int]:
        sampling = self._samplers
        if sampling is None:
            entries = tuple(
                (name, sampler(d), getattr(d, "value", None)) for name, d in self.domains.items()
            )
            sampling = self._samplers = (entries, sum(e[1] is not None for e in entries))
        return sampling

    def sample(self, uniforms: Sequence[float]) -> dict[str, JSONScalar]:
        """The config at ``uniforms`` (each in (0, 1)), one per non-constant domain in order.

        Every domain consumes its uniform whether or not it is active, so the map from
        uniforms to configs keeps one dimension per hyperparameter; inactive ones are dropped.
        """
        it = iter(uniforms)
        full: dict[str, JSONScalar] = {}
        for name, draw, value in self._sampling()[0]:  # a loop, not a comprehension's frame
            full[name] = value if draw is None else draw(next(it))
        if not self.conditions:
            return full
        active = self.active(full)
        return {name: v for name, v in full.items() if name in active}

    def __getstate__(self) -> tuple[None, dict[str, Any]]:
        kept = [name for name in ConfigSpace.__slots__ if name != "_samplers"]  # not pickled
        return None, {name: getattr(self, name) for name in kept}

    def __setstate__(self, state: tuple[None, dict[str, Any]]) -> None:
        for name, value in state[1].items():
            setattr(self, name, value)
        self._samplers = None

    def to_json(self) -> dict[str, Any]:
        """The recorded form: name -> domain; a conditional one also has ``"when"``."""
        out = {name: d.to_json() for name, d in self.domains.items()}
        for name, condition in self.conditions.items():
            out[name]["when"] = condition.to_json()
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ConfigSpace:
        entries: dict[str, Any] = {}
        for name, d in obj.items():
            domain = domain_from_json(name, d)
            when = d.get("when")
            entries[name] = domain if when is None else Conditional(domain, when)
        return cls(entries)

    def check_config(
        self, config: Mapping[str, Any], *, what: str = "config"
    ) -> dict[str, JSONScalar]:
        """``config`` with native values, checked to name exactly this space's active
        hyperparameters (constants may be omitted; inactive conditional ones must be)."""
        if not isinstance(config, Mapping):
            raise ConfigSpaceError(f"{what} must be a dict, got {type(config).__name__}")
        unknown = sorted(set(config) - set(self.domains))
        active = self.active(config) if self.conditions else set(self.domains)
        missing = [
            n
            for n, d in self.domains.items()
            if n not in config and n in active and not isinstance(d, Constant)
        ]
        if unknown or missing:
            raise ConfigSpaceError(
                f"{what} must name the config space's hyperparameters {self.names}; "
                f"unknown: {unknown}, missing: {missing}"
            )
        inactive = [n for n in config if n not in active]
        if inactive:
            raise ConfigSpaceError(
                f"{what} names {inactive}, inactive under it ("
                + "; ".join(f"{n} exists only when {self.conditions[n]}" for n in inactive)
                + "); leave them out"
            )
        out: dict[str, JSONScalar] = {}
        for name, d in self.domains.items():
            if name not in active:
                continue
            value = config[name] if name in config else getattr(d, "value", None)
            out[name] = to_native(value, where=f"{what}[{name!r}]")
        return out

    def describe_difference(self, other: ConfigSpace) -> str:
        """One line per hyperparameter that differs (for mismatch errors)."""
        lines = []
        for name in sorted(set(self.domains) | set(other.domains)):
            a, b = self.domains.get(name), other.domains.get(name)
            ca, cb = self.conditions.get(name), other.conditions.get(name)
            if a != b or ca != cb:
                lines.append(f"  {name}: logged {_shown(a, ca)}, now {_shown(b, cb)}")
        return "\n".join(lines)


def _shown(domain: Domain | None, condition: Condition | None) -> str:
    if domain is None:
        return "(absent)"
    return f"{domain}" if condition is None else f"{domain} when {condition}"
