"""``ByteLRU``: a least-recently-used map bounded by the bytes its values are estimated to hold.

    >>> cache = ByteLRU[str, str](max_bytes=10)
    >>> cache.put("a", "x", weight=6); cache.put("b", "y", weight=6)
    >>> cache.get("a"), cache.get("b"), cache.size
    (None, 'y', 6)

The caches of documents and cost estimates use it, so that many small entries
or a few large ones fit in the same memory; a value heavier than the whole
budget is not kept.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class ByteLRU(Generic[K, V]):
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: K, value: V, *, weight: int) -> None:
        if weight > self.max_bytes:
            return
        previous = self._entries.pop(key, None)
        if previous is not None:
            self.size -= previous[1]
        self._entries[key] = (value, weight)
        self.size += weight
        while self.size > self.max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self.size -= evicted
