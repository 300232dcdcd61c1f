"""The fold's containers that may still hold a snapshot's columns: thawed when first read.

Resume must not cost O(trials) (DESIGN.md "Snapshots"): a snapshot's trials and result lists
stay Arrow columns until something asks for them. The random searcher's resume asks for none of them,
a scheduler's restore for the trials it reads, an analysis for all.

- :class:`TrialMap` is ``StudyState.trials``: a mapping of trial id to ``TrialState`` in
  suggest order. A trial still in the snapshot's columns becomes a ``TrialState`` the first
  time it is looked up; iterating thaws them all at once (in bulk, as a full decode would).
- :class:`ColdList` is a fold list (``calls``, ``evaluations``, ...) whose oldest items may
  still be columns: the fold appends to the private list behind it, and the first read puts the
  snapshot's items in front.
"""

from __future__ import annotations

from collections.abc import (
    Callable,
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    MutableMapping,
    ValuesView,
)
from typing import Any, Generic, Protocol, TypeVar, overload

from .trial import WITH_RESULT, TrialState

T = TypeVar("T")


class ColdTrials(Protocol):
    """A snapshot's trials as columns (see :mod:`hpostore.log._snapcodec`)."""

    def __len__(self) -> int: ...

    def has(self, trial: object) -> bool:
        """The snapshot holds this trial id."""

    def thaw(self, trial: object) -> TrialState | None:
        """That trial as a new ``TrialState`` (None when the snapshot does not hold it)."""

    def thaw_all(self) -> Iterator[TrialState]:
        """Every trial as a new ``TrialState``, in suggest order."""

    def configs_of(self, trials: list[int]) -> list[str]:
        """The snapshot's config of each of ``trials``."""

    def pending_update_ids(self) -> list[int]:
        """Ids of the trials with a result and no ``update`` after it, as the columns hold
        them (found without thawing: a vectorized test on the status and updated columns)."""


class TrialMap(MutableMapping[int, TrialState]):
    """``StudyState.trials``: trial id -> ``TrialState`` in suggest order (see module doc)."""

    def __init__(self, cold: ColdTrials | None = None) -> None:
        self._hot: dict[int, TrialState] = {}
        self._cold = cold
        self._n_new = 0  # hot trials that are not in the cold columns
        if cold is None:
            self._fast()

    def parts(self) -> tuple[ColdTrials | None, dict[int, TrialState]]:
        """(the columns, or None; the trials held as ``TrialState``): for a snapshot's encoder,
        which copies the columns of the trials that are not held as objects."""
        return self._cold, self._hot

    def rebase(self, cold: ColdTrials, keep: Callable[[TrialState], bool]) -> None:
        """Let ``cold`` (the columns of a snapshot of every trial, just written) hold the trials,
        and keep as ``TrialState`` only those for which ``keep`` is true (the ones the fold is
        still changing): what a long study's live fold holds in memory stays bounded."""
        if len(cold) != len(self):
            raise ValueError(f"the columns hold {len(cold)} trials, not {len(self)}")
        self._hot = {i: t for i, t in self._hot.items() if keep(t)}
        self._cold, self._n_new = cold, 0
        vars(self).pop("get", None)  # the fast path is for a map without columns

    def _fast(self) -> None:
        # Nothing cold: lookups are the dict's own (C) methods, as fast as a plain dict's. The
        # fold calls ``get`` several times per event.
        self.get = self._hot.get  # type: ignore[method-assign, assignment]

    def thaw(self) -> dict[int, TrialState]:
        """Every trial as a ``TrialState`` (the cold ones in bulk); the dict itself, in order."""
        cold = self._cold
        if cold is not None:
            hot = self._hot
            merged = {t.trial: hot.get(t.trial, t) for t in cold.thaw_all()}
            merged.update(hot)  # thawed ones are already in place; new ones follow, in order
            self._hot, self._cold = merged, None
            self._fast()
        return self._hot

    def __getitem__(self, trial: int) -> TrialState:
        t = self.get(trial)
        if t is None:
            raise KeyError(trial)
        return t

    def get(self, trial: int, default: Any = None) -> Any:
        t = self._hot.get(trial)
        if t is None:
            cold = self._cold
            if cold is None or (t := cold.thaw(trial)) is None:
                return default
            self._hot[t.trial] = t
        return t

    def __contains__(self, trial: object) -> bool:
        if trial in self._hot:
            return True
        return self._cold is not None and self._cold.has(trial)

    def __setitem__(self, trial: int, state: TrialState) -> None:
        cold = self._cold
        if cold is not None and trial not in self._hot and not cold.has(trial):
            self._n_new += 1
        self._hot[trial] = state

    def __delitem__(self, trial: int) -> None:
        raise TypeError("the fold never forgets a trial")

    def __len__(self) -> int:
        cold = self._cold
        return len(self._hot) if cold is None else len(cold) + self._n_new

    def __iter__(self) -> Iterator[int]:
        return iter(self.thaw())

    def keys(self) -> KeysView[int]:
        return self.thaw().keys()

    def values(self) -> ValuesView[TrialState]:
        return self.thaw().values()

    def items(self) -> ItemsView[int, TrialState]:
        return self.thaw().items()

    def with_pending_update(self) -> list[TrialState]:
        """Trials whose latest result has no ``update`` yet (a crash in between), in suggest
        order: what every resume asks, answered without thawing the other trials."""
        cold, hot = self._cold, self._hot
        if cold is None:
            keys: Iterable[int] = hot
        else:
            thawed = [i for i in hot if cold.has(i)]
            keys = sorted({*cold.pending_update_ids(), *thawed})  # cold rows are in id order
            keys += [i for i in hot if not cold.has(i)]
        return [t for i in keys if (t := self[i]).status in WITH_RESULT and not t.updated]

    def __repr__(self) -> str:
        return f"TrialMap({len(self)} trials)"


