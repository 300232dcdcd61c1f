"""A sorted multiset for the schedulers' per-rung indexes: insert, remove, rank, select.

The built-in schedulers rank a result among the results of its rung (ASHA), or take the median
of the other trials' errors at a resource (median stopping). A plain sorted list with
``bisect.insort`` moves half the list per insert, which at 100k results costs more than the
whole simulated trial. This keeps the items in sorted buckets of at most ``2 * LOAD`` items
(the design of ``sortedcontainers.SortedList``): an insert or remove moves at most one bucket.
Rank and select need the number of items before a bucket: a Fenwick tree over the bucket
lengths answers in ``O(log n)`` and is updated in ``O(log n)`` per insert or remove (summing
every bucket length after each insert, as this did, grew with ``n / LOAD``: a few µs a
decision at 100k items, tens at 1M). The tree is rebuilt only when buckets split or vanish
(once per ``LOAD`` inserts at most).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import Any

#: the bucket size a bucket is split back to (see the module doc)
LOAD = 512


class SortedList:
    """Sorted items (tuples such as ``(error, trial)``) with rank and select.

    >>> s = SortedList()
    >>> for item in [(0.5, 1), (0.2, 0), (0.9, 2)]:
    ...     s.add(item)
    >>> s.rank((0.5, -1)), s[0], len(s)
    (1, (0.2, 0), 3)
    >>> s.remove((0.2, 0)); list(s)
    [(0.5, 1), (0.9, 2)]
    """

    __slots__ = ("_buckets", "_maxes", "_len", "_tree")

    def __init__(self) -> None:
        self._buckets: list[list[Any]] = []
        self._maxes: list[Any] = []  # the last item of each bucket
        self._len = 0
        #: Fenwick tree of the bucket lengths (1-based; None: to rebuild, after a split or a
        #: bucket removed)
        self._tree: list[int] | None = None

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[Any]:
        for bucket in self._buckets:
            yield from bucket

    def add(self, item: Any) -> None:
        """Insert ``item`` (equal items are kept side by side)."""
        self._len += 1
        if not self._buckets:
            self._buckets.append([item])
            self._maxes.append(item)
            self._tree = None
            return
        b = bisect.bisect_right(self._maxes, item)
        if b == len(self._buckets):  # beyond every bucket: append to the last one
            b -= 1
            self._buckets[b].append(item)
            self._maxes[b] = item
        else:
            bisect.insort(self._buckets[b], item)
        bucket = self._buckets[b]
        if len(bucket) > 2 * LOAD:
            self._buckets[b : b + 1] = [bucket[:LOAD], bucket[LOAD:]]
            self._maxes[b : b + 1] = [bucket[LOAD - 1], bucket[-1]]
            self._tree = None
        elif self._tree is not None:
            self._bump(b, 1)

    def remove(self, item: Any) -> None:
        """Remove one ``item``; ``ValueError`` if it is not there."""
        b = bisect.bisect_left(self._maxes, item)
        if b < len(self._buckets):
            bucket = self._buckets[b]
            i = bisect.bisect_left(bucket, item)
            if i < len(bucket) and bucket[i] == item:
                del bucket[i]
                self._len -= 1
                if bucket:
                    self._maxes[b] = bucket[-1]
                    if self._tree is not None:
                        self._bump(b, -1)
                else:
                    del self._buckets[b], self._maxes[b]
                    self._tree = None
                return
        raise ValueError(f"{item!r} is not in the list")

    # --- the Fenwick tree of bucket lengths -----------------------------------------------------
    def _fenwick(self) -> list[int]:
        tree = self._tree
        if tree is None:  # O(buckets): after a split or a removed bucket only
            n = len(self._buckets)
            tree = [0] * (n + 1)
            for i, bucket in enumerate(self._buckets, 1):
                tree[i] += len(bucket)
                parent = i + (i & -i)
                if parent <= n:
                    tree[parent] += tree[i]
            self._tree = tree
        return tree

    def _bump(self, b: int, delta: int) -> None:
        """Bucket ``b`` gained (lost) ``delta`` items."""
        tree = self._tree
        assert tree is not None
        i, n = b + 1, len(tree)
        while i < n:
            tree[i] += delta
            i += i & -i

    def _before(self, b: int) -> int:
        """How many items the buckets before bucket ``b`` hold."""
        tree = self._fenwick()
        total = 0
        while b > 0:
            total += tree[b]
            b -= b & -b
        return total

    def rank(self, item: Any) -> int:
        """How many items are smaller than ``item`` (``bisect_left``)."""
        b = bisect.bisect_left(self._maxes, item)
        if b == len(self._buckets):
            return self._len
        return self._before(b) + bisect.bisect_left(self._buckets[b], item)

    def __getitem__(self, index: int) -> Any:
        """The item of rank ``index`` (0 is the smallest)."""
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError(f"index {index} out of range for {self._len} items")
        # descend the tree: the most buckets whose items number at most ``index`` (buckets are
        # never empty), then the item's place in the next bucket
        tree = self._fenwick()
        n = len(tree) - 1
        b, rest = 0, index
        step = 1 << n.bit_length()
        while step:
            nxt = b + step
            if nxt <= n and tree[nxt] <= rest:
                b, rest = nxt, rest - tree[nxt]
            step >>= 1
        return self._buckets[b][rest]
