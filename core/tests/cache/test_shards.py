"""A sharded cache (a Redis Cluster's masters) has a breaker per shard: a failing shard
bypasses only its own keys, and after a failover its keys use the promoted node's breaker.

The client is the memory cache as a remote one, split into shards by the keys' hash tags
(``pos:{A}`` is on the shard ``routes["A"]``); a shard can be taken down (every call on one
of its keys raises) and its keys handed to another shard name (a failover).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import pytest

from qts_data.cache import BreakerState, CacheKind, CacheManager, CacheSettings, codec_for
from qts_data.cache.breaker import BreakerSettings, ShardedBreaker, Transition
from qts_data.contracts import BookLevel, Event, OrderBook, Position, TickData
from qts_data.interfaces import Value
from qts_data_memory.cache import MemoryCacheClient, MemoryPipeline

POSITION = codec_for(Position)
NOW = datetime.now(timezone.utc)
DEFAULT_SHARD = "n0"


class ShardedMemory(MemoryCacheClient):
    """One memory holds every shard's data; ``routes`` says which shard serves a hash tag."""

    in_process = False

    def __init__(self, routes: dict[str, str]) -> None:
        super().__init__()
        self.routes = dict(routes)
        self.down: set[str] = set()
        self.calls: dict[str, int] = {}

    def shard_of(self, key: str) -> str | None:
        start = key.find("{")
        end = key.find("}", start + 1)
        tag = key[start + 1 : end] if start >= 0 and end > start + 1 else key
        return self.routes.get(tag, DEFAULT_SHARD)

    def shards(self) -> set[str]:
        return {DEFAULT_SHARD, *self.routes.values()}

    def fault(self, key: str) -> None:
        shard = self.shard_of(key) or DEFAULT_SHARD
        self.calls[shard] = self.calls.get(shard, 0) + 1
        if shard in self.down:
            raise ConnectionError(f"shard {shard} down")

    async def hgetall(self, key: str) -> dict[str, bytes]:
        self.fault(key)
        return await super().hgetall(key)

    async def hset_if_newer(
        self, key: str, mapping: Mapping[str, Value], *, version_field: str, expire_at_ms: int
    ) -> bool:
        self.fault(key)
        return await super().hset_if_newer(
            key, mapping, version_field=version_field, expire_at_ms=expire_at_ms
        )

    async def zreplace_if_newer(
        self,
        key: str,
        mapping: Mapping[str, float],
        *,
        version_key: str,
        version: int,
        expire_at_ms: int,
    ) -> bool:
        self.fault(key)
        return await super().zreplace_if_newer(
            key, mapping, version_key=version_key, version=version, expire_at_ms=expire_at_ms
        )

    async def delete(self, *keys: str) -> int:
        for key in keys:
            self.fault(key)
        return await super().delete(*keys)

    async def publish(self, channel: str, message: Value) -> int:
        self.fault(channel)
        return await super().publish(channel, message)

    def pipeline(self, transaction: bool = False) -> MemoryPipeline:
        return FaultyPipeline(self, transaction)


class FaultyPipeline(MemoryPipeline):
    """Fails when a queued command's key is on a shard that is down."""

    _client: ShardedMemory

    async def execute(self) -> list[Any]:
        for _command, args in self._commands:
            if args:
                self._client.fault(args[0])
        return await super().execute()


def position(symbol: str, qty: str = "10") -> Position:
    return Position(symbol=symbol, qty=qty, avg_price="71000", updated_at=NOW)


class Source:
    """The store behind the cache: the latest position per symbol, loads counted."""

    def __init__(self) -> None:
        self.positions: dict[str, Position] = {}
        self.loads: dict[str, int] = {}

    def loader(self, symbol: str) -> Any:
        async def load() -> Position:
            self.loads[symbol] = self.loads.get(symbol, 0) + 1
            return self.positions[symbol]

        return load


#: Judged after 5 calls, open for 30 s: long enough that only a new shard ends the bypass.
SMALL = BreakerSettings(window_size=10, minimum_calls=5, wait_s=30, max_wait_s=60)


def manager_over(client: ShardedMemory, **settings: Any) -> CacheManager:
    return CacheManager(client, CacheSettings(breaker=SMALL, **settings))


