"""MemoryCacheClient behaviour a generic conformance suite cannot see: LRU order,
expiry on an injected clock, the heap sweep, the max_entries bound, pipeline atomicity."""

from __future__ import annotations

import asyncio
import random

import pytest

from qts_data.errors import CacheTypeError
from qts_data.interfaces import CacheClient
from qts_data_memory.cache import MemoryCacheClient


class FakeClock:
    """A monotonic clock in ns that moves only when told."""

    def __init__(self) -> None:
        self.now = 1_000_000_000

    def __call__(self) -> int:
        return self.now

    def advance_ms(self, ms: float) -> None:
        self.now += int(ms * 1_000_000)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(clock: FakeClock) -> MemoryCacheClient:
    return MemoryCacheClient(max_entries=1000, clock=clock)


def test_memory_cache_client_is_a_cache_client() -> None:
    assert isinstance(MemoryCacheClient(), CacheClient)


@pytest.mark.parametrize("bad", [0, -1])
def test_max_entries_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError, match="max_entries"):
        MemoryCacheClient(max_entries=bad)


# -- LRU ----------------------------------------------------------------------------------------
async def test_lru_evicts_least_recently_used_key_first() -> None:
    cache = MemoryCacheClient(max_entries=3)
    for key in ("a", "b", "c"):
        await cache.set(key, key)
    assert await cache.get("a") == b"a"  # a read counts as use: b is now the oldest
    await cache.set("d", "d")
    assert await cache.get("b") is None
    assert cache.evictions == 1
    assert cache.keys_lru() == ["c", "a", "d"]


async def test_overwrite_counts_as_use_for_lru() -> None:
    cache = MemoryCacheClient(max_entries=2)
    await cache.set("a", "1")
    await cache.set("b", "1")
    await cache.set("a", "2")
    await cache.set("c", "1")
    assert await cache.get("a") == b"2"
    assert await cache.get("b") is None


async def test_hash_and_zset_reads_count_as_use_for_lru() -> None:
    cache = MemoryCacheClient(max_entries=3)
    await cache.hset("h", {"f": "v"})
    await cache.zadd("z", {"m": 1.0})
    await cache.set("s", "v")
    await cache.hget("h", "f")
    await cache.zrange("z")
    await cache.set("new", "v")  # s is the least recently used now
    assert await cache.exists("s") is False
    assert await cache.exists("h")
    assert await cache.exists("z")


async def test_exists_and_ttl_do_not_count_as_use_for_lru() -> None:
    cache = MemoryCacheClient(max_entries=2)
    await cache.set("a", "1")
    await cache.set("b", "1")
    assert await cache.exists("a")
    assert await cache.ttl_ms("a") is None
    await cache.set("c", "1")
    assert await cache.exists("a") is False
    assert cache.keys_lru() == ["b", "c"]


async def test_eviction_count_equals_overflow() -> None:
    cache = MemoryCacheClient(max_entries=10)
    for i in range(25):
        await cache.set(f"k{i}", str(i))
    assert len(cache) == 10
    assert cache.evictions == 15
    assert cache.keys_lru() == [f"k{i}" for i in range(15, 25)]


async def test_eviction_reclaims_expired_keys_before_live_ones(
    clock: FakeClock,
) -> None:
    cache = MemoryCacheClient(max_entries=3, clock=clock)
    await cache.set("old", "v", ttl_ms=10)  # least recently used, but expired by then
    await cache.set("b", "v")
    await cache.set("c", "v")
    clock.advance_ms(11)
    await cache.set("d", "v")
    assert cache.evictions == 0
    assert cache.expired == 1
    assert cache.keys_lru() == ["b", "c", "d"]


async def test_max_entries_bound_holds_under_churn(clock: FakeClock) -> None:
    rng = random.Random(7)
    cache = MemoryCacheClient(max_entries=50, sweep_batch=4, clock=clock)
    for step in range(5000):
        key = f"k{rng.randrange(400)}"
        op = rng.random()
        if op < 0.4:
            await cache.set(key, "v", ttl_ms=rng.randrange(1, 50))
            assert cache.heap_size() <= 2 * len(cache._expires) + 64
        elif op < 0.6:
            await cache.set(key, "v")
        elif op < 0.7:
            await cache.hset(f"h{key}", {"f": "v"}, ttl_ms=rng.randrange(1, 50))
        elif op < 0.8:
            await cache.zadd(f"z{key}", {"m": step})
        elif op < 0.9:
            await cache.delete(key)
        else:
            await cache.get(key)
        clock.advance_ms(rng.random() * 3)
        assert len(cache) <= 50, f"step {step}: {len(cache)} keys held"
    assert cache.evictions > 0
    assert cache.expired > 0


