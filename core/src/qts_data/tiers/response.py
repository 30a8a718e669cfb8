"""What a tiered read returns: the candles and where they came from (seeds/001 ``StorageResponse``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from qts_data.contracts import OHLCV

#: The tiers of a read, from the fastest: the in-process memory tier, the compressed
#: disk cache, the store (SQLite or any adapter), the upstream market-data source.
TierName = Literal["memory", "disk", "store", "upstream"]
TIERS: tuple[TierName, ...] = ("memory", "disk", "store", "upstream")
#: The tiers that are caches: a read they complete is a cache hit.
CACHE_TIERS: frozenset[str] = frozenset({"memory", "disk"})
#: ``rows_by_tier`` key of candles aggregated from real-time ticks (never persisted).
TICKS = "ticks"

__all__ = ["CACHE_TIERS", "TICKS", "TIERS", "StorageMetadata", "StorageResponse", "TierName"]


@dataclass(frozen=True, slots=True)
class StorageMetadata:
    """How a read was served.

    * ``source``: the tier that completed the read, i.e. the deepest tier it needed
      (a read that found half its candles in memory and the rest in the store
      was served by ``"store"``);
    * ``cache_hit``: True when the memory or disk tier completed it (neither the
      store nor the upstream source was asked);
    * ``processing_time_ms``: wall time of the whole read;
    * ``data_count``: how many candles it returned;
    * ``tiers``: the tiers consulted, in order;
    * ``rows_by_tier``: how many of the returned candles each tier supplied
      (``"ticks"`` for candles aggregated from real-time ticks);
    * ``upstream_calls``: requests made to the upstream source for this read.
    """

    source: TierName
    cache_hit: bool
    processing_time_ms: float
    data_count: int
    tiers: tuple[TierName, ...] = ()
    rows_by_tier: Mapping[str, int] = field(default_factory=dict)
    upstream_calls: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "cache_hit": self.cache_hit,
            "processing_time_ms": self.processing_time_ms,
            "data_count": self.data_count,
            "tiers": list(self.tiers),
            "rows_by_tier": dict(self.rows_by_tier),
            "upstream_calls": self.upstream_calls,
        }


@dataclass(frozen=True, slots=True)
class StorageResponse:
    """Candles in time order with their :class:`StorageMetadata`.

    ``success`` is False when a tier below the caches failed (the store or the
    upstream source raised); ``error`` then says which and why, and ``data``
    holds what the other tiers had, which may be incomplete.
    """

    data: list[OHLCV]
    metadata: StorageMetadata
    success: bool = True
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The Layer-1 shape ``{"success", "data", "metadata", "error"}``, JSON-ready (Decimals as text)."""
        return {
            "success": self.success,
            "data": [candle.model_dump(mode="json") for candle in self.data],
            "metadata": self.metadata.to_dict(),
            "error": self.error,
        }