async def write(manager: CacheManager, source: Source, symbol: str, qty: str) -> bool:
    source.positions[symbol] = position(symbol, qty)
    return await manager.put(CacheKind.POSITION, source.positions[symbol], POSITION, symbol=symbol)


async def read(manager: CacheManager, source: Source, symbol: str) -> Position:
    found = await manager.read(CacheKind.POSITION, POSITION, source.loader(symbol), symbol=symbol)
    assert found is not None
    return found.value


@pytest.fixture
def client() -> ShardedMemory:
    client = ShardedMemory({"A": "n1", "B": "n2", "C": "n3"})
    client.name = "memory"  # what the stack builder does
    return client


async def test_a_failing_shard_bypasses_only_its_keys(client: ShardedMemory) -> None:
    manager, source = manager_over(client), Source()
    for symbol in "ABC":
        await write(manager, source, symbol, "1")
    client.down.add("n3")
    for _ in range(10):
        for symbol in "ABC":
            assert await read(manager, source, symbol) == source.positions[symbol]
    assert source.loads.get("A", 0) == 0 and source.loads.get("B", 0) == 0  # hits
    assert source.loads["C"] == 10  # every read of C went to the source
    calls = client.calls["n3"]
    await read(manager, source, "C")
    assert client.calls["n3"] == calls  # n3's breaker is open: C's keys skip the cache
    breakers = manager.breaker.shards
    assert breakers["n3"].state is BreakerState.OPEN
    assert breakers["n1"].state is breakers["n2"].state is BreakerState.CLOSED
    assert manager.breaker.default.state is BreakerState.CLOSED
    assert manager.breaker.state is BreakerState.OPEN  # the aggregate: some keys bypass
    assert [(t.shard, t.current) for t in manager.transitions] == [("n3", BreakerState.OPEN)]
    assert manager.transitions[0].breaker == "cache:memory@n3"
    summary = manager.summary()["breaker"]
    assert summary["state"] == "OPEN" and summary["rejecting"] == ["n3"]
    assert {name: s["state"] for name, s in summary["shards"].items()} == {
        "n1": "CLOSED",
        "n2": "CLOSED",
        "n3": "OPEN",
    }
    # Writes to the healthy shards go on; C's are skipped.
    assert await write(manager, source, "A", "2")
    assert not await write(manager, source, "C", "2")
    assert (await read(manager, source, "A")).qty == 2 and source.loads.get("A", 0) == 0


async def test_after_a_failover_the_keys_hit_again_at_once_through_a_fresh_breaker(
    client: ShardedMemory,
) -> None:
    manager, source = manager_over(client), Source()
    for symbol in "ABC":
        await write(manager, source, symbol, "1")
    client.down.add("n3")
    for _ in range(6):
        await read(manager, source, "C")
    assert manager.breaker.of("n3").state is BreakerState.OPEN
    client.routes["C"] = "n3r"  # n3's replica took over its slots
    loads = source.loads["C"]
    assert await read(manager, source, "C") == position("C", "1")
    assert source.loads["C"] == loads  # a hit, long before n3's 30 s wait is over
    assert manager.breaker.state is BreakerState.CLOSED
    assert set(manager.breaker.shards) == {"n1", "n2", "n3r"}  # n3 no longer serves: dropped
    summary = manager.summary()["breaker"]
    assert set(summary["shards"]) == {"n1", "n2", "n3r"} and summary["rejecting"] == []
    assert summary["transitions"] == 1  # the dropped breaker's count is kept
    assert summary["not_permitted"] >= 1


async def test_a_key_written_while_its_shard_failed_is_read_from_the_source_after_the_failover(
    client: ShardedMemory,
) -> None:
    """The write of C failed: its cached value (on the promoted replica too) is older than the
    store. Reads go to the store until a tombstone lands on the new shard; never the old value."""
    manager, source = manager_over(client), Source()
    await write(manager, source, "C", "1")
    client.down.add("n3")
    assert not await write(manager, source, "C", "2")  # skipped: C is dirty
    client.routes["C"] = "n3r"  # the replica holds qty 1 (the memory kept it)
    assert (await client.hgetall(manager.key(CacheKind.POSITION, {"symbol": "C"})))["v"]
    assert await read(manager, source, "C") == position("C", "2")  # tombstone, then the store
    assert await read(manager, source, "C") == position("C", "2")
    found = await manager.get(CacheKind.POSITION, POSITION, symbol="C")
    assert found is not None and found.origin == "cache" and found.value.qty == 2
    assert manager.stats()["position"].invalidations == 1  # the tombstone


