"""Conditional hyperparameters: a declarative ``when`` on a domain, its checks and its order.

A conditional hyperparameter exists only while each of its parents is active and takes one of
the listed values; otherwise it is absent from the config. Parents may be conditional
themselves (a chain); a cycle or an unknown parent is a :class:`ConfigSpaceError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._domains import Choice, Constant, Domain, JSONScalar, to_native
from .errors import ConfigSpaceError


@dataclass(frozen=True, slots=True, eq=False)
class Conditional:
    """A hyperparameter that exists only ``when`` its parents take the given values.

    ``domain`` is anything a config-space entry may be (a frozen ``scipy.stats``
    distribution, a list of choices, a constant); ``when`` maps each parent's name to the value
    or the list of values under which this hyperparameter is active (all parents must agree).

    >>> from scipy import stats
    >>> from hpostore.space import ConfigSpace
    >>> space = ConfigSpace({
    ...     "optimizer": ["sgd", "adam"],
    ...     "momentum": Conditional(stats.uniform(0, 0.99), when={"optimizer": "sgd"}),
    ... })
    >>> space.sample([0.25, 0.5])  # sgd: momentum is active
    {'optimizer': 'sgd', 'momentum': 0.495}
    >>> space.sample([0.75, 0.5])  # adam: momentum is absent
    {'optimizer': 'adam'}
    >>> space.to_json()["momentum"]["when"]
    {'optimizer': ['sgd']}
    """

    domain: Any
    when: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Condition:
    """The recorded form of a ``when``: per parent, the values that make the child active."""

    when: tuple[tuple[str, tuple[JSONScalar, ...]], ...]

    @property
    def parents(self) -> tuple[str, ...]:
        return tuple(parent for parent, _ in self.when)

    def to_json(self) -> dict[str, list[JSONScalar]]:
        return {parent: list(values) for parent, values in self.when}

    def __str__(self) -> str:
        return " and ".join(
            f"{p} == {v[0]!r}" if len(v) == 1 else f"{p} in {list(v)!r}" for p, v in self.when
        )


def to_condition(name: str, when: Any) -> Condition:
    """The :class:`Condition` of ``Conditional(..., when=when)`` for hyperparameter ``name``."""
    where = f"config_space[{name!r}]"
    if not isinstance(when, Mapping) or not when:
        raise ConfigSpaceError(
            f"{where}: `when` must be a non-empty dict of parent name -> value (or list of "
            f"values), e.g. when={{'optimizer': 'sgd'}}; got {when!r}"
        )
    parts = []
    for parent, values in when.items():
        if not isinstance(parent, str):
            raise ConfigSpaceError(f"{where}: `when` keys must be parent names, got {parent!r}")
        listed = list(values) if isinstance(values, (list, tuple)) else [values]
        if not listed:
            raise ConfigSpaceError(
                f"{where}: when[{parent!r}] is an empty list, so {name!r} could never be active; "
                "give at least one value"
            )
        native = tuple(to_native(v, where=f"{where} when[{parent!r}]") for v in listed)
        parts.append((parent, native))
    return Condition(tuple(parts))


def _check_values(name: str, parent: str, values: tuple[JSONScalar, ...], domain: Domain) -> None:
    """Refuse values the parent can never take (a typo would otherwise silently disable the
    child)."""
    where = f"config_space[{name!r}]: when[{parent!r}]"
    for value in values:
        if isinstance(domain, Choice):
            try:
                domain.index(value)
            except ValueError:
                raise ConfigSpaceError(
                    f"{where}: {value!r} is not one of {parent!r}'s choices {list(domain.values)}"
                ) from None
        elif isinstance(domain, Constant):
            if value != domain.value or type(value) is not type(domain.value):
                raise ConfigSpaceError(
                    f"{where}: {parent!r} is the constant {domain.value!r}, never {value!r}"
                )
        elif not domain.is_integer:
            raise ConfigSpaceError(
                f"{where}: {parent!r} ({domain}) is continuous, so it would almost never equal "
                f"{value!r}; condition on a choice (list) or an integer hyperparameter instead"
            )
        else:
            low, high = domain.support()
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ConfigSpaceError(
                    f"{where}: {value!r} is not an integer value of {parent!r} ({domain}), "
                    f"which takes {low:g} ... {high:g}"
                )


def matcher(domain: Domain, values: tuple[JSONScalar, ...]) -> frozenset[Any]:
    """What :func:`matches` compares against: choice indices for a :class:`Choice` (so ``True``
    is not ``1``), else the values."""
    if isinstance(domain, Choice):
        return frozenset(domain.index(v) for v in values)
    return frozenset(values)


def matches(domain: Domain, allowed: frozenset[Any], value: Any) -> bool:
    if isinstance(domain, Choice):
        try:
            return domain.index(value) in allowed
        except ValueError:
            return False
    return value in allowed


def check_conditions(domains: Mapping[str, Domain], conditions: Mapping[str, Condition]) -> None:
    """Refuse conditions on unknown parents, impossible values and cycles."""
    for name, condition in conditions.items():
        for parent, values in condition.when:
            if parent not in domains:
                raise ConfigSpaceError(
                    f"config_space[{name!r}]: its condition names {parent!r}, which is not a "
                    f"hyperparameter of this space {list(domains)}; add it or fix the name"
                )
            if parent == name:
                raise ConfigSpaceError(
                    f"config_space[{name!r}]: its condition names itself; a hyperparameter "
                    "cannot depend on its own value"
                )
            _check_values(name, parent, values, domains[parent])


def topological_order(names: list[str], conditions: Mapping[str, Condition]) -> tuple[str, ...]:
    """``names`` with every parent before its children (declaration order otherwise);
    raises :class:`ConfigSpaceError` naming a cycle."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: placed

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = path[path.index(name) :] + [name]
            raise ConfigSpaceError(
                f"config space conditions form a cycle: {' -> '.join(cycle)} (each depends on "
                "the next); remove one of these conditions"
            )
        state[name] = 1
        condition = conditions.get(name)
        for parent in condition.parents if condition else ():
            visit(parent, path + [name])
        state[name] = 2
        order.append(name)

    for name in names:
        visit(name, [])
    return tuple(order)