# -- expiry --------------------------------------------------------------------------------------
async def test_key_expires_exactly_at_its_deadline(
    cache: MemoryCacheClient, clock: FakeClock
) -> None:
    await cache.set("k", "v", ttl_ms=100)
    clock.now += 100 * 1_000_000 - 1
    assert await cache.get("k") == b"v"
    assert await cache.ttl_ms("k") == 1
    clock.now += 1
    assert await cache.get("k") is None
    assert await cache.exists("k") is False
    assert await cache.ttl_ms("k") == -2
    assert cache.expired == 1


async def test_ttl_ms_counts_down_on_the_clock(cache: MemoryCacheClient, clock: FakeClock) -> None:
    await cache.set("k", "v", ttl_ms=1000)
    assert await cache.ttl_ms("k") == 1000
    clock.advance_ms(250)
    assert await cache.ttl_ms("k") == 750
    clock.advance_ms(0.5)
    assert await cache.ttl_ms("k") == 750  # rounded up: a live key never reports 0


async def test_set_replaces_ttl_and_set_without_ttl_makes_key_persistent(
    cache: MemoryCacheClient, clock: FakeClock
) -> None:
    await cache.set("k", "v", ttl_ms=100)
    await cache.set("k", "w", ttl_ms=500)
    clock.advance_ms(200)
    assert await cache.get("k") == b"w"
    await cache.set("k", "x")
    assert await cache.ttl_ms("k") is None
    clock.advance_ms(10_000)
    assert await cache.get("k") == b"x"


async def test_hset_and_zadd_keep_existing_ttl_unless_given(
    cache: MemoryCacheClient, clock: FakeClock
) -> None:
    await cache.hset("h", {"a": "1"}, ttl_ms=100)
    await cache.zadd("z", {"a": 1.0}, ttl_ms=100)
    clock.advance_ms(50)
    await cache.hset("h", {"b": "2"})
    await cache.zadd("z", {"b": 2.0})
    assert await cache.ttl_ms("h") == 50
    assert await cache.ttl_ms("z") == 50
    await cache.hset("h", {"c": "3"}, ttl_ms=1000)
    assert await cache.ttl_ms("h") == 1000
    clock.advance_ms(50)
    assert await cache.hgetall("h") == {"a": b"1", "b": b"2", "c": b"3"}
    assert await cache.zcard("z") == 0


async def test_expire_on_missing_or_expired_key_returns_false(
    cache: MemoryCacheClient, clock: FakeClock
) -> None:
    assert await cache.expire("missing", 100) is False
    await cache.set("k", "v", ttl_ms=10)
    clock.advance_ms(10)
    assert await cache.expire("k", 100) is False


async def test_expire_with_non_positive_ttl_deletes_the_key(cache: MemoryCacheClient) -> None:
    await cache.set("k", "v")
    assert await cache.expire("k", 0) is True
    assert await cache.exists("k") is False


@pytest.mark.parametrize("ttl", [0, -5])
async def test_set_with_non_positive_ttl_is_rejected_and_writes_nothing(
    cache: MemoryCacheClient, ttl: int
) -> None:
    await cache.set("k", "old")
    with pytest.raises(ValueError, match="ttl_ms"):
        await cache.set("k", "new", ttl_ms=ttl)
    with pytest.raises(ValueError, match="ttl_ms"):
        await cache.hset("h", {"f": "v"}, ttl_ms=ttl)
    assert await cache.get("k") == b"old"
    assert await cache.exists("h") is False


@pytest.mark.parametrize("write_ttl_ms", [None, 60_000])
async def test_sweep_reclaims_expired_keys_on_writes_without_reads(
    clock: FakeClock, write_ttl_ms: int | None
) -> None:
    cache = MemoryCacheClient(max_entries=1000, sweep_batch=10, clock=clock)
    for i in range(35):
        await cache.set(f"t{i}", "v", ttl_ms=5)
    clock.advance_ms(5)
    assert len(cache) == 35  # nothing reclaimed until something happens
    await cache.set("w0", "v", ttl_ms=write_ttl_ms)
    assert len(cache) == 35 + 1 - 10  # bounded: one sweep batch per write
    for i in range(1, 4):
        await cache.set(f"w{i}", "v", ttl_ms=write_ttl_ms)
    assert len(cache) == 4
    assert cache.expired == 35
    assert cache.heap_size() == (0 if write_ttl_ms is None else 4)