async def test_dirty_keys_of_a_failing_shard_stay_dirty_while_others_are_cleaned(
    client: ShardedMemory,
) -> None:
    manager, source = manager_over(client), Source()
    await write(manager, source, "A", "1")
    await write(manager, source, "C", "1")
    client.down.update({"n1", "n3"})
    assert not await write(manager, source, "A", "2")
    assert not await write(manager, source, "C", "2")
    client.down.discard("n1")  # n1 is back (its breaker has not opened: 1 failure)
    assert await read(manager, source, "A") == position("A", "2")  # cleaned on n1
    assert await read(manager, source, "C") == position("C", "2")  # n3 still down: source
    key_c = manager.key(CacheKind.POSITION, {"symbol": "C"})
    key_a = manager.key(CacheKind.POSITION, {"symbol": "A"})
    assert key_c in manager._dirty and key_a not in manager._dirty


async def test_a_new_topology_lets_the_other_open_breakers_probe_at_once(
    client: ShardedMemory,
) -> None:
    """A cluster refuses every key while a master's slots are uncovered (CLUSTERDOWN): the
    healthy shards' breakers open too. The failover's new shard ends their wait."""
    manager, source = manager_over(client), Source()
    for symbol in "ABC":
        await write(manager, source, symbol, "1")
    client.down.update({"n1", "n2", "n3"})
    for _ in range(6):
        for symbol in "ABC":
            await read(manager, source, symbol)
    assert all(b.state is BreakerState.OPEN for b in manager.breaker.shards.values())
    client.down.clear()
    client.routes["C"] = "n3r"
    assert await read(manager, source, "C") == position("C", "1")  # the new shard: a hit
    loads = dict(source.loads)
    for _ in range(3):  # the probes of n1 and n2, not 30 s later
        for symbol in "AB":
            await read(manager, source, symbol)
    assert manager.breaker.state is BreakerState.CLOSED
    assert source.loads == loads
    half_open = [t for t in manager.transitions if t.current is BreakerState.HALF_OPEN]
    assert {t.shard for t in half_open} == {"n1", "n2"}
    assert all(t.reason.startswith("the shards were rearranged") for t in half_open)


async def test_order_books_and_invalidations_go_through_the_breaker_of_their_key_and_channel(
    client: ShardedMemory,
) -> None:
    client.routes["X"] = "n3"
    manager = manager_over(client, near_cache=["price"])
    await manager.start()
    book = OrderBook(symbol="X", side="bid", time=NOW, levels=(BookLevel(price="100", qty="1"),))
    assert await manager.push_orderbook(book)
    assert (await manager.get_orderbook("X", "bid")) is not None
    await manager.push_price(TickData(time=NOW, symbol="A", price="1", volume=1))
    assert set(manager.breaker.shards) >= {"n3", "n1", DEFAULT_SHARD}  # the channel: n0
    client.down.add("n3")
    for _ in range(5):
        await manager.get_orderbook("X", "ask")
    assert manager.breaker.of("n3").state is BreakerState.OPEN
    assert await manager.get_orderbook("X", "bid") is None  # bypassed
    assert manager.breaker.of(DEFAULT_SHARD).state is BreakerState.CLOSED
    await manager.stop()


async def test_breaker_events_name_the_shard(client: ShardedMemory) -> None:
    seen: list[Event] = []
    manager = CacheManager(client, CacheSettings(breaker=SMALL), events=seen.append)
    source = Source()
    await write(manager, source, "B", "1")
    client.down.add("n2")
    for _ in range(5):
        await read(manager, source, "B")
    (event,) = [e for e in seen if e.type == "cache.breaker"]
    assert event.payload["shard"] == "n2"
    assert event.payload["breaker"] == "cache:memory@n2"
    assert event.key == "breaker:cache:memory@n2"


