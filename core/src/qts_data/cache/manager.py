"""The cache manager: typed, namespaced, time-bounded access to a cache client.

* Keys: ``{namespace}v{version}:{kind key}`` with the symbol as hash tag
  (``qts:v1:price:{005930}``); values: the typed contracts with the time of
  their source data.
* Patterns: cache-aside (:meth:`CacheManager.get_or_load`), write-through
  (:meth:`CacheManager.write_through`: the source write decides; on failure the
  entry is removed, never left newer than the source), read-through (the
  ``cached`` composition), real-time push (:meth:`push_price`,
  :meth:`push_orderbook`, read with :meth:`get_price`, :meth:`get_orderbook`).
* Stale data: a read may demand a maximum age of the source data; an older
  value is reloaded, or returned marked ``stale`` when the caller allows it.
* Stampede protection: concurrent misses of one key share one load.
* Near cache: an optional in-process L1 for chosen kinds, invalidated through
  the client's pub/sub by other processes' writes, emptied when that channel
  is lost.
* Resilience: every call to a remote cache has a time budget and goes through
  a circuit breaker; while the cache fails (or the breaker is open) reads go to
  the source and writes are skipped; recovery is detected by the breaker's
  probes and the cache refills itself through later loads. A sharded cache (a
  Redis Cluster) has a breaker per shard (:meth:`CacheClient.shard_of`): a
  failing master bypasses only its own keys, and after a failover its keys
  map to the promoted node, whose breaker is new.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal, TypeVar, cast

from pydantic import Field, model_validator

from qts_data.cache.breaker import BreakerSettings, ShardedBreaker, Transition
from qts_data.cache.codec import Codec, codec_for
from qts_data.cache.entry import (
    FEED_FIELD,
    PUSHED_FIELD,
    SINCE_FIELD,
    TIME_FIELD,
    VALUE_FIELD,
    VERSION_FIELD,
    Cached,
    now_us,
)
from qts_data.cache.guard import GIVEN_UP, LoopStallProbe, guarded
from qts_data.cache.kinds import CACHE_FORMAT_VERSION, CacheKind
from qts_data.cache.near import NearCache
from qts_data.cache.singleflight import SingleFlight
from qts_data.cache.stats import KindStats
from qts_data.contracts import (
    BookLevel,
    Event,
    OrderBook,
    Priority,
    SafetyChange,
    SafetyState,
    TickData,
)
from qts_data.interfaces import CacheClient, Subscription
from qts_data.plugins.registry import Settings

T = TypeVar("T")
log = logging.getLogger("qts_data.cache")

_FAILED: Any = GIVEN_UP  # a cache call that failed, timed out or was not permitted
#: Most keys remembered as dirty (a write of unknown outcome); past it, a whole kind is.
DIRTY_KEYS_MAX = 100_000
_TICK = codec_for(TickData)


class CacheSettings(Settings):
    """The ``[cache]`` table of a stack configuration."""

    namespace: str = Field(default="qts:", description="prefix of every key, before the version")
    enabled: bool = True
    ttl_ms: dict[CacheKind, int] = Field(default_factory=dict, description="TTL per kind (ms)")
    budget_ms: dict[CacheKind, float] = Field(
        default_factory=dict, description="time budget of one cache call per kind (ms)"
    )
    default_budget_ms: float = Field(default=5.0, gt=0)
    max_age_ms: dict[CacheKind, int] = Field(
        default_factory=dict, description="default maximum age of the source data per kind (ms)"
    )
    refresh_ahead: dict[CacheKind, float] = Field(
        default_factory=lambda: {
            CacheKind.POSITION: 0.2,
            CacheKind.RISK: 0.2,
            CacheKind.STRATEGY: 0.2,
        },
        description="per kind, the last fraction of the TTL in which a hit reloads the value in the background",
    )
    near_cache: list[CacheKind] = Field(
        default_factory=list, description="kinds kept in an in-process L1"
    )
    near_cache_max_entries: int = Field(default=10_000, gt=0)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    price_hold_ms: int = Field(
        default=3_600_000,
        gt=0,
        description="how long a pushed price may stay the latest while its feed is alive",
    )
    stats_event_interval_s: float = Field(
        default=1.0, gt=0, description="how often per-kind hit/miss counts go out as one P3 event"
    )
    miss_event_sample: int = Field(
        default=100, ge=1, description="one P3 event per this many misses"
    )

    @model_validator(mode="after")
    def _positive(self) -> CacheSettings:
        for table in ("ttl_ms", "budget_ms", "max_age_ms"):
            for kind, value in getattr(self, table).items():
                if value <= 0:
                    raise ValueError(f"{table}.{kind.value} must be positive (got {value})")
        for kind, fraction in self.refresh_ahead.items():
            if not 0 <= fraction < 1:
                raise ValueError(f"refresh_ahead.{kind.value} must be in [0, 1) (got {fraction})")
        return self


class CacheManager:
    """Typed cache access for a stack. ``client`` may be None (no cache configured)."""

    def __init__(
        self,
        client: CacheClient | None,
        settings: CacheSettings | None = None,
        *,
        clock_us: Callable[[], int] = now_us,
        events: Callable[[Event], None] | None = None,
    ) -> None:
        self.client = client
        self._now_us = clock_us  # wall-clock µs: source times and ages (injectable for simulations)
        #: Non-blocking event publication (the stack's bus); None: no events.
        self.events = events
        self._stats_task: asyncio.Task[None] | None = None
        self.settings = s = settings or CacheSettings()
        self._prefix = f"{s.namespace}v{CACHE_FORMAT_VERSION}:"
        self._formats = {kind: self._prefix + kind.key_format for kind in CacheKind}
        self._ttl = {kind: s.ttl_ms.get(kind, kind.default_ttl_ms) for kind in CacheKind}
        self._budget = {
            kind: s.budget_ms.get(kind, s.default_budget_ms) / 1000 for kind in CacheKind
        }
        self._max_age_us = {
            kind: (s.max_age_ms[kind] * 1000 if kind in s.max_age_ms else None)
            for kind in CacheKind
        }
        self._stats = {kind: KindStats() for kind in CacheKind}
        self._remote = client is not None and not client.in_process
        #: The circuit breakers: one, or one per shard of a sharded cache (a Redis Cluster's
        #: masters, see CacheClient.shard_of); ``breaker.state`` is the worst of them.
        self.breaker = ShardedBreaker(
            # "is not None", not truth: an empty memory client is falsy (it has a length)
            f"cache:{client.name if client is not None else 'none'}",
            s.breaker,
            serving=client.shards if client is not None else None,
        )
        self.breaker.listeners.append(self._on_transition)
        # None for a client of one shard: every call goes through the default breaker.
        self._shard_of: Callable[[str], str | None] | None = (
            client.shard_of
            if client is not None and type(client).shard_of is not CacheClient.shard_of
            else None
        )
        self.transitions: list[Transition] = []
        self._near_kinds = frozenset(s.near_cache) if self._remote else frozenset()
        self.near = NearCache(s.near_cache_max_entries) if self._near_kinds else None
        self._channel = f"{self._prefix}invalidate"
        self._instance = f"{os.getpid()}-{id(self):x}"
        self._subscription: Subscription | None = None
        self._flight = SingleFlight()
        # hits older than this (µs since their source time) start a background reload
        self._refresh_after_us = {
            kind: int(self._ttl[kind] * 1000 * (1 - s.refresh_ahead[kind]))
            for kind in CacheKind
            if s.refresh_ahead.get(kind)
        }
        self._background: set[asyncio.Task[Any]] = set()
        self._refreshing: set[str] = set()
        self._price_prefix = self._prefix + "price:{"
        self._price_stats = self._stats[CacheKind.PRICE]
        self._price_max_age_us = self._max_age_us[CacheKind.PRICE]
        self._generation: dict[str, int] = {}
        #: Keys whose cached value may be older than the source (a write failed, was
        #: skipped, or its outcome is unknown) -> (monotonic deadline, version to refuse).
        #: Reads of such a key go to the source until a tombstone lands, or its deadline
        #: passes (when anything written before has expired: expiry is absolute).
        self._dirty: dict[str, tuple[float, int]] = {}
        #: Kinds with more dirty keys than DIRTY_KEYS_MAX -> monotonic deadline.
        self._dirty_kinds: dict[CacheKind, float] = {}
        self._probe = LoopStallProbe() if self._remote else None
        #: Feed liveness as this process last read it: feed -> (since µs, alive until µs,
        #: next read µs). A pushed price older than its TTL is still the latest while the
        #: feed that pushed it has been alive without a break since the push.
        self._feeds: dict[str, tuple[int, int, int]] = {}
        #: Feeds pushing from this process: feed -> (since µs, last heartbeat issued µs).
        self._beats: dict[str, tuple[int, int]] = {}
        #: FAIL: bypass the cache entirely; LOCKDOWN: read but never write.
        self.bypass = client is None or not s.enabled
        self.read_only = False

    # -- lifecycle (the stack calls these) -----------------------------------------------------
    async def start(self) -> None:
        """Subscribe to the invalidation channel when a near cache is configured; start the
        periodic statistics event."""
        if self.events is not None and self._stats_task is None and self.client is not None:
            self._stats_task = asyncio.get_running_loop().create_task(self._emit_stats())
        if self._probe is not None:
            self._probe.start()
        if self.near is not None and self.client is not None and self._subscription is None:
            try:
                self._subscription = await self.client.subscribe(
                    self._channel, self._on_invalidation
                )
            except Exception as exc:
                log.warning("near cache disabled: cannot subscribe to %s: %s", self._channel, exc)
                self._near_kinds = frozenset()

    async def stop(self) -> None:
        if self._probe is not None:
            self._probe.stop()
        if self._stats_task is not None:
            self._stats_task.cancel()
            await asyncio.gather(self._stats_task, return_exceptions=True)
            self._stats_task = None
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._subscription is not None:
            subscription, self._subscription = self._subscription, None
            await subscription.close()

    # -- keys -----------------------------------------------------------------------------------
    def key(self, kind: CacheKind, params: Mapping[str, Any]) -> str:
        try:
            return self._formats[kind].format_map(params)
        except KeyError as exc:
            raise TypeError(f"cache kind {kind.value!r} needs parameter {exc.args[0]!r}") from None

    def ttl_ms(self, kind: CacheKind) -> int:
        return self._ttl[kind]

    # -- the guarded call ----------------------------------------------------------------------
    async def _call(
        self,
        kind: CacheKind,
        stats: KindStats,
        key: str,
        op: Awaitable[T],
        written: int | None = None,
    ) -> T:
        """Run one cache call on ``key`` within its budget and through the breaker of the
        shard serving ``key``; ``_FAILED`` when the caller got no result. ``written``: the
        version a write of ``key`` carries, for a late outcome.

        A call on several keys names the one that decides its shard: the manager sends such
        calls (an order book and its version key) only on keys that share a hash tag
        (``{symbol}``), hence one slot and one shard; a PUBLISH names its channel (a cluster
        client sends it to the master of the channel's slot).
        """
        if not self._remote:
            try:
                return await op
            except Exception as exc:
                stats.errors += 1
                log.debug("cache %s call failed: %s", kind.value, exc)
                return cast(T, _FAILED)
        shard_of = self._shard_of
        breaker = self.breaker.default if shard_of is None else self.breaker.of(shard_of(key))
        if not breaker.try_acquire():
            if asyncio.iscoroutine(op):
                op.close()
            return cast(T, _FAILED)
        started = time.perf_counter()
        late = None if written is None else self._late_write(kind, key, written)
        result, error = await guarded(breaker, self._budget[kind], cast(Any, op), self._probe, late)
        if result is GIVEN_UP:
            if error is None:
                stats.timeouts += 1
            else:
                stats.errors += 1
                # one line per breaker transition is logged; a line per failed call would flood
                log.debug("cache %s call failed: %s", kind.value, error)
            return cast(T, _FAILED)
        stats.record_latency(time.perf_counter() - started)
        return cast(T, result)

    def _late_write(self, kind: CacheKind, key: str, version: int) -> Callable[[Any], None]:
        """What to do when a write the caller gave up on ends: landed, its key is clean again
        unless written since; failed, it stays dirty (it was marked when given up)."""
        generation = self._generation.get(key, 0)

        def ended(error: BaseException | None) -> None:
            self._stats[kind].late_writes += 1
            if error is None and self._generation.get(key, 0) == generation:
                entry = self._dirty.get(key)
                if entry is not None and entry[1] <= version + 1:
                    del self._dirty[key]

        return ended

    def _mark_dirty(self, kind: CacheKind, key: str, version: int) -> None:
        """The cached value of ``key`` may be older than the source: read it from the source
        until a tombstone refusing ``version`` and everything before lands."""
        deadline = time.monotonic() + self._ttl[kind] / 1000
        dirty = self._dirty
        previous = dirty.get(key)
        if previous is not None:
            version = max(version, previous[1] - 1)
        elif len(dirty) >= DIRTY_KEYS_MAX:
            self._dirty_kinds[kind] = deadline
            return
        dirty[key] = (deadline, version + 1)
        if self.near is not None:
            self.near.invalidate(key)

    async def _clean(self, kind: CacheKind, key: str, stats: KindStats) -> bool:
        """For a dirty ``key``: True once nothing older than the source can be read there
        (its deadline passed, or a tombstone landed now)."""
        deadline, version = self._dirty[key]
        if time.monotonic() >= deadline:
            del self._dirty[key]
            return True
        done = await self._call(kind, stats, key, self._tombstone(kind, key, version))
        if done is _FAILED:
            return False
        self._dirty.pop(key, None)
        stats.invalidations += 1
        return True

    def _tombstone(self, kind: CacheKind, key: str, version: int) -> Awaitable[bool]:
        """A write that removes the value at ``key`` and refuses any write before ``version``."""
        client = cast(CacheClient, self.client)
        expire_at = time.time_ns() // 1_000_000 + self._ttl[kind]
        if kind is CacheKind.ORDERBOOK:
            return client.zreplace_if_newer(
                key, {}, version_key=key + ":t", version=version, expire_at_ms=expire_at
            )
        return client.hset_if_newer(
            key, {VERSION_FIELD: str(version)}, version_field=VERSION_FIELD, expire_at_ms=expire_at
        )

    def _kind_dirty(self, kind: CacheKind) -> bool:
        deadline = self._dirty_kinds.get(kind)
        if deadline is None:
            return False
        if time.monotonic() < deadline:
            return True
        del self._dirty_kinds[kind]
        return False

    # -- reads -------------------------------------------------------------------------------------
    async def _fetch(
        self, kind: CacheKind, key: str, codec: Codec[T], stats: KindStats
    ) -> Cached[T] | None:
        client = cast(CacheClient, self.client)
        data = await self._call(kind, stats, key, client.hgetall(key))
        if data is _FAILED:
            return cast(Cached[T], _FAILED)
        if not data:
            return None
        value = data.get(VALUE_FIELD)
        if value is None:  # a tombstone
            return None
        feed = data.get(FEED_FIELD)
        if feed is not None and not await self._held(data, feed, stats):
            return None
        try:
            return Cached(codec.decode(value), int(data[TIME_FIELD]), "cache")
        except Exception as exc:  # an entry this version cannot read: treat as a miss
            log.warning("unreadable cache entry %s dropped: %s", key, exc)
            await self._call(kind, stats, key, client.delete(key))
            return None

    async def _held(self, data: Mapping[str, Any], feed: bytes | str, stats: KindStats) -> bool:
        """Whether a pushed price is still valid: younger than the price TTL, or pushed during
        the feed's current unbroken run of heartbeats (the feed is alive and would have
        pushed a newer price had there been a trade)."""
        now = self._now_us()
        pushed = int(data[PUSHED_FIELD])
        if now - pushed <= self._ttl[CacheKind.PRICE] * 1000:
            return True
        name = feed.decode() if isinstance(feed, bytes) else feed
        known = self._feeds.get(name)
        if known is None or now >= known[2]:
            known = await self._read_feed(name, now, stats)
            if known is None:
                return False
        since, alive_until, _ = known
        return since <= pushed and now <= alive_until

    async def _read_feed(
        self, feed: str, now: int, stats: KindStats
    ) -> tuple[int, int, int] | None:
        client = cast(CacheClient, self.client)
        key = self._feed_key(feed)
        data = await self._call(CacheKind.PRICE, stats, key, client.hgetall(key))
        if data is _FAILED:
            return None
        ttl_us = self._ttl[CacheKind.PRICE] * 1000
        if data and SINCE_FIELD in data:
            since, last = int(data[SINCE_FIELD]), int(data[VERSION_FIELD])
        else:
            since, last = now, 0  # silent: nothing older than the TTL is held
        alive_until = last + ttl_us
        # Trust what was read until the feed's next heartbeat was due; a silent feed is
        # asked again after a quarter of the TTL.
        known = (since, alive_until, max(alive_until, now + ttl_us // 4))
        self._feeds[feed] = known
        return known

    def _feed_key(self, feed: str) -> str:
        return f"{self._prefix}feed:{{{feed}}}"

    async def heartbeat(self, feed: str = "default") -> bool:
        """Say that ``feed`` is alive and has pushed every trade it saw (call it at least once
        per price TTL while connected, e.g. on each message or WebSocket pong; pushes of
        the feed also send it). While heartbeats keep coming, a price the feed pushed stays
        the latest until its next push for the symbol (up to ``price_hold_ms``); once they
        stop, its prices expire at the price TTL. False when not stored."""
        if self.bypass or self.client is None:
            return False
        if self.read_only:  # pushes are not stored either: readers must see a break
            self._beats.pop(feed, None)
            return False
        now = self._now_us()
        ttl_ms = self._ttl[CacheKind.PRICE]
        since, last = self._beats.get(feed, (now, 0))
        if now - last > ttl_ms * 1000:  # a break: readers may have seen the feed silent
            since = now
        self._beats[feed] = (since, now)
        stats = self._price_stats
        key = self._feed_key(feed)
        write = self.client.hset_if_newer(
            key,
            {VERSION_FIELD: str(now), SINCE_FIELD: str(since)},
            version_field=VERSION_FIELD,
            expire_at_ms=time.time_ns() // 1_000_000 + ttl_ms,
        )
        done = await self._call(CacheKind.PRICE, stats, key, write)
        if done is _FAILED:
            self._beats.pop(feed, None)  # readers may see a break: start a new run
            return False
        return bool(done)

    async def read(
        self,
        kind: CacheKind,
        codec: Codec[T],
        loader: Callable[[], Awaitable[T]] | None = None,
        *,
        max_age_ms: int | None = None,
        allow_stale: bool = False,
        source_time: Callable[[T], int | None] | None = None,
        **params: Any,
    ) -> Cached[T] | None:
        """The value with its metadata: from the near cache, the cache, or ``loader``.

        Without a loader, a miss (or a stale value the caller does not allow)
        returns None. ``max_age_ms`` (default: the kind's configured maximum age)
        bounds the age of the source data; an older value is reloaded, or
        returned with ``stale=True`` when ``allow_stale``.
        """
        stats = self._stats[kind]
        key = self._formats[kind].format_map(params)
        if self.bypass:
            stats.misses += 1
            if loader is None:
                return None
            stats.fallbacks += 1
            return await self._load(kind, key, loader, source_time, stats, store=False)
        max_age_us = max_age_ms * 1000 if max_age_ms is not None else self._max_age_us[kind]
        near = self.near if kind in self._near_kinds else None
        if near is not None:
            found = near.get(key)
            if found is not None and (
                max_age_us is None or self._now_us() - found.source_us <= max_age_us
            ):
                stats.hits += 1
                stats.near_hits += 1
                return cast(Cached[T], found)
        if loader is not None and self._remote:
            # Over a network, concurrent readers of one key share the cache read as well
            # as the load: a stampede must not become a thousand cache calls either.
            result, merged = await self._flight.run(
                key,
                lambda: self._lookup(
                    kind,
                    key,
                    codec,
                    loader,
                    max_age_us,
                    allow_stale,
                    source_time,
                    stats,
                    near,
                    True,
                ),
            )
            if merged:
                stats.merged_loads += 1
            return cast(Cached[T], result)
        return await self._lookup(
            kind, key, codec, loader, max_age_us, allow_stale, source_time, stats, near, False
        )

    async def _lookup(
        self,
        kind: CacheKind,
        key: str,
        codec: Codec[T],
        loader: Callable[[], Awaitable[T]] | None,
        max_age_us: int | None,
        allow_stale: bool,
        source_time: Callable[[T], int | None] | None,
        stats: KindStats,
        near: NearCache | None,
        coalesced: bool,
    ) -> Cached[T] | None:
        """The cache read, then the load on a miss (``coalesced``: already inside the key's flight)."""
        if (self._dirty and key in self._dirty and not await self._clean(kind, key, stats)) or (
            self._dirty_kinds and self._kind_dirty(kind)
        ):
            found: Cached[T] | None = _FAILED  # what is cached may be older than the source
        else:
            found = await self._fetch(kind, key, codec, stats)
        if found is _FAILED:
            stats.misses += 1
            if loader is None:
                return None
            stats.fallbacks += 1
            return await self._load(kind, key, loader, source_time, stats, store=False)
        if found is not None:
            if max_age_us is not None and self._now_us() - found.source_us > max_age_us:
                stats.stale_reads += 1
                self._emit(
                    Priority.P2,
                    "cache.stale",
                    key,
                    kind=kind.value,
                    age_ms=(self._now_us() - found.source_us) / 1000,
                )
                if allow_stale:
                    stats.hits += 1
                    return replace(found, stale=True)
            else:
                stats.hits += 1
                if near is not None:
                    near.put(key, replace(found, origin="near"), self._ttl[kind])
                if loader is not None and kind in self._refresh_after_us:
                    self._maybe_refresh(kind, key, found, codec, loader, source_time, stats)
                return found
        stats.misses += 1
        if self.events is not None and (stats.misses - 1) % self.settings.miss_event_sample == 0:
            self._emit(
                Priority.P3, "cache.miss", None, kind=kind.value, cache_key=key, misses=stats.misses
            )
        if loader is None:
            return None
        if coalesced:
            return await self._load(kind, key, loader, source_time, stats, store=True, codec=codec)
        result, merged = await self._flight.run(
            key, lambda: self._load(kind, key, loader, source_time, stats, store=True, codec=codec)
        )
        if merged:
            stats.merged_loads += 1
        return result

    def _maybe_refresh(
        self,
        kind: CacheKind,
        key: str,
        found: Cached[T],
        codec: Codec[T],
        loader: Callable[[], Awaitable[T]],
        source_time: Callable[[T], int | None] | None,
        stats: KindStats,
    ) -> None:
        """Refresh-ahead: reload a value near the end of its TTL in the background, so hot
        keys never expire under their readers (one reload per key at a time)."""
        if (
            self._now_us() - found.source_us < self._refresh_after_us[kind]
            or key in self._refreshing
        ):
            return
        self._refreshing.add(key)

        async def refresh() -> None:
            try:
                await self._load(kind, key, loader, source_time, stats, store=True, codec=codec)
                stats.refreshes += 1
            except Exception as exc:  # the value in the cache stays until its TTL
                log.warning("background refresh of %s failed: %s", key, exc)
            finally:
                self._refreshing.discard(key)

        task = asyncio.get_running_loop().create_task(refresh())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def get_or_load(
        self,
        kind: CacheKind,
        codec: Codec[T],
        loader: Callable[[], Awaitable[T]],
        *,
        max_age_ms: int | None = None,
        source_time: Callable[[T], int | None] | None = None,
        **params: Any,
    ) -> T:
        """Cache-aside: the cached value if fresh enough, else ``loader()``'s (then cached)."""
        found = await self.read(
            kind, codec, loader, max_age_ms=max_age_ms, source_time=source_time, **params
        )
        return cast(Cached[T], found).value

    async def get(
        self,
        kind: CacheKind,
        codec: Codec[T],
        *,
        max_age_ms: int | None = None,
        allow_stale: bool = False,
        **params: Any,
    ) -> Cached[T] | None:
        """The cached value (no load): None on a miss or when stale and not allowed."""
        return await self.read(
            kind, codec, None, max_age_ms=max_age_ms, allow_stale=allow_stale, **params
        )

    async def _load(
        self,
        kind: CacheKind,
        key: str,
        loader: Callable[[], Awaitable[T]],
        source_time: Callable[[T], int | None] | None,
        stats: KindStats,
        *,
        store: bool,
        codec: Codec[T] | None = None,
    ) -> Cached[T]:
        generation = self._generation.get(key, 0)
        as_of = self._now_us()  # the value is at least as new as this
        try:
            value = await loader()
        except Exception as exc:
            self._emit(
                Priority.P1,
                "adapter.error",
                key,
                kind=kind.value,
                error=f"{type(exc).__name__}: {exc}",
            )
            raise
        stats.loads += 1
        stamp = source_time(value) if source_time is not None else None
        cached = Cached(value, stamp if stamp is not None else self._now_us(), "source")
        # A write of this key while the loader ran makes the loaded value older than the
        # source: storing it would leave the cache behind; skip it.
        if store and codec is not None and self._generation.get(key, 0) == generation:
            await self._store(kind, key, codec, cached, stats, announce=False, version=as_of)
        return cached

    # -- writes --------------------------------------------------------------------------------------
    async def _store(
        self,
        kind: CacheKind,
        key: str,
        codec: Codec[T],
        cached: Cached[T],
        stats: KindStats,
        *,
        announce: bool,
        version: int,
        extra: Mapping[str, str] | None = None,
        expire_ms: int | None = None,
    ) -> bool:
        """A versioned write with an absolute expiry (``hset_if_newer``): executed late, it
        can neither replace a newer value nor outlive its TTL (``expire_ms``, default the
        kind's). False when not stored."""
        if self.bypass or self.client is None:
            return False
        if self.read_only:
            stats.skipped_writes += 1
            self._mark_dirty(kind, key, version)
            return False
        ttl = self._ttl[kind]
        mapping: dict[str, bytes | str] = {
            VALUE_FIELD: codec.encode(cached.value),
            TIME_FIELD: str(cached.source_us),
            VERSION_FIELD: str(version),
        }
        if extra:
            mapping.update(extra)
        write = self.client.hset_if_newer(
            key,
            mapping,
            version_field=VERSION_FIELD,
            expire_at_ms=time.time_ns() // 1_000_000 + (expire_ms or ttl),
        )
        done = await self._call(kind, stats, key, write, version)
        if done is _FAILED:
            stats.skipped_writes += 1
            self._mark_dirty(kind, key, version)
            return False
        if not done:  # the cache holds a newer version
            stats.refused_writes += 1
            return False
        stats.writes += 1
        if kind in self._near_kinds and self.near is not None:
            self.near.put(key, replace(cached, origin="near"), ttl)
            if announce:
                await self._announce(kind, key, stats)
        return True

    async def put(
        self,
        kind: CacheKind,
        value: T,
        codec: Codec[T],
        *,
        source_us: int | None = None,
        version_us: int | None = None,
        **params: Any,
    ) -> bool:
        """Store a value with its kind's TTL; False when not stored (safety state, failure, open
        breaker, or a newer version already cached). ``version_us``: the write's version
        (default: now); a cached value of a larger version is not replaced."""
        key = self._formats[kind].format_map(params)
        self._generation[key] = self._generation.get(key, 0) + 1
        now = self._now_us()
        cached = Cached(value, source_us if source_us is not None else now, "source")
        version = version_us if version_us is not None else now
        try:
            return await self._store(
                kind, key, codec, cached, self._stats[kind], announce=True, version=version
            )
        finally:
            # A read that begins now must not join one that began before this write
            # ended: that one may have read the value before it.
            self._flight.forget(key)

    async def invalidate(self, kind: CacheKind, **params: Any) -> None:
        """Remove a cached value. Done even in LOCKDOWN: a removal never makes the cache newer."""
        stats = self._stats[kind]
        key = self._formats[kind].format_map(params)
        self._generation[key] = self._generation.get(key, 0) + 1
        if self.near is not None:
            self.near.invalidate(key)
        if self.client is None:
            return
        # A tombstone, not a DEL: a write issued before it and executed late is refused.
        version = self._now_us()
        self._dirty.pop(key, None)
        try:
            done = await self._call(kind, stats, key, self._tombstone(kind, key, version), version)
        finally:
            self._flight.forget(key)  # as in put: later reads start afresh
        if done is _FAILED:
            self._mark_dirty(kind, key, version)
        else:
            stats.invalidations += 1
        if kind in self._near_kinds:
            await self._announce(kind, key, stats)

    async def write_through(
        self,
        kind: CacheKind,
        value: T,
        codec: Codec[T],
        writer: Callable[[], Awaitable[Any]],
        *,
        source_us: int | None = None,
        **params: Any,
    ) -> Any:
        """Write to the source, then the cache. The source decides: if ``writer`` fails,
        the cached value is removed (never left newer than the source) and the error raised."""
        try:
            result = await writer()
        except BaseException:
            await self.invalidate(kind, **params)
            raise
        await self.put(kind, value, codec, source_us=source_us, **params)
        return result

    # -- real-time push -------------------------------------------------------------------------------
    async def push_price(self, tick: TickData, *, feed: str = "default") -> bool:
        """Publish the latest trade of a symbol (``price:{symbol}``); readers need no load.

        The price stays the latest while ``feed`` is alive (its heartbeats, see
        :meth:`heartbeat`; a push sends one when the last is half a TTL old), and expires
        at the price TTL once the feed falls silent. An older tick never replaces a newer
        one. False when not stored."""
        kind = CacheKind.PRICE
        beat = self._beats.get(feed)
        if beat is None or self._now_us() - beat[1] > self._ttl[kind] * 500:
            await self.heartbeat(feed)
        now = self._now_us()  # not before the run of heartbeats began
        key = self._formats[kind].format_map({"symbol": tick.symbol})
        self._generation[key] = self._generation.get(key, 0) + 1
        stamp = _micros(tick.time)
        stats = self._price_stats
        skipped = stats.skipped_writes
        stored = await self._store(
            kind,
            key,
            _TICK,
            Cached(tick, stamp, "source"),
            stats,
            announce=True,
            version=stamp,
            extra={FEED_FIELD: feed, PUSHED_FIELD: str(now)},
            expire_ms=max(self.settings.price_hold_ms, self._ttl[kind]),
        )
        if stats.skipped_writes != skipped:
            # Not stored (failed, open breaker, LOCKDOWN): the symbol's cached price may be
            # older than the feed, so no price pushed before now may be held any longer.
            self._beats.pop(feed, None)
        return stored

    async def get_price(
        self, symbol: str, *, max_age_ms: int | None = None, allow_stale: bool = False
    ) -> Cached[TickData] | None:
        near = self.near
        if (
            near is not None
            and max_age_ms is None
            and not self.bypass
            and CacheKind.PRICE in self._near_kinds
        ):
            # the hot path: a near-cache hit without any other work
            found = near.get(self._price_prefix + symbol + "}")
            if found is not None and (
                self._price_max_age_us is None
                or self._now_us() - found.source_us <= self._price_max_age_us
            ):
                stats = self._price_stats
                stats.hits += 1
                stats.near_hits += 1
                return cast(Cached[TickData], found)
        return await self.read(
            CacheKind.PRICE,
            _TICK,
            None,
            max_age_ms=max_age_ms,
            allow_stale=allow_stale,
            symbol=symbol,
        )

    async def push_orderbook(self, book: OrderBook) -> bool:
        """Replace one side of a book (sorted set ``book:{symbol}:{side}``, score = price)."""
        kind = CacheKind.ORDERBOOK
        stats = self._stats[kind]
        key = self._formats[kind].format_map({"symbol": book.symbol, "side": book.side})
        self._generation[key] = self._generation.get(key, 0) + 1
        if self.bypass or self.client is None:
            return False
        version = _micros(book.time)
        if self.read_only:
            stats.skipped_writes += 1
            self._mark_dirty(kind, key, version)
            return False
        ttl = self._ttl[kind]
        members = {
            f"{format(level.price, 'f')}|{format(level.qty, 'f')}": float(level.price)
            for level in book.levels
        }
        write = self.client.zreplace_if_newer(
            key,
            members,
            version_key=key + ":t",
            version=version,
            expire_at_ms=time.time_ns() // 1_000_000 + ttl,
        )
        done = await self._call(kind, stats, key, write, version)
        if done is _FAILED:
            stats.skipped_writes += 1
            self._mark_dirty(kind, key, version)
            return False
        if not done:  # a newer book is cached
            stats.refused_writes += 1
            return False
        stats.writes += 1
        if self.near is not None and kind in self._near_kinds:
            self.near.put(key, Cached(book, _micros(book.time), "near"), ttl)
            await self._announce(kind, key, stats)
        return True

    async def get_orderbook(
        self, symbol: str, side: str, *, max_age_ms: int | None = None, allow_stale: bool = False
    ) -> Cached[OrderBook] | None:
        kind = CacheKind.ORDERBOOK
        stats = self._stats[kind]
        if self.bypass or self.client is None:
            stats.misses += 1
            return None
        key = self._formats[kind].format_map({"symbol": symbol, "side": side})
        max_age_us = max_age_ms * 1000 if max_age_ms is not None else self._max_age_us[kind]
        near = self.near if kind in self._near_kinds else None
        if near is not None:
            found = near.get(key)
            if found is not None and (
                max_age_us is None or self._now_us() - found.source_us <= max_age_us
            ):
                stats.hits += 1
                stats.near_hits += 1
                return cast(Cached[OrderBook], found)
        if (self._dirty and key in self._dirty and not await self._clean(kind, key, stats)) or (
            self._dirty_kinds and self._kind_dirty(kind)
        ):
            stats.misses += 1  # what is cached may be older than the feed
            return None
        pipe = self.client.pipeline()
        pipe.zrange(key, 0, -1, desc=side == "bid")
        pipe.get(key + ":t")
        result = await self._call(kind, stats, key, pipe.execute())  # one slot: {symbol}
        if result is _FAILED or result[1] is None or not result[0]:  # none, or a tombstone
            stats.misses += 1
            return None
        members, stamp = result
        levels = []
        for member, _score in members:
            price, qty = member.split("|", 1)
            levels.append(BookLevel.trusted({"price": Decimal(price), "qty": Decimal(qty)}))
        source_us = int(stamp)
        book = OrderBook.trusted(  # the book was validated when it was pushed
            {
                "symbol": symbol,
                "side": cast(Literal["bid", "ask"], side),
                "levels": tuple(levels),
                "time": _EPOCH + source_us * _MICROSECOND,
            }
        )
        cached = Cached(book, source_us, "cache")
        if max_age_us is not None and self._now_us() - source_us > max_age_us:
            stats.stale_reads += 1
            if not allow_stale:
                return None
            cached = replace(cached, stale=True)
        stats.hits += 1
        if near is not None and not cached.stale:
            near.put(key, replace(cached, origin="near"), self._ttl[kind])
        return cached

    # -- near-cache invalidation ------------------------------------------------------------------------
    async def _announce(self, kind: CacheKind, key: str, stats: KindStats) -> None:
        if self.client is None or self._subscription is None:
            return
        message = f"{self._instance}|{key}"
        await self._call(kind, stats, self._channel, self.client.publish(self._channel, message))

    def _on_invalidation(self, message: bytes | None) -> None:
        if self.near is None:
            return
        if message is None:  # the channel was lost: invalidations may have been missed
            self.near.clear()
            return
        sender, _, key = message.decode("utf-8", "replace").partition("|")
        if sender != self._instance:
            self.near.invalidate(key)

    # -- state ---------------------------------------------------------------------------------------------
    def _emit(self, priority: Priority, type_: str, key: str | None, **payload: Any) -> None:
        if self.events is not None:
            try:
                self.events(
                    Event(priority=priority, type=type_, source="cache", payload=payload, key=key)
                )
            except Exception as exc:  # events never break a cache call
                log.debug("event %s not published: %s", type_, exc)

    async def _emit_stats(self) -> None:
        """One P3 event per interval with each kind's hits and misses since the last one."""
        last = dict.fromkeys(CacheKind, (0, 0))
        while True:
            await asyncio.sleep(self.settings.stats_event_interval_s)
            counts = {}
            for kind, stats in self._stats.items():
                hits, misses = stats.hits, stats.misses
                before = last[kind]
                if (hits, misses) != before:
                    counts[kind.value] = {"hits": hits - before[0], "misses": misses - before[1]}
                    last[kind] = (hits, misses)
            if counts:
                self._emit(Priority.P3, "cache.stats", "cache.stats", kinds=counts)

    def _on_transition(self, transition: Transition) -> None:
        self._emit(
            Priority.P1,
            "cache.breaker",
            f"breaker:{transition.breaker}",
            breaker=transition.breaker,
            shard=transition.shard,
            previous=transition.previous.value,
            current=transition.current.value,
            reason=transition.reason,
        )
        self.transitions.append(transition)
        del self.transitions[:-100]
        log.warning(
            "cache circuit breaker %s: %s -> %s (%s)",
            transition.breaker,
            transition.previous.value,
            transition.current.value,
            transition.reason,
        )

    def on_safety_change(self, change: SafetyChange) -> None:
        """FAIL forces the fallback path (bypass); LOCKDOWN stops cache writes."""
        self.bypass = (
            self.client is None or not self.settings.enabled or change.current is SafetyState.FAIL
        )
        self.read_only = change.current is SafetyState.LOCKDOWN
        if self.bypass and self.near is not None:
            self.near.clear()

    def stats(self) -> dict[str, KindStats]:
        return {kind.value: stats for kind, stats in self._stats.items()}

    def summary(self) -> dict[str, Any]:
        return {
            "client": self.client.name if self.client is not None else None,
            "bypass": self.bypass,
            "read_only": self.read_only,
            "breaker": self.breaker.summary() if self._remote else None,
            "near_cache": None
            if self.near is None
            else {
                "kinds": sorted(k.value for k in self._near_kinds),
                "entries": len(self.near),
                "invalidations": self.near.invalidations,
                "cleared": self.near.cleared,
            },
            "kinds": {
                kind.value: {
                    "ttl_ms": self._ttl[kind],
                    "budget_ms": self._budget[kind] * 1000,
                    **s.as_dict(),
                }
                for kind, s in self._stats.items()
            },
        }


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def _micros(when: datetime) -> int:
    """Microseconds since the epoch, exactly."""
    return (when - _EPOCH) // _MICROSECOND


def micros_of(when: datetime | None) -> int | None:
    """For ``source_time``: a contract's time as microseconds since the epoch."""
    return None if when is None else _micros(when)