async def test_delete_and_overwrite_leave_stale_heap_entries_that_never_expire_live_keys(
    cache: MemoryCacheClient, clock: FakeClock
) -> None:
    await cache.set("a", "v", ttl_ms=10)
    await cache.delete("a")
    await cache.set("a", "again")  # same key, now persistent
    await cache.set("b", "v", ttl_ms=10)
    await cache.set("b", "v", ttl_ms=1000)  # TTL moved later
    clock.advance_ms(20)
    await cache.set("trigger", "v")
    assert await cache.get("a") == b"again"
    assert await cache.get("b") == b"v"
    assert cache.expired == 0


async def test_expiry_heap_is_rebuilt_when_stale_entries_dominate(cache: MemoryCacheClient) -> None:
    await cache.set("live", "v", ttl_ms=60_000)
    peak = 0
    for _ in range(10_000):
        await cache.set("churn", "v", ttl_ms=60_000)
        await cache.delete("churn")  # leaves its heap entry behind, stale
        peak = max(peak, cache.heap_size())
    assert peak <= 2 * 2 + 64
    assert await cache.ttl_ms("live") == 60_000


async def test_refreshing_a_ttl_later_does_not_grow_the_heap(cache: MemoryCacheClient) -> None:
    for _ in range(1000):
        await cache.set("hot", "v", ttl_ms=60_000)
        await cache.hset("h", {"f": "v"}, ttl_ms=60_000)
    assert cache.heap_size() == 2


async def test_sweep_follows_a_ttl_moved_later_or_earlier(
    cache: MemoryCacheClient, clock: FakeClock
) -> None:
    await cache.set("later", "v", ttl_ms=10)
    await cache.set("earlier", "v", ttl_ms=1000)
    clock.advance_ms(5)
    await cache.expire("later", 10)  # deadline 10 -> 15
    await cache.set("earlier", "w", ttl_ms=5)  # deadline 1000 -> 10
    clock.advance_ms(7)  # t = 12
    await cache.set("trigger1", "v")
    assert cache.keys_lru() == ["later", "trigger1"]  # no reads: the sweep did this
    clock.advance_ms(3)  # t = 15
    await cache.set("trigger2", "v")
    assert cache.keys_lru() == ["trigger1", "trigger2"]
    assert cache.expired == 2


async def test_purge_expired_reclaims_everything_due(
    cache: MemoryCacheClient, clock: FakeClock
) -> None:
    for i in range(100):
        await cache.set(f"k{i}", "v", ttl_ms=1 + i % 2)
    await cache.set("live", "v", ttl_ms=10)
    clock.advance_ms(2)
    assert cache.purge_expired() == 100
    assert cache.keys_lru() == ["live"]


async def test_health_check_reports_keys_evictions_and_expired(clock: FakeClock) -> None:
    cache = MemoryCacheClient(max_entries=2, clock=clock)
    await cache.set("a", "v", ttl_ms=1)
    await cache.set("b", "v")
    await cache.set("c", "v")  # evicts a (not yet expired)
    await cache.set("d", "v", ttl_ms=1)  # evicts b
    clock.advance_ms(1)
    status = await cache.health_check()
    assert status.healthy
    assert status.details == {
        "keys": 1,
        "max_entries": 2,
        "ttl_keys": 0,
        "evictions": 2,
        "expired": 1,
    }


# -- types -----------------------------------------------------------------------------------------
async def test_str_values_are_stored_as_utf8(cache: MemoryCacheClient) -> None:
    await cache.set("k", "가격 €")
    assert await cache.get("k") == "가격 €".encode()
    await cache.hset("h", {"f": "é"})
    assert await cache.hget("h", "f") == b"\xc3\xa9"


async def test_value_of_other_type_is_rejected(cache: MemoryCacheClient) -> None:
    with pytest.raises(TypeError, match="bytes or str"):
        await cache.set("k", 12)  # type: ignore[arg-type]
    assert await cache.exists("k") is False


async def test_wrong_type_error_names_key_and_its_type(cache: MemoryCacheClient) -> None:
    await cache.hset("book", {"f": "v"})
    with pytest.raises(CacheTypeError, match=r"WRONGTYPE.*'book' holds a hash, not a string"):
        await cache.get("book")
    with pytest.raises(CacheTypeError, match="holds a hash, not a zset"):
        await cache.zadd("book", {"m": 1})
    await cache.set("s", "v")
    with pytest.raises(CacheTypeError, match="'s' holds a string, not a hash"):
        await cache.hgetall("s")
    assert await cache.hgetall("book") == {"f": b"v"}


async def test_set_replaces_a_key_of_any_type(cache: MemoryCacheClient) -> None:
    await cache.zadd("k", {"m": 1})
    await cache.set("k", "v")
    assert await cache.get("k") == b"v"


