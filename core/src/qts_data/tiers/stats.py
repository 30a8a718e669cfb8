"""Counters of a tiered read path: per tier, how often it was consulted and how often it completed a read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qts_data.tiers.response import CACHE_TIERS, TIERS

__all__ = ["TierCounter", "TieredStats"]


@dataclass
class TierCounter:
    """One tier: reads that consulted it, reads it completed, candles it supplied."""

    consulted: int = 0
    served: int = 0
    rows: int = 0

    @property
    def misses(self) -> int:
        return self.consulted - self.served

    @property
    def hit_rate(self) -> float | None:
        return self.served / self.consulted if self.consulted else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "consulted": self.consulted,
            "hits": self.served,
            "misses": self.misses,
            "hit_rate": self.hit_rate,
            "rows": self.rows,
        }


@dataclass
class TieredStats:
    """Counters of candle reads. ``hit_rate`` is the share of reads completed by a cache tier."""

    requests: int = 0
    failures: int = 0
    upstream_calls: int = 0
    upstream_candles: int = 0
    #: Upstream candles served before the store had them (slow or refusing store).
    unpersisted_candles: int = 0
    #: Of those, stored afterwards (a slow write that finished, or a background retry).
    persisted_later: int = 0
    #: Kept candles given up on (more than the composition keeps waiting).
    unpersisted_dropped: int = 0
    tiers: dict[str, TierCounter] = field(
        default_factory=lambda: {name: TierCounter() for name in TIERS}
    )

    @property
    def cache_hits(self) -> int:
        return sum(self.tiers[name].served for name in CACHE_TIERS)

    @property
    def hit_rate(self) -> float | None:
        """Reads completed by the memory or disk tier over all reads (seeds/001 target: above 85 %)."""
        return self.cache_hits / self.requests if self.requests else None

    @property
    def storage_hit_rate(self) -> float | None:
        """Reads completed without asking the upstream source, over all reads."""
        if not self.requests:
            return None
        return (self.requests - self.tiers["upstream"].consulted) / self.requests

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "failures": self.failures,
            "cache_hits": self.cache_hits,
            "hit_rate": self.hit_rate,
            "storage_hit_rate": self.storage_hit_rate,
            "upstream_calls": self.upstream_calls,
            "upstream_candles": self.upstream_candles,
            "unpersisted_candles": self.unpersisted_candles,
            "persisted_later": self.persisted_later,
            "unpersisted_dropped": self.unpersisted_dropped,
            "tiers": {name: counter.as_dict() for name, counter in self.tiers.items()},
        }
