"""The in-process near cache (L1) in front of a remote cache, for the short-TTL kinds.

Entries live at most their kind's TTL (a monotonic deadline) and at most
``max_entries`` (oldest inserted evicted first). Another process's write is
announced on an invalidation channel and removes the entry here; when the
channel is lost, everything is dropped, since invalidations may have been missed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class NearCache:
    __slots__ = ("_clock", "_data", "cleared", "evictions", "invalidations", "max_entries")

    def __init__(
        self, max_entries: int = 10_000, *, clock: Callable[[], int] = time.monotonic_ns
    ) -> None:
        self._data: dict[str, tuple[int, Any]] = {}  # key -> (deadline ns, Cached value)
        self.max_entries = max_entries
        self._clock = clock
        self.evictions = 0
        self.invalidations = 0
        self.cleared = 0

    def get(self, key: str) -> Any:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[0] < self._clock():
            del self._data[key]
            return None
        return entry[1]

    def put(self, key: str, value: Any, ttl_ms: int) -> None:
        data = self._data
        if key not in data and len(data) >= self.max_entries:
            del data[next(iter(data))]  # the oldest inserted
            self.evictions += 1
        data[key] = (self._clock() + ttl_ms * 1_000_000, value)

    def invalidate(self, key: str) -> None:
        if self._data.pop(key, None) is not None:
            self.invalidations += 1

    def clear(self) -> None:
        self._data.clear()
        self.cleared += 1

    def __len__(self) -> int:
        return len(self._data)
