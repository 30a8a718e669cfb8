"""The cache layer: cache kinds, codecs and the cache manager."""

from qts_data.cache.codec import Codec, codec_for
from qts_data.cache.kinds import CacheKind
from qts_data.cache.manager import CacheManager, CacheSettings, KindStats

__all__ = ["CacheKind", "CacheManager", "CacheSettings", "Codec", "KindStats", "codec_for"]
