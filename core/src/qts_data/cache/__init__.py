"""The cache layer: cache kinds, codecs, the circuit breaker and the cache manager."""

from qts_data.cache.breaker import BreakerSettings, BreakerState, CircuitBreaker, ShardedBreaker
from qts_data.cache.codec import Codec, codec_for
from qts_data.cache.entry import Cached
from qts_data.cache.kinds import CacheKind
from qts_data.cache.manager import CacheManager, CacheSettings, micros_of
from qts_data.cache.stats import KindStats

__all__ = [
    "BreakerSettings",
    "BreakerState",
    "CacheKind",
    "CacheManager",
    "CacheSettings",
    "Cached",
    "CircuitBreaker",
    "Codec",
    "KindStats",
    "ShardedBreaker",
    "codec_for",
    "micros_of",
]