class Prefix(Generic[T]):
    """The first ``n`` items of a fold list, still a snapshot's columns: ``make()`` builds them,
    ``since(start)`` those from ``start`` on (by default ``make()[start:]``; a chain of layers
    builds only the layers that hold them)."""

    __slots__ = ("n", "make", "since")

    def __init__(
        self,
        n: int,
        make: Callable[[], list[T]],
        since: Callable[[int], list[T]] | None = None,
    ) -> None:
        self.n, self.make = n, make
        self.since: Callable[[int], list[T]] = since or (lambda start: make()[start:])


class ColdList(Generic[T]):
    """A ``StudyState`` list attribute whose oldest items may still be a snapshot's columns.

    Declared on the class as ``calls = ColdList[tuple[int, int]]()``: the items live in the
    instance's ``_calls`` list (the fold appends there), and a pending :class:`Prefix` in the
    instance's ``_cold_lists[name]``, moved in front on first read."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name, self.attr = name, "_" + name

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> ColdList[T]: ...

    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> list[T]: ...

    def __get__(self, obj: object | None, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        items: list[T] = getattr(obj, self.attr)
        cold: dict[str, Prefix[T]] | None = getattr(obj, "_cold_lists")  # noqa: B009
        if cold and self.name in cold:
            items[:0] = cold.pop(self.name).make()
        return items

    def since(self, obj: object, start: int) -> list[T]:
        """The items from index ``start`` on; the snapshot's prefix stays columns (a reader that
        follows the list as it grows thaws nothing)."""
        cold: dict[str, Prefix[T]] | None = getattr(obj, "_cold_lists")  # noqa: B009
        pending = cold.get(self.name) if cold else None
        if pending is None:
            return self.__get__(obj)[start:]
        items: list[T] = getattr(obj, self.attr)
        if start >= pending.n:
            return items[start - pending.n :]
        # the prefix's items from ``start`` on, built for this call and not kept: a reader a
        # few items behind a snapshot (a scheduler catching up) must not thaw the whole list
        return pending.since(start) + items

    def count(self, obj: object) -> int:
        """``len`` of the list on ``obj`` without thawing its snapshot prefix."""
        cold: dict[str, Prefix[T]] | None = getattr(obj, "_cold_lists")  # noqa: B009
        pending = cold.get(self.name) if cold else None
        return len(getattr(obj, self.attr)) + (0 if pending is None else pending.n)

    def __set__(self, obj: object, items: list[T]) -> None:
        cold: dict[str, Any] | None = getattr(obj, "_cold_lists")  # noqa: B009
        if cold:
            cold.pop(self.name, None)
        setattr(obj, self.attr, items)
