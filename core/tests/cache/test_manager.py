"""The cache manager over a cache client: patterns, staleness, stampedes, budgets, breaker, near cache."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from qts_data.cache import BreakerState, CacheKind, CacheManager, CacheSettings, codec_for
from qts_data.cache.breaker import BreakerSettings
from qts_data.contracts import BookLevel, OrderBook, Position, SafetyChange, SafetyState, TickData
from qts_data.interfaces import MessageHandler, Subscription, Value
from qts_data_memory.cache import MemoryCacheClient

POSITION = codec_for(Position)
NOW = datetime.now(timezone.utc)


class RemoteLike(MemoryCacheClient):
    """A memory client that says it is remote, and can be made slow or failing (a fault injector)."""

    in_process = False

    def __init__(self) -> None:
        super().__init__()
        self.delay = 0.0
        self.down = False
        self.calls = 0

    async def _fault(self) -> None:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down:
            raise ConnectionError("cache server down")

    async def hgetall(self, key: str) -> dict[str, bytes]:
        await self._fault()
        return await super().hgetall(key)

    async def hset(self, key: str, mapping: Mapping[str, Value], ttl_ms: int | None = None) -> int:
        await self._fault()
        return await super().hset(key, mapping, ttl_ms)

    async def delete(self, *keys: str) -> int:
        await self._fault()
        return await super().delete(*keys)

    async def publish(self, channel: str, message: Value) -> int:
        await self._fault()
        return await super().publish(channel, message)

    async def subscribe(self, channel: str, handler: MessageHandler) -> Subscription:
        self.handlers = [*getattr(self, "handlers", []), handler]
        return await super().subscribe(channel, handler)


def position(symbol: str = "005930", qty: str = "10") -> Position:
    return Position(symbol=symbol, qty=qty, avg_price="71000", updated_at=NOW)


class Loader:
    def __init__(
        self, value: Any = None, delay: float = 0.0, error: Exception | None = None
    ) -> None:
        self.value, self.delay, self.error, self.calls = value, delay, error, 0

    async def __call__(self) -> Any:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return self.value


def test_keys_carry_namespace_version_and_hash_tag() -> None:
    manager = CacheManager(MemoryCacheClient(), CacheSettings(namespace="desk1:"))
    assert manager.key(CacheKind.PRICE, {"symbol": "005930"}) == "desk1:v2:price:{005930}"
    assert (
        manager.key(CacheKind.ORDERBOOK, {"symbol": "KRW-BTC", "side": "bid"})
        == "desk1:v2:book:{KRW-BTC}:bid"
    )
    assert manager.key(CacheKind.RISK, {}) == "desk1:v2:risk:account"
    with pytest.raises(TypeError, match="needs parameter 'symbol'"):
        manager.key(CacheKind.POSITION, {})


def test_ttls_and_budgets_are_configurable_per_kind() -> None:
    settings = CacheSettings.model_validate({"ttl_ms": {"price": 250}, "budget_ms": {"price": 2}})
    manager = CacheManager(RemoteLike(), settings)
    assert manager.ttl_ms(CacheKind.PRICE) == 250
    assert manager.ttl_ms(CacheKind.POSITION) == 1000
    assert manager.summary()["kinds"]["price"]["budget_ms"] == 2
    assert manager.summary()["kinds"]["risk"]["budget_ms"] == 5


async def test_cache_aside_loads_once_then_hits() -> None:
    manager = CacheManager(MemoryCacheClient())
    loader = Loader(position())
    for _ in range(5):
        assert (
            await manager.get_or_load(CacheKind.POSITION, POSITION, loader, symbol="005930")
            == position()
        )
    stats = manager.stats()["position"]
    assert loader.calls == 1
    assert (stats.misses, stats.hits, stats.loads, stats.writes) == (1, 4, 1, 1)
    assert stats.hit_rate == pytest.approx(0.8)


async def test_thousand_concurrent_misses_cause_one_load() -> None:
    manager = CacheManager(RemoteLike())
    loader = Loader(position(), delay=0.02)
    results = await asyncio.gather(
        *(
            manager.get_or_load(CacheKind.POSITION, POSITION, loader, symbol="005930")
            for _ in range(1000)
        )
    )
    assert loader.calls == 1
    assert all(r == position() for r in results)
    assert manager.stats()["position"].merged_loads == 999


class SlowReplies(MemoryCacheClient):
    """Remote-like: a read sees the data when it is sent; its reply arrives 3 ms later."""

    in_process = False

    async def hgetall(self, key: str) -> dict[str, bytes]:
        data = await super().hgetall(key)
        await asyncio.sleep(0.003)
        return data


@pytest.mark.parametrize("write", ["put", "invalidate"])
async def test_a_read_begun_after_a_write_ended_does_not_join_a_read_begun_before(
    write: str,
) -> None:
    """Concurrent readers share one cache read; a reader that starts after a write has
    returned must not get what a shared read sent before the write saw."""
    manager = CacheManager(SlowReplies(), CacheSettings(default_budget_ms=50))
    source = {"qty": "1"}
    loader = Loader()

    async def load() -> Position:
        loader.calls += 1
        return position("A", source["qty"])

    await manager.put(CacheKind.POSITION, await load(), POSITION, symbol="A")
    first = asyncio.create_task(manager.read(CacheKind.POSITION, POSITION, load, symbol="A"))
    await asyncio.sleep(0)  # its HGETALL is out: it will answer qty 1
    source["qty"] = "2"
    if write == "put":
        await manager.put(CacheKind.POSITION, await load(), POSITION, symbol="A")
    else:
        await manager.invalidate(CacheKind.POSITION, symbol="A")
    second = await manager.read(CacheKind.POSITION, POSITION, load, symbol="A")
    assert (await first) is not None and second is not None
    assert second.value.qty == 2
    assert manager.stats()["position"].merged_loads == 0


async def test_a_failed_shared_load_reaches_every_waiter_and_the_next_call_retries() -> None:
    manager = CacheManager(MemoryCacheClient())
    loader = Loader(error=RuntimeError("database down"), delay=0.01)
    results = await asyncio.gather(
        *(manager.get_or_load(CacheKind.POSITION, POSITION, loader, symbol="A") for _ in range(10)),
        return_exceptions=True,
    )
    assert loader.calls == 1
    assert all(isinstance(r, RuntimeError) for r in results)
    loader.error, loader.value = None, position("A")
    assert await manager.get_or_load(CacheKind.POSITION, POSITION, loader, symbol="A") == position(
        "A"
    )
    assert loader.calls == 2


async def test_write_through_failure_removes_the_entry_and_raises() -> None:
    manager = CacheManager(MemoryCacheClient())
    await manager.put(CacheKind.POSITION, position(qty="1"), POSITION, symbol="005930")

    async def failing_write() -> None:
        raise RuntimeError("INSERT failed")

    with pytest.raises(RuntimeError, match="INSERT failed"):
        await manager.write_through(
            CacheKind.POSITION, position(qty="2"), POSITION, failing_write, symbol="005930"
        )
    assert await manager.get(CacheKind.POSITION, POSITION, symbol="005930") is None
    assert manager.stats()["position"].invalidations == 1


async def test_a_load_overtaken_by_a_write_is_not_stored() -> None:
    manager = CacheManager(MemoryCacheClient())
    slow_old = Loader(position(qty="1"), delay=0.05)
    reader = asyncio.create_task(
        manager.get_or_load(CacheKind.POSITION, POSITION, slow_old, symbol="005930")
    )
    await asyncio.sleep(0.01)

    async def write_new() -> None:
        return None

    await manager.write_through(
        CacheKind.POSITION, position(qty="2"), POSITION, write_new, symbol="005930"
    )
    assert (await reader).qty == Decimal(1)  # the reader gets what it read...
    cached = await manager.get(CacheKind.POSITION, POSITION, symbol="005930")
    assert cached is not None and cached.value.qty == Decimal(
        2
    )  # ...but the cache keeps the newer write


async def test_stale_values_are_reloaded_or_returned_marked_when_allowed() -> None:
    manager = CacheManager(MemoryCacheClient())
    old = int((time.time() - 2) * 1_000_000)
    await manager.put(CacheKind.POSITION, position(qty="1"), POSITION, source_us=old, symbol="A")
    assert await manager.get(CacheKind.POSITION, POSITION, max_age_ms=500, symbol="A") is None
    marked = await manager.get(
        CacheKind.POSITION, POSITION, max_age_ms=500, allow_stale=True, symbol="A"
    )
    assert marked is not None and marked.stale and marked.age_ms > 1500
    fresh = Loader(position(qty="3"))
    value = await manager.get_or_load(
        CacheKind.POSITION, POSITION, fresh, max_age_ms=500, symbol="A"
    )
    assert value.qty == Decimal(3) and fresh.calls == 1
    assert manager.stats()["position"].stale_reads == 3
    unbounded = await manager.get(CacheKind.POSITION, POSITION, symbol="A")
    assert unbounded is not None and not unbounded.stale


async def test_configured_max_age_applies_to_a_kind() -> None:
    manager = CacheManager(
        MemoryCacheClient(), CacheSettings.model_validate({"max_age_ms": {"risk": 100}})
    )
    codec = codec_for(list[Position])
    await manager.put(CacheKind.RISK, [], codec, source_us=int((time.time() - 1) * 1e6))
    assert await manager.get(CacheKind.RISK, codec) is None


async def test_real_time_price_push_is_read_without_a_load() -> None:
    manager = CacheManager(MemoryCacheClient())
    tick = TickData(time=NOW, symbol="005930", price="71000.5", volume=3, bid="71000", ask="71001")
    assert await manager.push_price(tick)
    cached = await manager.get_price("005930")
    assert cached is not None and cached.value == tick and cached.origin == "cache"
    assert await manager.get_price("000660") is None
    old = tick.model_copy(update={"time": NOW - timedelta(seconds=5)})
    assert await manager.push_price(old) is False  # an older tick never replaces a newer one
    assert manager.stats()["price"].refused_writes == 1
    again = await manager.get_price("005930")
    assert again is not None and again.value == tick
    await manager.push_price(old.model_copy(update={"symbol": "000660"}))
    assert await manager.get_price("000660", max_age_ms=1000) is None


async def test_order_book_push_keeps_exact_levels_best_first() -> None:
    manager = CacheManager(MemoryCacheClient())
    bids = OrderBook(
        symbol="005930",
        side="bid",
        levels=[BookLevel(price="71000.10", qty="5"), BookLevel(price="70900", qty="0.00000001")],
        time=NOW,
    )
    asks = OrderBook(
        symbol="005930",
        side="ask",
        levels=[BookLevel(price="71100", qty="2"), BookLevel(price="71200", qty="1")],
        time=NOW,
    )
    assert await manager.push_orderbook(bids) and await manager.push_orderbook(asks)
    got_bids = await manager.get_orderbook("005930", "bid")
    got_asks = await manager.get_orderbook("005930", "ask")
    assert got_bids is not None and got_asks is not None
    assert [(format(lv.price, "f"), format(lv.qty, "f")) for lv in got_bids.value.levels] == [
        ("71000.10", "5"),
        ("70900", "0.00000001"),
    ]
    assert [str(lv.price) for lv in got_asks.value.levels] == ["71100", "71200"]
    assert got_bids.value.time == NOW
    smaller = OrderBook(
        symbol="005930", side="bid", levels=[BookLevel(price="70000", qty="1")], time=NOW
    )
    await manager.push_orderbook(smaller)  # replaces the side, no leftover levels
    again = await manager.get_orderbook("005930", "bid")
    assert again is not None and [str(lv.price) for lv in again.value.levels] == ["70000"]


async def test_a_slow_cache_never_holds_a_reader_longer_than_its_budget() -> None:
    client = RemoteLike()
    client.delay = 1.0  # a frozen server
    manager = CacheManager(client, CacheSettings(default_budget_ms=20))
    loader = Loader(position())
    started = time.perf_counter()
    assert await manager.get_or_load(CacheKind.POSITION, POSITION, loader, symbol="A") == position()
    assert time.perf_counter() - started < 0.5
    stats = manager.stats()["position"]
    assert stats.timeouts == 1 and stats.fallbacks == 1


async def test_breaker_opens_then_reads_skip_the_cache_and_recovery_refills_it() -> None:
    client = RemoteLike()
    settings = CacheSettings(
        breaker=BreakerSettings(
            window_size=10, minimum_calls=5, wait_s=0.05, max_wait_s=0.1, half_open_calls=1
        )
    )
    manager = CacheManager(client, settings)
    loader = Loader(position())
    client.down = True
    for _ in range(5):
        await manager.get_or_load(CacheKind.POSITION, POSITION, loader, symbol="A")
    assert manager.breaker.state is BreakerState.OPEN
    calls = client.calls
    for _ in range(20):
        assert (
            await manager.get_or_load(CacheKind.POSITION, POSITION, loader, symbol="A")
            == position()
        )
    assert client.calls == calls  # while open, the cache is not called at all
    assert manager.stats()["position"].fallbacks == 25
    client.down = False
    await asyncio.sleep(0.06)
    await manager.get_or_load(CacheKind.POSITION, POSITION, loader, symbol="A")  # the probe
    assert manager.breaker.state is BreakerState.CLOSED
    await manager.get_or_load(CacheKind.POSITION, POSITION, loader, symbol="A")  # refills
    loads = loader.calls
    cached = await manager.get(CacheKind.POSITION, POSITION, symbol="A")
    assert cached is not None and cached.origin == "cache" and loader.calls == loads
    states = [t.current for t in manager.transitions]
    assert states == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


async def test_near_cache_serves_hits_and_is_invalidated_by_another_process_write() -> None:
    shared = RemoteLike()  # one "server", two processes
    settings = CacheSettings.model_validate({"near_cache": ["price"]})
    a, b = CacheManager(shared, settings), CacheManager(shared, settings)
    await a.start()
    await b.start()
    tick = TickData(time=NOW, symbol="005930", price="71000", volume=1)
    await b.push_price(tick)
    assert (await a.get_price("005930")).origin == "cache"  # type: ignore[union-attr]
    calls = shared.calls
    for _ in range(10):
        cached = await a.get_price("005930")
        assert cached is not None and cached.origin == "near"
    assert shared.calls == calls  # served in-process
    newer = tick.model_copy(
        update={"price": Decimal("71100"), "time": NOW + timedelta(milliseconds=1)}
    )
    await b.push_price(newer)  # b announces the write; a drops its near copy
    cached = await a.get_price("005930")
    assert cached is not None and cached.value.price == Decimal("71100")
    assert a.stats()["price"].near_hits == 10
    await a.stop()
    await b.stop()


async def test_near_cache_is_emptied_when_the_invalidation_channel_is_lost() -> None:
    shared = RemoteLike()
    manager = CacheManager(shared, CacheSettings.model_validate({"near_cache": ["price"]}))
    await manager.start()
    await manager.push_price(TickData(time=NOW, symbol="A", price="1", volume=1))
    assert manager.near is not None and len(manager.near) == 1
    for handler in shared.handlers:
        handler(None)  # what a client does when its subscription connection drops
    assert len(manager.near) == 0
    await manager.stop()


async def test_lockdown_stops_writes_fail_bypasses_normal_resumes() -> None:
    manager = CacheManager(MemoryCacheClient())
    manager.on_safety_change(SafetyChange(SafetyState.NORMAL, SafetyState.LOCKDOWN))
    assert not await manager.put(CacheKind.POSITION, position(), POSITION, symbol="A")
    assert manager.stats()["position"].skipped_writes == 1
    manager.on_safety_change(SafetyChange(SafetyState.LOCKDOWN, SafetyState.FAIL))
    loader = Loader(position())
    await manager.get_or_load(CacheKind.POSITION, POSITION, loader, symbol="A")
    await manager.get_or_load(CacheKind.POSITION, POSITION, loader, symbol="A")
    assert loader.calls == 2  # bypassed: always the source
    manager.on_safety_change(SafetyChange(SafetyState.FAIL, SafetyState.NORMAL))
    await manager.get_or_load(CacheKind.POSITION, POSITION, loader, symbol="A")
    await manager.get_or_load(CacheKind.POSITION, POSITION, loader, symbol="A")
    assert loader.calls == 3


async def test_an_unreadable_entry_is_dropped_and_treated_as_a_miss() -> None:
    client = MemoryCacheClient()
    manager = CacheManager(client)
    key = manager.key(CacheKind.POSITION, {"symbol": "A"})
    await client.hset(key, {"v": b"{not json", "t": b"1"})
    loader = Loader(position("A"))
    assert await manager.get_or_load(CacheKind.POSITION, POSITION, loader, symbol="A") == position(
        "A"
    )
    assert loader.calls == 1


async def test_summary_reports_latency_percentiles_and_breaker() -> None:
    manager = CacheManager(RemoteLike())
    for _ in range(50):
        await manager.get_or_load(CacheKind.PRICE, POSITION, Loader(position()), symbol="A")
    summary = manager.summary()
    assert summary["breaker"]["state"] == "CLOSED"
    latency = summary["kinds"]["price"]["latency_us"]
    assert latency["p50"] is not None and latency["p50"] <= latency["p99"]


async def test_refresh_ahead_reloads_a_hot_value_before_it_expires() -> None:
    settings = CacheSettings.model_validate(
        {"ttl_ms": {"position": 200}, "refresh_ahead": {"position": 0.5}}
    )
    manager = CacheManager(MemoryCacheClient(), settings)
    loader = Loader(position())
    await manager.get_or_load(CacheKind.POSITION, POSITION, loader, symbol="A")  # miss: load 1
    await manager.get_or_load(
        CacheKind.POSITION, POSITION, loader, symbol="A"
    )  # young hit: no refresh
    assert loader.calls == 1
    misses = manager.stats()["position"].misses
    for _ in range(8):  # 400 ms of reads every 50 ms: twice the TTL, never a miss
        await asyncio.sleep(0.05)
        await manager.get_or_load(CacheKind.POSITION, POSITION, loader, symbol="A")
    await asyncio.sleep(0)
    stats = manager.stats()["position"]
    assert stats.misses == misses
    assert stats.refreshes >= 2 and loader.calls >= 3
    await manager.stop()


async def test_cache_events_breaker_at_p1_stale_at_p2_counts_at_p3() -> None:
    from qts_data.contracts import Event, Priority

    seen: list[Event] = []
    client = RemoteLike()
    settings = CacheSettings(stats_event_interval_s=0.02, miss_event_sample=1)
    manager = CacheManager(client, settings, events=seen.append)
    await manager.start()
    loader = Loader(position())
    await manager.get_or_load(CacheKind.POSITION, POSITION, loader, symbol="A")  # a miss
    await manager.put(
        CacheKind.POSITION, position(), POSITION, source_us=int((time.time() - 5) * 1e6), symbol="B"
    )
    await manager.get(CacheKind.POSITION, POSITION, max_age_ms=100, symbol="B")  # stale
    client.down = True
    for _ in range(20):  # the default minimum_calls
        await manager.get_or_load(CacheKind.POSITION, POSITION, loader, symbol="A")
    await asyncio.sleep(0.05)
    await manager.stop()
    by_type = {e.type: e for e in seen}
    assert by_type["cache.breaker"].priority is Priority.P1
    assert by_type["cache.breaker"].payload["current"] == "OPEN"
    assert by_type["cache.stale"].priority is Priority.P2
    assert by_type["cache.miss"].priority is Priority.P3
    stats_events = [e for e in seen if e.type == "cache.stats"]
    assert stats_events and stats_events[0].payload["kinds"]["position"]["misses"] >= 1


async def test_a_hit_publishes_no_event() -> None:
    seen: list[object] = []
    manager = CacheManager(MemoryCacheClient(), events=seen.append)
    await manager.put(CacheKind.POSITION, position(), POSITION, symbol="A")
    for _ in range(100):
        await manager.get(CacheKind.POSITION, POSITION, symbol="A")
    assert seen == []


class SimClock:
    """One simulated clock for the manager (µs) and the memory client (ns)."""

    def __init__(self) -> None:
        self.us = int(NOW.timestamp() * 1_000_000)

    def ns(self) -> int:
        return self.us * 1000

    def micros(self) -> int:
        return self.us

    def advance(self, ms: float) -> None:
        self.us += int(ms * 1000)


def sim_manager() -> tuple[CacheManager, SimClock]:
    clock = SimClock()
    manager = CacheManager(MemoryCacheClient(clock=clock.ns), clock_us=clock.micros)
    return manager, clock


def tick_at(clock: SimClock, symbol: str = "005930", price: str = "71000") -> TickData:
    when = datetime.fromtimestamp(clock.us / 1_000_000, timezone.utc)
    return TickData(time=when, symbol=symbol, price=price, volume=1)


async def test_a_pushed_price_stays_the_latest_while_its_feed_beats_and_expires_when_it_stops() -> (
    None
):
    manager, clock = sim_manager()
    tick = tick_at(clock)
    assert await manager.push_price(tick, feed="upbit")
    for _ in range(20):  # 1 s without a trade of the symbol, the feed beating every 50 ms
        clock.advance(50)
        assert await manager.heartbeat("upbit")
        found = await manager.get_price("005930")
        assert found is not None and found.value == tick
    clock.advance(101)  # the feed fell silent: one TTL (100 ms) after its last beat
    assert await manager.get_price("005930") is None
    # Heartbeats again: a new run, which does not bring back a price pushed before it.
    assert await manager.heartbeat("upbit")
    assert await manager.get_price("005930") is None
    fresh = tick_at(clock, price="71100")
    assert await manager.push_price(fresh, feed="upbit")
    for _ in range(10):
        clock.advance(50)
        assert await manager.heartbeat("upbit")
    found = await manager.get_price("005930")
    assert found is not None and found.value == fresh


async def test_a_price_without_heartbeats_expires_at_its_ttl() -> None:
    manager, clock = sim_manager()
    assert await manager.push_price(tick_at(clock), feed="quiet")
    clock.advance(90)
    assert await manager.get_price("005930") is not None
    clock.advance(20)  # a push sends a heartbeat, which lasts one TTL; nothing since
    assert await manager.get_price("005930") is None


async def test_a_push_not_stored_ends_the_hold_of_every_price_of_the_feed() -> None:
    manager, clock = sim_manager()
    assert await manager.push_price(tick_at(clock, "A"), feed="upbit")
    assert await manager.push_price(tick_at(clock, "B"), feed="upbit")
    clock.advance(50)
    manager.on_safety_change(
        SafetyChange(previous=SafetyState.NORMAL, current=SafetyState.LOCKDOWN)
    )
    assert await manager.push_price(tick_at(clock, "A", "2"), feed="upbit") is False
    manager.on_safety_change(
        SafetyChange(previous=SafetyState.LOCKDOWN, current=SafetyState.NORMAL)
    )
    for _ in range(4):
        clock.advance(50)
        await manager.heartbeat("upbit")
    # A's cached price is older than the feed's; B's may be current, but the feed cannot
    # say so any more: both are held no longer than their TTL.
    assert await manager.get_price("A") is None
    assert await manager.get_price("B") is None
