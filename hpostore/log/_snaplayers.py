"""A chain of snapshot layers as one fold's columns: each layer holds the trials and list items
that changed since the layer before it (see :mod:`hpostore.log.snapshot`).

A trial's row is its newest layer's; a list is the layers' items one after the other. Trial ids
increase with suggest order across the whole chain (the writer makes a full snapshot when they
would not), so a trial is found by one binary search over the chain's merged ids.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from typing import Any

import numpy as np

from ._coldfold import Prefix
from ._snaptables import ArrowTrials, Tables, cold_lists
from .trial import TrialState

_I32 = np.iinfo(np.int32)
#: a chain's layers are numbered in an int16 (snapshot.MAX_LAYERS is far below it)
_LAYERS_MAX = int(np.iinfo(np.int16).max)
#: Thawing a trial reads its layer's trial columns (~115 bytes a trial); the chain keeps those
#: of the layers used last, up to this many bytes (at least one layer's), and releases the
#: others. Without a bound an ASHA study, whose promotions reach into old layers, would end up
#: holding every layer's columns (~115 MB at 1M trials).
COLD_CACHE_BYTES = 32 << 20


class LayeredTrials:
    """``ColdTrials`` over the layers of a snapshot chain (oldest first): the merged trial ids
    (sorted), and for each the layer and row that hold its newest state.

    The index costs 6 bytes a trial when the ids are 0, 1, 2, ... (as a tuner numbers them: the
    position is the id), 10 when they fit 32 bits, 14 otherwise.
    """

    def __init__(self, layers: list[ArrowTrials], ids: np.ndarray | None, layer: np.ndarray,
                 row: np.ndarray, last: int) -> None:  # fmt: skip
        self.layers, self._layer, self._row, self._last = layers, layer, row, last
        #: the layers whose columns a thaw loaded (with their bytes), least recently used first
        self._warm: dict[int, int] = {}
        self._warm_bytes = 0
        #: the merged ids (None: they are ``0 .. n-1``, so a position is its id)
        self._ids = ids
        if ids is not None and len(ids) and ids[0] >= _I32.min and last <= _I32.max:
            self._ids = ids.astype(np.int32)
        #: each layer's file: {"seq", "sha256" (its checksum), "path"}, oldest first (set by
        #: whoever read or wrote the files; a layer on this chain names the last one)
        self.links: list[dict[str, Any]] = []
        #: how many items of each fold list the chain holds
        self.rows: dict[str, int] = {}

    @classmethod
    def of(cls, layers: list[ArrowTrials]) -> LayeredTrials:
        """The chain of ``layers``; ValueError when its ids are not in suggest order (a layer's
        ids not increasing, or a trial new to a layer numbered below an earlier layer's)."""
        empty = cls([], None, np.zeros(0, np.int16), np.zeros(0, np.int32), -1)
        return empty.extend(*layers)

    def extend(self, *layers: ArrowTrials) -> LayeredTrials:
        """This chain with ``layers`` on top (a new object: this one is not changed). O(trials)
        once, however many layers: each layer's new ids are appended, its others replaced."""
        last, k0 = self._last, len(self.layers)
        if k0 + len(layers) > _LAYERS_MAX:
            raise ValueError(f"a chain of more than {_LAYERS_MAX} layers")
        dense = self._ids is None  # ids 0 .. last so far: no merged ids to build
        new_ids, layer_of, row_of = [], [self._layer], [self._row]
        replaced = []
        for k, layer in enumerate(layers, k0):
            if not layer.sorted:
                raise ValueError("a snapshot layer's trial ids do not increase")
            lids = layer.ids
            cut = int(np.searchsorted(lids, last, side="right"))  # ids <= last: replacements
            rows = np.arange(len(lids), dtype=np.int32)
            replaced.append((k, lids[:cut], rows[:cut]))
            if cut < len(lids):
                dense = (
                    dense and int(lids[cut]) == last + 1 and int(lids[-1]) == last + len(lids) - cut
                )
                last = int(lids[-1])
            new_ids.append(lids[cut:])
            layer_of.append(np.full(len(lids) - cut, k, np.int16))
            row_of.append(rows[cut:])
        merged = None
        if not dense:
            old = np.arange(len(self._layer)) if self._ids is None else self._ids
            merged = np.concatenate([old.astype(np.int64, copy=False), *new_ids])
        layer_all, row_all = np.concatenate(layer_of), np.concatenate(row_of)
        del layer_of, row_of
        for k, rids, rows in replaced:  # oldest first: a later layer's row wins
            if not len(rids):
                continue
            if merged is None:
                if int(rids[0]) < 0:
                    raise ValueError("a snapshot layer adds a trial id below an earlier layer's")
                at = rids
            else:
                at = np.searchsorted(merged, rids)
                if np.any(at >= len(merged)) or np.any(
                    merged[np.minimum(at, len(merged) - 1)] != rids
                ):
                    raise ValueError("a snapshot layer adds a trial id below an earlier layer's")
            layer_all[at], row_all[at] = k, rows
        chain = LayeredTrials([*self.layers, *layers], merged, layer_all, row_all, last)
        chain._warm = dict(self._warm)  # the same layer objects, numbered as before
        chain._warm_bytes = self._warm_bytes
        return chain

    def __len__(self) -> int:
        return len(self._layer)

    @property
    def last(self) -> int:
        """The highest trial id (-1 when there are none)."""
        return self._last

    def _pos(self, trial: object) -> int | None:
        if type(trial) is int and trial > self._last:
            return None  # a new trial (the fold's every suggest asks): no binary search
        key = _as_id(trial)
        if key is None:
            return None
        ids = self._ids
        if ids is None:
            return key if 0 <= key <= self._last else None
        pos = int(np.searchsorted(ids, key))
        return pos if pos < len(ids) and ids[pos] == key else None

    def _positions(self, trials: list[int]) -> np.ndarray:
        """Positions of ``trials``, all in the chain."""
        keys = np.asarray(trials, dtype=np.int64)
        return keys if self._ids is None else np.searchsorted(self._ids, keys)

    def _ids_at(self, positions: np.ndarray) -> np.ndarray:
        return positions if self._ids is None else self._ids[positions]

    def has(self, trial: object) -> bool:
        return self._pos(trial) is not None

    def thaw(self, trial: object) -> TrialState | None:
        pos = self._pos(trial)
        if pos is None:
            return None
        k = int(self._layer[pos])
        state = self.layers[k].thaw_rows(self._row[pos : pos + 1])[0]
        self._used(k)
        return state

    def _used(self, k: int) -> None:
        """Layer ``k``'s columns were just read: keep them, and release the least recently
        used layers' while the kept ones hold more than :data:`COLD_CACHE_BYTES`."""
        warm = self._warm
        size = warm.pop(k, None)
        if size is None:
            size = self.layers[k].loaded_bytes()
            self._warm_bytes += size
        warm[k] = size
        while self._warm_bytes > COLD_CACHE_BYTES and len(warm) > 1:
            oldest = next(iter(warm))
            self.layers[oldest].release()
            self._warm_bytes -= warm.pop(oldest)

    def thaw_all(self) -> Iterator[TrialState]:
        out: list[Any] = [None] * len(self._layer)
        for k, layer in enumerate(self.layers):
            (positions,) = np.nonzero(self._layer == k)
            if len(positions):
                for p, t in zip(positions.tolist(), layer.thaw_rows(self._row[positions])):
                    out[p] = t
                if k not in self._warm:
                    layer.release()  # one layer's columns at a time, not the whole chain's
        return iter(out)

    def pending_update_ids(self) -> list[int]:
        found = []
        for k, layer in enumerate(self.layers):
            (positions,) = np.nonzero(self._layer == k)
            if len(positions):
                found.append(positions[layer.pending_rows()[self._row[positions]]])
        return [int(i) for i in np.sort(self._ids_at(np.concatenate(found)))] if found else []

    def configs_of(self, trials: list[int]) -> list[str]:
        out: list[Any] = [None] * len(trials)
        positions = self._positions(trials)
        for k, layer in enumerate(self.layers):
            (mine,) = np.nonzero(self._layer[positions] == k)
            if len(mine):
                ids = self._ids_at(positions[mine]).tolist()
                for i, config in zip(mine.tolist(), layer.configs_of(ids)):
                    out[i] = config
        return out


def _as_id(trial: object) -> int | None:
    """``trial`` as the int key a dict would match it to (a numpy int, True, 3.0 find trial 1
    or 3 in a dict too), or None when no trial id equals it."""
    try:
        return operator.index(trial)  # type: ignore[arg-type]
    except TypeError:
        if isinstance(trial, float) and trial.is_integer():
            return int(trial)
        return None


def layered_lists(layers: list[tuple[Tables, ArrowTrials]]) -> dict[str, Prefix[Any]]:
    """The fold's lists of a chain: each layer's items (see ``cold_lists``), oldest first."""
    per = [cold_lists(tables, trials) for tables, trials in layers]
    if len(per) == 1:
        return per[0]

    def joined(parts: list[Prefix[Any]]) -> Prefix[Any]:
        def since(start: int) -> list[Any]:
            out: list[Any] = []
            offset = 0
            for p in parts:  # only the layers that hold items from ``start`` on
                if offset + p.n > start:
                    out += p.since(max(0, start - offset))
                offset += p.n
            return out

        return Prefix(sum(p.n for p in parts), lambda: [x for p in parts for x in p.make()], since)

    return {name: joined([p[name] for p in per]) for name in per[0]}