async def test_hset_merges_fields_and_counts_new_ones(cache: MemoryCacheClient) -> None:
    assert await cache.hset("h", {"a": "1", "b": "2"}) == 2
    assert await cache.hset("h", {"b": "3", "c": "4"}) == 1
    assert await cache.hgetall("h") == {"a": b"1", "b": b"3", "c": b"4"}


async def test_hgetall_returns_a_copy(cache: MemoryCacheClient) -> None:
    await cache.hset("h", {"a": "1"})
    (await cache.hgetall("h"))["a"] = b"changed"
    assert await cache.hget("h", "a") == b"1"


async def test_emptied_hash_and_zset_no_longer_exist(cache: MemoryCacheClient) -> None:
    await cache.hset("h", {"a": "1", "b": "2"}, ttl_ms=1000)
    assert await cache.hdel("h", "a", "b", "missing") == 2
    assert await cache.exists("h") is False
    assert await cache.ttl_ms("h") == -2
    await cache.zadd("z", {"a": 1})
    assert await cache.zrem("z", "a") == 1
    assert await cache.exists("z") is False
    assert cache.keys_lru() == []


async def test_zrange_by_rank_follows_redis_indexing(cache: MemoryCacheClient) -> None:
    await cache.zadd("z", {"c": 3, "a": 1, "b": 2, "d": 4, "e": 5})
    assert await cache.zrange("z") == [("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5)]
    assert await cache.zrange("z", 1, 2) == [("b", 2), ("c", 3)]
    assert await cache.zrange("z", -2, -1) == [("d", 4), ("e", 5)]
    assert await cache.zrange("z", -100, 0) == [("a", 1)]
    assert await cache.zrange("z", 3, 100) == [("d", 4), ("e", 5)]
    assert await cache.zrange("z", 4, 2) == []
    assert await cache.zrange("z", 0, 1, desc=True) == [("e", 5), ("d", 4)]
    assert await cache.zrange("z", -1, -1, desc=True) == [("a", 1)]
    assert await cache.zrange("missing") == []


async def test_zset_ties_order_by_member_and_reverse_in_desc(cache: MemoryCacheClient) -> None:
    await cache.zadd("z", {"b": 1, "a": 1, "c": 0})
    assert [m for m, _ in await cache.zrange("z")] == ["c", "a", "b"]
    assert [m for m, _ in await cache.zrange("z", desc=True)] == ["b", "a", "c"]


async def test_zrangebyscore_is_inclusive_and_sees_rescoring(cache: MemoryCacheClient) -> None:
    await cache.zadd("z", {"a": 1, "b": 2, "c": 3, "d": 4})
    assert await cache.zrangebyscore("z", 2, 3) == [("b", 2), ("c", 3)]
    assert await cache.zadd("z", {"a": 2.5, "e": 10}) == 1
    assert await cache.zrangebyscore("z", 2, 3) == [("b", 2), ("a", 2.5), ("c", 3)]
    assert await cache.zrangebyscore("z", float("-inf"), float("inf")) == await cache.zrange("z")
    assert await cache.zrangebyscore("z", 5, 4) == []


async def test_nan_score_is_rejected(cache: MemoryCacheClient) -> None:
    with pytest.raises(ValueError, match="not a number"):
        await cache.zadd("z", {"a": 1, "b": float("nan")})
    assert await cache.exists("z") is False


async def test_delete_counts_only_live_keys(cache: MemoryCacheClient, clock: FakeClock) -> None:
    await cache.set("a", "v")
    await cache.hset("b", {"f": "v"})
    await cache.set("c", "v", ttl_ms=1)
    clock.advance_ms(1)
    assert await cache.delete("a", "b", "c", "missing") == 2
    assert len(cache) == 0


async def test_mget_returns_values_in_key_order(cache: MemoryCacheClient) -> None:
    await cache.set("a", "1")
    await cache.set("c", "3")
    assert await cache.mget(["a", "b", "c"]) == [b"1", None, b"3"]


# -- scan -------------------------------------------------------------------------------------------
async def test_scan_iter_matches_glob_case_sensitively(cache: MemoryCacheClient) -> None:
    for key in ("qts:v1:pos:A", "qts:v1:pos:B", "qts:v1:risk:account", "QTS:v1:pos:C", "pos:x"):
        await cache.set(key, "v")
    found = sorted([key async for key in cache.scan_iter("qts:v1:pos:*")])
    assert found == ["qts:v1:pos:A", "qts:v1:pos:B"]
    assert sorted([k async for k in cache.scan_iter("qts:v1:pos:[^A]")]) == ["qts:v1:pos:B"]
    assert len([k async for k in cache.scan_iter()]) == 5


async def test_scan_iter_skips_expired_keys(cache: MemoryCacheClient, clock: FakeClock) -> None:
    await cache.set("a", "v", ttl_ms=1)
    await cache.set("b", "v")
    clock.advance_ms(1)
    assert [key async for key in cache.scan_iter()] == ["b"]


async def test_scan_iter_survives_keys_changing_during_iteration(cache: MemoryCacheClient) -> None:
    for i in range(100):
        await cache.set(f"k{i:03}", "v")
    seen = []
    async for key in cache.scan_iter("k*", count=10):
        seen.append(key)
        if key == "k010":
            await cache.delete("k050")
            await cache.set("k999", "new")
            await cache.set("k000", "rewritten")  # moves in the LRU order
    assert "k050" not in seen
    assert len(seen) == len(set(seen)) == 99
    assert {f"k{i:03}" for i in range(100)} - {"k050"} <= set(seen)


async def test_scan_iter_yields_to_the_event_loop_every_count_keys(
    cache: MemoryCacheClient,
) -> None:
    for i in range(30):
        await cache.set(f"k{i}", "v")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    keys = [key async for key in cache.scan_iter(count=10)]
    during = ticks - before
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(keys) == 30
    assert during >= 2


# -- pipeline ---------------------------------------------------------------------------------------
async def test_pipeline_returns_results_in_order_and_clears_its_queue(
    cache: MemoryCacheClient,
) -> None:
    await cache.set("old", "v")
    pipe = cache.pipeline()
    assert pipe.set("a", "1").get("a").hset("h", {"f": "v"}).hgetall("h") is pipe
    pipe.zadd("z", {"m": 1}).zrem("z", "x").expire("a", 500).delete("old", "nothing").get("old")
    assert len(pipe) == 9
    assert await pipe.execute() == [None, b"1", 1, {"f": b"v"}, 1, 0, True, 1, None]
    assert len(pipe) == 0
    assert await pipe.execute() == []
    assert await cache.ttl_ms("a") == 500


async def test_pipeline_context_executes_on_exit_but_not_after_an_error(
    cache: MemoryCacheClient,
) -> None:
    async with cache.pipeline() as pipe:
        pipe.set("a", "1")
        pipe.set("b", "2")
        assert await cache.exists("a") is False  # queued, not applied
    assert await cache.mget(["a", "b"]) == [b"1", b"2"]

    async def fail_inside_pipeline() -> None:
        async with cache.pipeline(transaction=True) as pipe:
            pipe.set("c", "3")
            raise RuntimeError("abandoned")

    with pytest.raises(RuntimeError, match="abandoned"):
        await fail_inside_pipeline()
    assert await cache.exists("c") is False


async def test_pipeline_runs_every_command_and_raises_the_first_error(
    cache: MemoryCacheClient,
) -> None:
    await cache.set("s", "v")
    pipe = cache.pipeline(transaction=True)
    pipe.set("a", "1").hgetall("s").set("b", "2")
    with pytest.raises(CacheTypeError, match="'s' holds a string"):
        await pipe.execute()
    assert await cache.mget(["a", "b"]) == [b"1", b"2"]
    assert len(pipe) == 0


async def test_pipeline_rejects_bad_values_when_queued(cache: MemoryCacheClient) -> None:
    pipe = cache.pipeline()
    with pytest.raises(TypeError):
        pipe.set("a", 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ttl_ms"):
        pipe.set("a", "v", ttl_ms=0)
    assert len(pipe) == 0


@pytest.mark.parametrize("transaction", [False, True])
async def test_pipeline_is_atomic_for_other_coroutines(
    cache: MemoryCacheClient, transaction: bool
) -> None:
    """A reader running between the writer's steps never sees half a pipeline applied."""
    keys = [f"leg{i}" for i in range(20)]
    for key in keys:
        await cache.set(key, "0")
    torn: list[list[bytes | None]] = []
    done = asyncio.Event()

    async def reader() -> int:
        reads = 0
        while not done.is_set():
            values = await cache.mget(keys)
            if len(set(values)) != 1:
                torn.append(values)
            reads += 1
            await asyncio.sleep(0)
        return reads

    task = asyncio.create_task(reader())
    for generation in range(1, 200):
        async with cache.pipeline(transaction=transaction) as pipe:
            for key in keys:
                pipe.set(key, str(generation))
                pipe.get(key)
        await asyncio.sleep(0)
    done.set()
    reads = await task
    assert reads >= 150  # the reader really ran between the pipelines
    assert torn == []
    assert await cache.get("leg0") == b"199"
