"""The tiers of market-data storage (seeds/001): memory, compressed disk, and real-time ticks.

The ``tiered`` composition (:mod:`qts_data.compositions.tiered`) puts them in
front of a store and an upstream market-data source; every read answers with a
:class:`StorageResponse` saying which tier served it.
"""

from qts_data.tiers.coverage import Coverage, Span
from qts_data.tiers.disk_tier import DiskCandleTier
from qts_data.tiers.memory_tier import MemoryCandleTier
from qts_data.tiers.realtime_tier import RealtimeTickTier
from qts_data.tiers.response import StorageMetadata, StorageResponse, TierName
from qts_data.tiers.stats import TierCounter, TieredStats

__all__ = [
    "Coverage",
    "DiskCandleTier",
    "MemoryCandleTier",
    "RealtimeTickTier",
    "Span",
    "StorageMetadata",
    "StorageResponse",
    "TierCounter",
    "TierName",
    "TieredStats",
]
