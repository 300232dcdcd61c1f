"""A sorted multiset for the schedulers' per-rung indexes: insert, remove, rank, select.

The built-in schedulers rank a result among the results of its rung (ASHA), or take the median
of the other trials' errors at a resource (median stopping). A plain sorted list with
``bisect.insort`` moves half the list per insert, which at 100k results costs more than the
whole simulated trial. This keeps the items in sorted buckets of at most ``2 * LOAD`` items
(the design of ``sortedcontainers.SortedList``): an insert or remove moves at most one bucket,
and rank/select add bucket lengths, so a decision costs ``O(log n)`` comparisons plus
``n / LOAD`` additions done in C (a few microseconds at 100k items).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from itertools import accumulate
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

    __slots__ = ("_buckets", "_maxes", "_len", "_cum")

    def __init__(self) -> None:
        self._buckets: list[list[Any]] = []
        self._maxes: list[Any] = []  # the last item of each bucket
        self._len = 0
        self._cum: list[int] | None = None  # items before each bucket (None: to recompute)

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[Any]:
        for bucket in self._buckets:
            yield from bucket

    def add(self, item: Any) -> None:
        """Insert ``item`` (equal items are kept side by side)."""
        self._len += 1
        self._cum = None
        if not self._buckets:
            self._buckets.append([item])
            self._maxes.append(item)
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

    def remove(self, item: Any) -> None:
        """Remove one ``item``; ``ValueError`` if it is not there."""
        b = bisect.bisect_left(self._maxes, item)
        if b < len(self._buckets):
            bucket = self._buckets[b]
            i = bisect.bisect_left(bucket, item)
            if i < len(bucket) and bucket[i] == item:
                del bucket[i]
                self._len -= 1
                self._cum = None
                if bucket:
                    self._maxes[b] = bucket[-1]
                else:
                    del self._buckets[b], self._maxes[b]
                return
        raise ValueError(f"{item!r} is not in the list")

    def _before(self) -> list[int]:
        if self._cum is None:
            self._cum = [0, *accumulate(map(len, self._buckets))]
        return self._cum

    def rank(self, item: Any) -> int:
        """How many items are smaller than ``item`` (``bisect_left``)."""
        b = bisect.bisect_left(self._maxes, item)
        if b == len(self._buckets):
            return self._len
        return self._before()[b] + bisect.bisect_left(self._buckets[b], item)

    def __getitem__(self, index: int) -> Any:
        """The item of rank ``index`` (0 is the smallest)."""
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError(f"index {index} out of range for {self._len} items")
        cum = self._before()
        b = bisect.bisect_right(cum, index) - 1
        return self._buckets[b][index - cum[b]]
