"""The cache manager: typed, namespaced access to a cache client, with statistics.

It owns the key scheme (``{namespace}v{version}:{template}``), the TTL of each
kind, cache-aside reads (:meth:`CacheManager.get_or_load`) and write-through
updates (:meth:`CacheManager.write_through`). A cache that fails never fails a
read: the value is loaded from the source and the failure is counted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import Field

from qts_data.cache.codec import Codec
from qts_data.cache.kinds import CACHE_FORMAT_VERSION, CacheKind
from qts_data.contracts import SafetyChange, SafetyState
from qts_data.interfaces import CacheClient
from qts_data.plugins.registry import Settings

T = TypeVar("T")
log = logging.getLogger("qts_data.cache")


class CacheSettings(Settings):
    """The ``[cache]`` table of a stack configuration."""

    namespace: str = Field(default="qts:", description="prefix of every key, before the version")
    ttl_ms: dict[CacheKind, int] = Field(default_factory=dict, description="TTL per kind, in ms")
    enabled: bool = True


@dataclass
class KindStats:
    """Counters of one cache kind."""

    hits: int = 0
    misses: int = 0
    loads: int = 0
    writes: int = 0
    invalidations: int = 0
    fallbacks: int = 0  # cache calls that failed, served by the source instead
    skipped_writes: int = 0  # writes not done because of the safety state
    load_ms_total: float = field(default=0.0, repr=False)

    @property
    def hit_rate(self) -> float | None:
        total = self.hits + self.misses
        return self.hits / total if total else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": self.hit_rate,
            "loads": self.loads,
            "writes": self.writes,
            "invalidations": self.invalidations,
            "fallbacks": self.fallbacks,
            "skipped_writes": self.skipped_writes,
        }


class CacheManager:
    """Typed cache access for a stack. ``client`` may be None (no cache configured)."""

    def __init__(self, client: CacheClient | None, settings: CacheSettings | None = None) -> None:
        self.client = client
        self.settings = settings or CacheSettings()
        self._prefix = f"{self.settings.namespace}v{CACHE_FORMAT_VERSION}:"
        self._ttl = {
            kind: self.settings.ttl_ms.get(kind, kind.default_ttl_ms) for kind in CacheKind
        }
        self._stats = {kind: KindStats() for kind in CacheKind}
        #: FAIL: bypass the cache entirely; LOCKDOWN: read but never write.
        self.bypass = client is None or not self.settings.enabled
        self.read_only = False

    # -- keys ----------------------------------------------------------------------
    def key(self, kind: CacheKind, params: Mapping[str, Any]) -> str:
        try:
            return self._prefix + kind.template.format_map(params)
        except KeyError as exc:
            raise TypeError(f"cache kind {kind.value!r} needs parameter {exc.args[0]!r}") from None

    def ttl_ms(self, kind: CacheKind) -> int:
        return self._ttl[kind]

    # -- reads -----------------------------------------------------------------------
    async def get(self, kind: CacheKind, codec: Codec[T], **params: Any) -> T | None:
        """The cached value, or None on a miss (or when the cache is unavailable)."""
        stats = self._stats[kind]
        if self.bypass or self.client is None:
            stats.misses += 1
            return None
        try:
            data = await self.client.get(self.key(kind, params))
        except Exception as exc:
            stats.fallbacks += 1
            stats.misses += 1
            log.warning("cache get failed for %s: %s", kind.value, exc)
            return None
        if data is None:
            stats.misses += 1
            return None
        stats.hits += 1
        return codec.decode(data)

    async def get_or_load(
        self, kind: CacheKind, codec: Codec[T], loader: Callable[[], Awaitable[T]], **params: Any
    ) -> T:
        """Cache-aside: the cached value, or ``loader()``'s, which is then cached."""
        cached = await self.get(kind, codec, **params)
        if cached is not None:
            return cached
        stats = self._stats[kind]
        started = time.perf_counter()
        value = await loader()
        stats.loads += 1
        stats.load_ms_total += (time.perf_counter() - started) * 1000
        await self.put(kind, value, codec, **params)
        return value

    # -- writes ------------------------------------------------------------------------
    async def put(self, kind: CacheKind, value: T, codec: Codec[T], **params: Any) -> bool:
        """Store a value with its kind's TTL; False when not stored (safety state or failure)."""
        stats = self._stats[kind]
        if self.bypass or self.client is None:
            return False
        if self.read_only:
            stats.skipped_writes += 1
            return False
        try:
            await self.client.set(self.key(kind, params), codec.encode(value), self._ttl[kind])
        except Exception as exc:
            stats.fallbacks += 1
            log.warning("cache set failed for %s: %s", kind.value, exc)
            return False
        stats.writes += 1
        return True

    async def invalidate(self, kind: CacheKind, **params: Any) -> None:
        """Remove a cached value. Done even in LOCKDOWN: a removal never makes the cache newer."""
        stats = self._stats[kind]
        if self.client is None:
            return
        try:
            await self.client.delete(self.key(kind, params))
        except Exception as exc:
            stats.fallbacks += 1
            log.warning("cache invalidation failed for %s: %s", kind.value, exc)
            return
        stats.invalidations += 1

    async def write_through(
        self,
        kind: CacheKind,
        value: T,
        codec: Codec[T],
        writer: Callable[[], Awaitable[Any]],
        **params: Any,
    ) -> Any:
        """Write to the source, then the cache. The source decides: if ``writer`` fails,
        the cached value is removed (never left newer than the source) and the error raised."""
        try:
            result = await writer()
        except BaseException:
            await self.invalidate(kind, **params)
            raise
        await self.put(kind, value, codec, **params)
        return result

    # -- state ---------------------------------------------------------------------------
    def on_safety_change(self, change: SafetyChange) -> None:
        """FAIL forces the fallback path (bypass); LOCKDOWN stops cache writes."""
        self.bypass = (
            self.client is None or not self.settings.enabled or change.current is SafetyState.FAIL
        )
        self.read_only = change.current is SafetyState.LOCKDOWN

    def stats(self) -> dict[str, KindStats]:
        return {kind.value: stats for kind, stats in self._stats.items()}

    def summary(self) -> dict[str, Any]:
        return {
            "client": self.client.name if self.client is not None else None,
            "bypass": self.bypass,
            "read_only": self.read_only,
            "kinds": {
                kind.value: {"ttl_ms": self._ttl[kind], **s.as_dict()}
                for kind, s in self._stats.items()
            },
        }
