"""The ``tiered`` composition: market-data storage in tiers (seeds/001).

Candle reads go down the tiers until the requested range is complete:

1. **memory** (:class:`~qts_data.tiers.MemoryCandleTier`): per ``(symbol, interval)``
   the most recent ``memory_candles`` candles (1,000), for ``memory_ttl_s`` (1 h),
   least-recently-used series evicted beyond ``max_series``;
2. **disk** (:class:`~qts_data.tiers.DiskCandleTier`, when ``disk_path`` is set):
   compressed files of the last ``disk_days`` days (30), each valid ``disk_ttl_s`` (1 day);
3. **store**: the adapter named by ``store`` (SQLite or any other), the persistent history;
4. **upstream**: the market-data source named by ``source`` (an exchange), asked only
   for the buckets the store does not have, which are then upserted into the store.

Each tier serves a request only if it holds the complete range: a tier tracks the
spans it covers, so an empty bucket inside a covered span is a genuine gap (no
trading), not a miss. A tier that covers part of the range supplies that part
and the next tier is asked for the rest only. What a lower tier returns refills
the tiers above it (upstream -> store -> disk -> memory).

Which buckets the tiers handle: only complete ones, those that ended at least
``settle_s`` (10 s) ago, so the exchange has closed them. The current (and any
future) bucket is never asked of the store or the upstream source and never
cached as covered; it is answered from candles upserted through this adapter
and from real-time ticks.

Real-time data (ticks: trades, ticker and order-book updates) is kept in memory
only (:class:`~qts_data.tiers.RealtimeTickTier`), for ``realtime_ttl_s`` (30 min)
after it arrives: ``ingest_ticks`` never reaches the store, ``fetch_tick_data``
is served from memory alone. As the adapter contract says, a bucket that has no
candle in any tier but has ticks is aggregated from the ticks; such a candle is
not persisted (upsert it to keep it).

Writes of candles (``upsert_ohlcv``) go to the store first, then replace the
candles held in memory and remove the disk files they fall in. Everything else
(positions, ledger, execution logs, configuration) passes straight to the store.

:meth:`TieredAdapter.fetch_candles` returns a :class:`~qts_data.tiers.StorageResponse`
that says which tier served the read, whether it was a cache hit, how long it took
and how many candles it has; ``fetch_ohlcv`` returns the candles alone and raises
:class:`~qts_data.errors.BackendError` where ``fetch_candles`` reports a failure.

Limits: a candle written to the store by another process is seen once the cached
copies expire; a store keeps no record of buckets the upstream source confirmed
empty, so once the caches have expired such buckets are asked of the source again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from pydantic import Field

from qts_data.compositions.delegating import DelegatingAdapter
from qts_data.contracts import OHLCV, HealthStatus, Interval, TickData
from qts_data.contracts.checks import check_range as _check_range
from qts_data.errors import BackendError, ConfigError
from qts_data.interfaces import (
    Capability,
    DataSourceAdapter,
    GapChecking,
    IngestResult,
    MarketDataSource,
    TickSource,
)
from qts_data.plugins.registry import BuildContext, ComponentKind, ComponentRef, Settings
from qts_data.tiers import (
    Coverage,
    DiskCandleTier,
    MemoryCandleTier,
    RealtimeTickTier,
    Span,
    StorageMetadata,
    StorageResponse,
    TieredStats,
    TierName,
)
from qts_data.tiers.response import CACHE_TIERS, TICKS

__all__ = ["TieredAdapter", "TieredSettings", "make_tiered"]

log = logging.getLogger("qts_data.tiered")
UTC = timezone.utc
#: How often (at most) fills of the disk tier also sweep it of expired files.
SWEEP_EVERY_S = 3600.0


class TieredSettings(Settings):
    """``[adapters.NAME] type = "tiered"``."""

    store: Annotated[str, ComponentRef(ComponentKind.ADAPTER)] = Field(
        description="the adapter that persists candles and holds everything else"
    )
    source: Annotated[str | None, ComponentRef(ComponentKind.SOURCE)] = Field(
        default=None,
        description="the upstream market-data source; None: the store is the last tier",
    )
    disk_path: str | None = Field(
        default=None,
        description="folder of the compressed disk tier (relative to the configuration file); None: no disk tier",
    )
    memory_candles: int = Field(default=1000, gt=0, description="candles kept per series in memory")
    memory_ttl_s: float = Field(default=3600, gt=0, description="life of a series in memory")
    max_series: int = Field(
        default=1000, gt=0, description="(symbol, interval) series held in memory (LRU)"
    )
    disk_ttl_s: float = Field(default=86_400, gt=0, description="life of a disk-cache file")
    disk_days: int = Field(default=30, gt=0, description="the disk tier keeps the last N days")
    realtime_ttl_s: float = Field(
        default=1800, gt=0, description="how long ticks are kept in memory after they arrive"
    )
    realtime_max_ticks: int = Field(
        default=1_000_000, gt=0, description="ticks kept per symbol (the oldest go first)"
    )
    upstream_max_buckets: int = Field(
        default=100_000,
        gt=0,
        description="most candles one read may ask of the upstream source (a wider read fails)",
    )
    settle_s: float = Field(
        default=10,
        ge=0,
        le=3600,
        description="a bucket counts as complete this long after it ends (the exchange's lag in closing it)",
    )


def _buckets(span: Span, delta: timedelta) -> int:
    return (span[1] - span[0]) // delta


def _runs_between(
    times: Iterable[datetime], lo: datetime, hi: datetime, delta: timedelta
) -> list[Span]:
    """The spans of ``[lo, hi)`` with no bucket in ``times`` (sorted, aligned)."""
    runs: list[Span] = []
    cursor = lo
    for when in times:
        if when > cursor:
            runs.append((cursor, when))
        cursor = max(cursor, when + delta)
    if cursor < hi:
        runs.append((cursor, hi))
    return runs


def _runs_of(starts: Iterable[datetime], delta: timedelta) -> list[Span]:
    """Consecutive bucket starts grouped into spans."""
    runs: list[Span] = []
    for when in starts:
        if runs and runs[-1][1] == when:
            runs[-1] = (runs[-1][0], when + delta)
        else:
            runs.append((when, when + delta))
    return runs


class _Flights:
    """One reader at a time per series on the slow path; the others then find the tiers filled."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, Interval], tuple[asyncio.Lock, list[int]]] = {}

    @asynccontextmanager
    async def hold(self, key: tuple[str, Interval]) -> AsyncIterator[None]:
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                self._locks.pop(key, None)