async def test_a_client_of_one_shard_has_the_one_breaker_it_always_had() -> None:
    class OneShard(ShardedMemory):
        shard_of = MemoryCacheClient.shard_of  # the interface's default: one shard
        shards = MemoryCacheClient.shards

    client = OneShard({})
    manager, source = manager_over(client), Source()
    await write(manager, source, "A", "1")
    client.down.add(DEFAULT_SHARD)
    for _ in range(5):
        await read(manager, source, "A")
    assert manager.breaker.state is manager.breaker.default.state is BreakerState.OPEN
    assert manager.breaker.shards == {}
    summary = manager.summary()["breaker"]
    assert summary == manager.breaker.default.summary() and "shards" not in summary
    assert [(t.breaker, t.shard) for t in manager.transitions] == [("cache:", None)]


def test_forced_open_and_disabled_apply_to_shards_made_later() -> None:
    seen: list[Transition] = []
    group = ShardedBreaker("cache", SMALL, serving=lambda: {"a", "b"})
    group.listeners.append(seen.append)
    group.of("a")
    group.force_open()
    assert group.of("b").state is BreakerState.FORCED_OPEN
    assert not group.of("b").try_acquire()
    assert group.state is BreakerState.FORCED_OPEN
    group.reset()
    assert group.state is BreakerState.CLOSED and group.of("b").try_acquire()
    group.disable()
    assert group.of("a").state is BreakerState.DISABLED
    assert [t.shard for t in seen if t.current is BreakerState.FORCED_OPEN] == [None, "a"]


def test_the_aggregate_is_the_worst_serving_breaker_and_ignores_retired_shards() -> None:
    serving = {"a", "b"}
    group = ShardedBreaker("cache", SMALL, serving=lambda: serving)
    for n in range(5):
        breaker = group.of("b")
        assert breaker.try_acquire()
        breaker.on_failure()
        if n == 3:
            assert group.failure_rate is None  # fewer than minimum_calls yet
    group.of("a").try_acquire()  # first seen, but the serving shards did not change
    assert group.state is BreakerState.OPEN and not group.allows_calls
    serving = {"a", "c"}  # b was replaced by c
    assert group.state is BreakerState.CLOSED  # b no longer serves: it counts for nothing
    assert group.of("c").state is BreakerState.CLOSED
    assert "b" not in group._shards and group.transitions == 1


def test_the_default_breaker_alone_summarises_like_one_breaker() -> None:
    group = ShardedBreaker("cache", SMALL)
    assert group.of(None) is group.default
    assert group.summary() == group.default.summary()
    assert group.state is BreakerState.CLOSED


async def test_shard_lookups_are_cheap_enough_to_run_on_every_call(client: ShardedMemory) -> None:
    """Routing is a dict lookup once the shard's breaker exists: no new breaker per call."""
    manager, source = manager_over(client), Source()
    await write(manager, source, "A", "1")
    breaker = manager.breaker.of("n1")
    for _ in range(100):
        await read(manager, source, "A")
    assert manager.breaker.of("n1") is breaker
    await asyncio.sleep(0)


async def test_a_shard_still_refusing_just_after_the_rearrangement_is_probed_again_soon(
    client: ShardedMemory,
) -> None:
    manager, source = manager_over(client), Source()
    for symbol in "AC":
        await write(manager, source, symbol, "1")
    client.down.update({"n1", "n3"})
    for _ in range(6):
        for symbol in "AC":
            await read(manager, source, symbol)
    client.down.discard("n3")
    client.routes["C"] = "n3r"
    await read(manager, source, "C")  # the new shard: n1's wait ends
    for _ in range(3):
        await read(manager, source, "A")  # n1's probes: it still refuses
    assert manager.breaker.of("n1").state is BreakerState.OPEN
    client.down.clear()  # n1 learned of the promotion too
    await asyncio.sleep(0.3)  # SETTLING_RETRY_S, not its 30 s wait
    loads = source.loads["A"]
    for _ in range(4):
        await read(manager, source, "A")
    assert manager.breaker.of("n1").state is BreakerState.CLOSED
    assert source.loads["A"] == loads  # hits, through the probes
