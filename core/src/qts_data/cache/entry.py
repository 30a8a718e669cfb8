"""A cached value with the time of its source data, and its stored form.

Every kind but the order book is stored as a hash ``{"v": <JSON>, "t": <µs>}``:
the contract's JSON (exact Decimals and times) and the time of the source data
in microseconds since the epoch. Order books are sorted sets (see the manager).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

VALUE_FIELD = "v"
TIME_FIELD = "t"


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