class _Read:
    """What the tiers below memory supplied for one read."""

    __slots__ = ("candles", "consulted", "error", "resolved", "rows", "upstream_calls")

    def __init__(self) -> None:
        self.candles: list[OHLCV] = []
        self.consulted: list[TierName] = []
        self.rows: dict[str, int] = {}
        self.resolved: list[Span] = []  # spans now known completely
        self.error: str | None = None
        self.upstream_calls = 0

    def fail(self, message: str) -> None:
        self.error = message if self.error is None else f"{self.error}; {message}"


class TieredAdapter(DelegatingAdapter):
    """A store behind memory and disk tiers, above an upstream source; ticks in memory only."""

    def __init__(
        self,
        store: DataSourceAdapter,
        source: MarketDataSource | None = None,
        *,
        disk_path: str | None = None,
        memory_candles: int = 1000,
        memory_ttl_s: float = 3600.0,
        max_series: int = 1000,
        disk_ttl_s: float = 86_400.0,
        disk_days: int = 30,
        realtime_ttl_s: float = 1800.0,
        realtime_max_ticks: int = 1_000_000,
        upstream_max_buckets: int = 100_000,
        settle_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(store)
        self.store = store
        self.source = source
        self.capabilities = store.capabilities | {Capability.TICKS}
        self.memory = MemoryCandleTier(
            max_candles=memory_candles, ttl_s=memory_ttl_s, max_series=max_series, clock=clock
        )
        self.disk: DiskCandleTier | None = (
            DiskCandleTier(disk_path, ttl_s=disk_ttl_s, days=disk_days, wall_clock=wall_clock)
            if disk_path
            else None
        )
        self.realtime = RealtimeTickTier(
            ttl_s=realtime_ttl_s, max_ticks=realtime_max_ticks, clock=clock
        )
        self.upstream_max_buckets = upstream_max_buckets
        self.settle_s = settle_s
        self.counters = TieredStats()
        self._wall = wall_clock
        self._flights = _Flights()
        self._last_sweep = 0.0
        self._clock = clock
        #: Upstream candles the store refused -> persisted later, in the background.
        self._unpersisted: dict[tuple[str, Interval], dict[datetime, OHLCV]] = {}
        self.unpersisted_max = 100_000
        self._persisting: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[int]] = set()
        #: Longest a read waits for the store to take upstream candles before serving them.
        self.persist_wait_s = 1.0
        self._persist_backoff_s = 1.0
        self._retry_timer: asyncio.TimerHandle | None = None

    # -- lifecycle ------------------------------------------------------------------------
    async def open(self) -> None:
        if self.disk is not None:
            self._last_sweep = self._wall()
            removed = await asyncio.to_thread(self.disk.sweep)
            if removed:
                log.info("disk tier %s: %d expired files removed", self.disk.root, removed)

    async def close(self) -> None:
        """Waits for a retry in progress, and tries once more to persist what the store
        refused; what still cannot be stored is named in a warning."""
        if self._retry_timer is not None:
            self._retry_timer.cancel()
            self._retry_timer = None
        task, self._persisting = self._persisting, None
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        if self._unpersisted:
            await self._persist_unpersisted()
        if self._unpersisted:
            left = sum(len(series) for series in self._unpersisted.values())
            log.warning(
                "tiered %s: %d upstream candles were served but never stored (the store "
                "refused them); they will be fetched again",
                self.name or "",
                left,
            )

    # -- candle reads -----------------------------------------------------------------------
    async def fetch_ohlcv(
        self, symbol: str, start: datetime, end: datetime, interval: Interval | str = Interval.D1
    ) -> list[OHLCV]:
        response = await self.fetch_candles(symbol, start, end, interval)
        if not response.success:
            raise BackendError(f"fetch_ohlcv {symbol} {response.error}")
        return response.data

    async def fetch_candles(
        self, symbol: str, start: datetime, end: datetime, interval: Interval | str = Interval.D1
    ) -> StorageResponse:
        """Candles of ``symbol`` whose bucket starts in ``[start, end)``, with where they came from."""
        started = time.perf_counter()
        self.require(Capability.OHLCV, "fetch_ohlcv")
        step = Interval.parse(interval)
        _check_range(start, end, "fetch_ohlcv", required=True)
        lo, hi = step.ceil(start), step.ceil(end)
        if lo >= hi:
            meta = StorageMetadata(
                "memory", True, (time.perf_counter() - started) * 1000, 0, ("memory",)
            )
            return StorageResponse([], meta)
        counters = self.counters
        counters.requests += 1
        horizon = step.floor(datetime.fromtimestamp(self._wall() - self.settle_s, UTC))
        complete_hi = min(hi, horizon)

        memory = counters.tiers["memory"]
        memory.consulted += 1
        if lo < complete_hi:
            candles, missing = self.memory.lookup(symbol, step, lo, complete_hi)
        else:
            candles, missing = [], []
        memory.rows += len(candles)
        rows: dict[str, int] = {"memory": len(candles)}
        tiers: tuple[TierName, ...] = ("memory",)
        source: TierName = "memory"
        error: str | None = None
        upstream_calls = 0
        if not missing:
            memory.served += 1
        else:
            below = await self._read_below(symbol, step, missing)
            tiers += tuple(below.consulted)
            source = tiers[-1]
            error, upstream_calls = below.error, below.upstream_calls
            for name, count in below.rows.items():
                rows[name] = rows.get(name, 0) + count
            candles = sorted([*candles, *below.candles], key=_time_of)
        if hi > horizon:  # the buckets not complete yet: what was upserted here, then ticks
            live = self.memory.between(symbol, step, max(lo, horizon), hi)
            if live:
                candles = [*candles, *live]
                rows["memory"] += len(live)
        if self.realtime.has(symbol):
            aggregated = self.realtime.candles(
                symbol, step, lo, hi, skip=[candle.time for candle in candles]
            )
            if aggregated:
                rows[TICKS] = len(aggregated)
                candles = sorted([*candles, *aggregated], key=_time_of)
        if error is not None:
            counters.failures += 1
        meta = StorageMetadata(
            source=source,
            cache_hit=source in CACHE_TIERS and error is None,
            processing_time_ms=(time.perf_counter() - started) * 1000,
            data_count=len(candles),
            tiers=tiers,
            rows_by_tier={name: count for name, count in rows.items() if count},
            upstream_calls=upstream_calls,
        )
        return StorageResponse(candles, meta, error is None, error)

    async def _read_below(self, symbol: str, step: Interval, missing: list[Span]) -> _Read:
        """Complete ``missing`` from disk, store and upstream; refill the tiers above."""
        read = _Read()
        async with self._flights.hold((symbol, step)):
            # Another reader may have filled memory while this one waited.
            refound: list[OHLCV] = []
            still: list[Span] = []
            for lo, hi in missing:
                got, left = self.memory.lookup(symbol, step, lo, hi)
                refound.extend(got)
                still.extend(left)
            if refound:
                read.candles.extend(refound)
                read.rows["memory"] = len(refound)
                self.counters.tiers["memory"].rows += len(refound)
            if not still:
                self.counters.tiers["memory"].served += 1
                return read
            memory_missing = still

            disk_missing = memory_missing
            if self.disk is not None:
                read.consulted.append("disk")
                disk = self.counters.tiers["disk"]
                disk.consulted += 1
                got, disk_missing = await asyncio.to_thread(
                    self._disk_lookup, symbol, step, memory_missing
                )
                read.candles.extend(got)
                read.rows["disk"] = len(got)
                disk.rows += len(got)
                if not disk_missing:
                    disk.served += 1
                    self.memory.fill(symbol, step, got, memory_missing)
                    return read
                disk_found = got
            else:
                disk_found = []

            lower = await self._read_store(symbol, step, disk_missing, read)
            read.candles.extend(lower)
            # Refill: disk from store/upstream, memory from everything below it.
            if self.disk is not None and (lower or read.resolved):
                await self._disk_fill(symbol, step, lower, read.resolved)
            known = Coverage(memory_missing)  # what the disk covered, then what was resolved below
            for lo, hi in disk_missing:
                known.remove(lo, hi)
            for lo, hi in read.resolved:
                known.add(lo, hi)
            self.memory.fill(symbol, step, [*disk_found, *lower], known)
        return read

    def _disk_lookup(
        self, symbol: str, step: Interval, spans: list[Span]
    ) -> tuple[list[OHLCV], list[Span]]:
        assert self.disk is not None
        found: list[OHLCV] = []
        missing: list[Span] = []
        for lo, hi in spans:
            got, left = self.disk.lookup(symbol, step, lo, hi)
            found.extend(got)
            missing.extend(left)
        return found, missing

    async def _disk_fill(
        self, symbol: str, step: Interval, candles: list[OHLCV], covered: list[Span]
    ) -> None:
        disk = self.disk
        if disk is None:
            return
        try:
            await asyncio.to_thread(disk.fill, symbol, step, candles, covered)
            if self._wall() - self._last_sweep >= SWEEP_EVERY_S:
                self._last_sweep = self._wall()
                await asyncio.to_thread(disk.sweep)
        except OSError as exc:  # a cache that cannot be written is only slower
            log.warning("disk tier %s: cannot write %s %s: %s", disk.root, symbol, step.value, exc)

    async def _read_store(
        self, symbol: str, step: Interval, spans: list[Span], read: _Read
    ) -> list[OHLCV]:
        """Read ``spans`` from the store, completing them from upstream; marks what is resolved."""
        counters = self.counters
        read.consulted.append("store")
        store_counter = counters.tiers["store"]
        store_counter.consulted += 1
        delta = step.delta
        out: list[OHLCV] = []
        needed_upstream = False
        upstream_ok = True
        stored_rows = upstream_rows = 0
        for lo, hi in spans:
            # bucket boundaries, whatever a tier handed down
            lo, hi = step.ceil(lo), step.ceil(hi)
            if lo >= hi:
                read.resolved.append((lo, hi))
                continue
            try:
                stored = await self.store.fetch_ohlcv(symbol, lo, hi, step)
            except Exception as exc:
                read.fail(
                    f"store {self.store.name or type(self.store).__name__}: {type(exc).__name__}: {exc}"
                )
                continue
            if self.source is None:
                out.extend(stored)
                stored_rows += len(stored)
                read.resolved.append((lo, hi))
                continue
            runs = _runs_between([c.time for c in stored], lo, hi, delta)
            if runs and isinstance(self.store, GapChecking):
                hull = (runs[0][0], runs[-1][1])
                if _buckets(hull, delta) <= self.upstream_max_buckets:
                    try:
                        runs = _runs_of(await self.store.find_gaps(symbol, step, *hull), delta)
                    except Exception as exc:  # fall back to what the read showed
                        log.debug("find_gaps failed, using the read's gaps: %s", exc)
            if not runs:
                out.extend(stored)
                stored_rows += len(stored)
                read.resolved.append((lo, hi))
                continue
            needed_upstream = True
            fetched = await self._from_upstream(symbol, step, runs, read)
            if fetched is None:
                upstream_ok = False
                out.extend(stored)  # partial: not marked resolved, asked again next time
                stored_rows += len(stored)
                continue
            replaced = {c.time for c in fetched}
            kept = [c for c in stored if c.time not in replaced]
            out.extend(kept)
            out.extend(fetched)
            stored_rows += len(kept)
            upstream_rows += len(fetched)
            read.resolved.append((lo, hi))
        read.rows["store"] = stored_rows
        store_counter.rows += stored_rows
        if needed_upstream:
            read.consulted.append("upstream")
            upstream = counters.tiers["upstream"]
            upstream.consulted += 1
            upstream.rows += upstream_rows
            read.rows["upstream"] = upstream_rows
            if upstream_ok and read.error is None:
                upstream.served += 1
        elif read.error is None:
            store_counter.served += 1
        return out

    async def _from_upstream(
        self, symbol: str, step: Interval, runs: list[Span], read: _Read
    ) -> list[OHLCV] | None:
        """The upstream candles of the buckets in ``runs``, upserted into the store; None on failure."""
        source = self.source
        assert source is not None
        delta = step.delta
        wanted = sum(_buckets(run, delta) for run in runs)
        if wanted > self.upstream_max_buckets:
            read.fail(
                f"upstream: the read needs {wanted:,} {step.value} candles, more than "
                f"upstream_max_buckets ({self.upstream_max_buckets:,}); narrow the range or raise the limit"
            )
            return None
        hull = (runs[0][0], runs[-1][1])
        calls = [hull] if _buckets(hull, delta) <= self.upstream_max_buckets else runs
        gaps = {run[0] + n * delta for run in runs for n in range(_buckets(run, delta))}
        fetched: dict[datetime, OHLCV] = {}
        for lo, hi in calls:
            try:
                self.counters.upstream_calls += 1
                read.upstream_calls += 1
                got = await source.fetch_candles(symbol, step, lo, hi)
            except Exception as exc:
                read.fail(
                    f"upstream {source.name or type(source).__name__}: {type(exc).__name__}: {exc}"
                )
                return None
            for candle in got:
                if isinstance(candle, OHLCV) and candle.symbol == symbol and candle.time in gaps:
                    fetched[candle.time] = candle
        rows = [fetched[when] for when in sorted(fetched)]
        self.counters.upstream_candles += len(rows)
        if rows:
            await self._persist(symbol, step, rows)
        return rows

    async def _persist(self, symbol: str, step: Interval, rows: list[OHLCV]) -> None:
        """Upsert upstream candles into the store, waiting at most ``persist_wait_s``: a
        store that is slow (locked by another writer) finishes in the background, and one
        that refuses them has them kept for later. The read serves them either way."""
        task = asyncio.get_running_loop().create_task(self.store.upsert_ohlcv(rows, step))
        done, _ = await asyncio.wait({task}, timeout=self.persist_wait_s)

        late = task not in done
        if late:  # served before the store has them
            self.counters.unpersisted_candles += len(rows)

        def ended(finished: asyncio.Task[int]) -> None:
            self._writes.discard(finished)
            error = None if finished.cancelled() else finished.exception()
            if error is not None or finished.cancelled():
                self._keep_unpersisted(
                    symbol, step, rows, error or asyncio.CancelledError(), counted=late
                )
            elif late:
                self.counters.persisted_later += len(rows)

        if late:
            self._writes.add(task)
            task.add_done_callback(ended)
        else:
            ended(task)

    def _keep_unpersisted(
        self,
        symbol: str,
        step: Interval,
        rows: list[OHLCV],
        exc: BaseException,
        *,
        counted: bool,
    ) -> None:
        """Upstream candles the store refused (locked, down): they are true, so the read
        serves them; they wait here (bounded) for a background retry to persist them."""
        counters = self.counters
        if not counted:
            counters.unpersisted_candles += len(rows)
        pending = self._unpersisted.setdefault((symbol, step), {})
        pending.update((candle.time, candle) for candle in rows)
        total = sum(len(series) for series in self._unpersisted.values())
        while total > self.unpersisted_max and pending:
            pending.pop(next(iter(pending)))
            counters.unpersisted_dropped += 1
            total -= 1
        self._retry_later()
        log.warning(
            "tiered %s: the store did not take %d upstream %s candles of %s (served, kept to "
            "persist later): %s: %s",
            self.name or "",
            len(rows),
            step.value,
            symbol,
            type(exc).__name__,
            exc,
        )

    def _retry_later(self) -> None:
        """A background try to persist the refused candles after a backoff (1 s, doubling to
        30 s while the store keeps refusing): reads never wait on it."""
        if self._retry_timer is None:
            loop = asyncio.get_running_loop()
            self._retry_timer = loop.call_later(self._persist_backoff_s, self._retry_now)

    def _retry_now(self) -> None:
        self._retry_timer = None
        if self._persisting is None or self._persisting.done():
            self._persisting = asyncio.get_running_loop().create_task(self._persist_unpersisted())

    async def _persist_unpersisted(self) -> None:
        for key, pending in list(self._unpersisted.items()):
            symbol, step = key
            rows = [pending[when] for when in sorted(pending)]
            try:
                await self.store.upsert_ohlcv(rows, step)
            except Exception as exc:
                self._persist_backoff_s = min(self._persist_backoff_s * 2, 30.0)
                log.debug("tiered: %s %s still not persisted: %s", symbol, step.value, exc)
                self._retry_later()
                return
            for candle in rows:  # candles kept meanwhile stay for the next try
                pending.pop(candle.time, None)
            if not pending:
                self._unpersisted.pop(key, None)
            self.counters.persisted_later += len(rows)
        self._persist_backoff_s = 1.0

    # -- candle writes ------------------------------------------------------------------------
    async def upsert_ohlcv(
        self, candles: Iterable[OHLCV], interval: Interval | str = Interval.D1
    ) -> int:
        """Write to the store, then replace the candles held in memory and drop the disk files they fall in.

        The series written are locked meanwhile, so a read in flight cannot put back
        what the store held before.
        """
        step = Interval.parse(interval)
        rows = list(candles)
        by_symbol: dict[str, list[OHLCV]] = {}
        for candle in rows:
            if isinstance(candle, OHLCV) and step.floor(candle.time) == candle.time:
                by_symbol.setdefault(candle.symbol, []).append(candle)
        async with AsyncExitStack() as held:
            for symbol in sorted(by_symbol):  # one order, so two writers cannot deadlock
                await held.enter_async_context(self._flights.hold((symbol, step)))
            written = await self.store.upsert_ohlcv(rows, step)
            for symbol, group in by_symbol.items():
                self.memory.put(symbol, step, group)
            disk = self.disk
            if disk is not None and by_symbol:

                def invalidate() -> None:
                    for symbol, group in by_symbol.items():
                        disk.invalidate(symbol, step, (c.time for c in group))

                await asyncio.to_thread(invalidate)
        return written

    # -- real-time data: memory only ----------------------------------------------------------
    async def ingest_ticks(self, ticks: TickSource, *, batch_size: int = 10_000) -> IngestResult:
        """Keep ticks in the real-time tier (memory only, never the store), skipping duplicates."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        received = inserted = 0
        batch: list[TickData] = []
        if isinstance(ticks, AsyncIterable):
            async for tick in ticks:
                batch.append(tick)
                if len(batch) >= batch_size:
                    inserted += self.realtime.add(batch, received)
                    received += len(batch)
                    batch = []
                    await asyncio.sleep(0)
        else:
            for tick in ticks:
                batch.append(tick)
                if len(batch) >= batch_size:
                    inserted += self.realtime.add(batch, received)
                    received += len(batch)
                    batch = []
                    await asyncio.sleep(0)
        if batch:
            inserted += self.realtime.add(batch, received)
            received += len(batch)
        return IngestResult(received=received, inserted=inserted)

    async def fetch_tick_data(self, symbol: str, start: datetime, end: datetime) -> list[TickData]:
        _check_range(start, end, "fetch_tick_data", required=True)
        return self.realtime.between(symbol, start, end)

    # -- statistics and health -----------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Per-tier hits and misses, the overall hit rate, upstream calls, and the tiers' sizes."""
        summary = self.counters.as_dict()
        summary["memory"] = {
            "series": len(self.memory),
            "candles": self.memory.candles,
            "evictions": self.memory.evictions,
            "expirations": self.memory.expirations,
        }
        if self.disk is not None:
            summary["disk"] = {
                "path": str(self.disk.root),
                "files_written": self.disk.files_written,
                "expired": self.disk.expired,
                "corrupt": self.disk.corrupt,
            }
        summary["realtime_ticks"] = len(self.realtime)
        return summary

    def reset_stats(self) -> None:
        self.counters = TieredStats()

    async def health_check(self) -> HealthStatus:
        inner = await self.store.health_check()
        return HealthStatus(
            component=self.name or "tiered",
            state=inner.state,
            latency_ms=inner.latency_ms,
            message=inner.message,
            details={
                "store": inner.component,
                "source": None
                if self.source is None
                else (self.source.name or type(self.source).__name__),
                "tiers": self.stats(),
                **{f"store.{k}": v for k, v in inner.details.items()},
            },
        )

    def describe(self) -> dict[str, Any]:
        return {
            "memory_candles": self.memory.max_candles,
            "max_series": self.memory.max_series,
            "disk_path": None if self.disk is None else str(self.disk.root),
            "source": None if self.source is None else self.source.name,
        }


def _time_of(candle: OHLCV) -> datetime:
    return candle.time


def make_tiered(settings: TieredSettings, ctx: BuildContext) -> TieredAdapter:
    source: MarketDataSource | None = None
    if settings.source is not None:
        found = ctx.component(ComponentKind.SOURCE, settings.source)
        if not isinstance(found, MarketDataSource):
            raise ConfigError(f"sources.{settings.source} is not a market-data source")
        source = found
    return TieredAdapter(
        ctx.adapter(settings.store),
        source,
        disk_path=None if settings.disk_path is None else ctx.resolve_path(settings.disk_path),
        memory_candles=settings.memory_candles,
        memory_ttl_s=settings.memory_ttl_s,
        max_series=settings.max_series,
        disk_ttl_s=settings.disk_ttl_s,
        disk_days=settings.disk_days,
        realtime_ttl_s=settings.realtime_ttl_s,
        realtime_max_ticks=settings.realtime_max_ticks,
        upstream_max_buckets=settings.upstream_max_buckets,
        settle_s=settings.settle_s,
    )
