"""A cached value with the time of its source data, and its stored form.

Every kind but the order book is stored as a hash ``{"v": <JSON>, "t": <µs>,
"n": <µs>}``: the contract's JSON (exact Decimals and times), the time of the
source data, and the write's version: when the value was known to be current
(a load: when it began; a write: when it was made; a push: the data's own
time), all in microseconds since the epoch. A write never replaces a hash
with a larger ``n``, and a hash with ``n`` but no ``v`` is a tombstone: an
invalidation that refuses every write issued before it. Order books are sorted
sets (see the manager).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

VALUE_FIELD = "v"
TIME_FIELD = "t"
VERSION_FIELD = "n"
#: Pushed prices: the feed that pushed them and when (µs), for feed-held validity.
FEED_FIELD = "f"
PUSHED_FIELD = "p"
#: A feed's heartbeat hash: when its current unbroken run of heartbeats began (µs).
SINCE_FIELD = "s"


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True, slots=True)
class Cached(Generic[T]):
    """A value read through the cache manager, with where it came from and how old its data is."""

    value: T
    source_us: int  # when the source data was current, µs since the epoch
    origin: str  # "near" (in-process L1), "cache" (the cache client), "source" (loaded)
    stale: bool = False  # older than the caller's max age (returned only when allowed)

    @property
    def age_ms(self) -> float:
        return (now_us() - self.source_us) / 1000
