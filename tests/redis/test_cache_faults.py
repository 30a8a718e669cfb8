"""The cache layer over a real Redis that dies, freezes and comes back (throwaway servers only)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from qts_data import open_stack
from qts_data.cache import BreakerState, CacheKind, codec_for
from qts_data.contracts import Position
from qts_data.stack import Stack
from qts_data.testing import RedisProcess

POSITION = codec_for(Position)


def stack_over(redis: RedisProcess, **cache: Any) -> Stack:
    return open_stack(
        {
            "stack": {"adapter": "main", "cache": "redis"},
            "adapters": {
                "db": {"type": "memory"},
                "main": {"type": "cached", "adapter": "db", "cache": "redis"},
            },
            "caches": {
                "redis": {
                    "type": "redis_cache",
                    "url": redis.url,
                    "socket_timeout_ms": 100,
                    "connect_timeout_ms": 100,
                }
            },
            "cache": {
                "default_budget_ms": 20,
                "breaker": {"wait_s": 0.3, "max_wait_s": 0.6, "half_open_calls": 2},
                **cache,
            },
        }
    )


async def test_kill_and_restart_under_concurrent_reads_no_error_no_stale_value(
    throwaway_redis: RedisProcess,
) -> None:
    async with stack_over(throwaway_redis) as stack:
        adapter = stack.adapter
        symbols = [f"S{n}" for n in range(10)]
        for symbol in symbols:
            await adapter.update_position(symbol, "1", "100")
        errors: list[BaseException] = []
        too_old: list[float] = []
        reads = 0
        stop = asyncio.Event()
        ttl = timedelta(milliseconds=stack.cache.ttl_ms(CacheKind.POSITION))

        async def writer() -> None:
            qty = 1
            while not stop.is_set():
                qty += 1
                for symbol in symbols:
                    await adapter.update_position(symbol, str(qty), "100")
                await asyncio.sleep(0.05)

        async def reader(n: int) -> None:
            nonlocal reads
            while not stop.is_set():
                symbol = symbols[n % len(symbols)]
                try:
                    position = await adapter.fetch_position(symbol)
                except BaseException as exc:  # no caller may see an error
                    errors.append(exc)
                    return
                assert position is not None
                age = datetime.now(timezone.utc) - position.updated_at
                if age > ttl + timedelta(milliseconds=300):
                    too_old.append(age.total_seconds())
                reads += 1
                await asyncio.sleep(0.002)

        tasks = [asyncio.create_task(writer())] + [
            asyncio.create_task(reader(n)) for n in range(20)
        ]
        await asyncio.sleep(0.5)
        await asyncio.to_thread(throwaway_redis.kill)
        await asyncio.sleep(1.0)
        assert stack.cache.breaker.state is BreakerState.OPEN
        await asyncio.to_thread(throwaway_redis.start)
        deadline = time.monotonic() + 5
        while stack.cache.breaker.state is not BreakerState.CLOSED and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.gather(*tasks)
        assert errors == []
        assert too_old == []
        assert reads > 1000
        # Calls right after the restart may be slow enough (new connections on a loaded
        # machine) to open the breaker once more; it closes again on its own probes.
        deadline = time.monotonic() + 5
        while stack.cache.breaker.state is not BreakerState.CLOSED and time.monotonic() < deadline:
            await adapter.fetch_position("S0")
            await asyncio.sleep(0.05)
        assert stack.cache.breaker.state is BreakerState.CLOSED
        stats = stack.cache.stats()["position"]
        assert stats.fallbacks > 0 and stats.hits > 0
        transitions = [t.current for t in stack.cache.transitions]
        assert BreakerState.OPEN in transitions and transitions[-1] is BreakerState.CLOSED
        # the cache refilled itself after the restart, without a restart of the stack
        hits_before = stats.hits
        await adapter.fetch_position("S1")
        await adapter.fetch_position("S1")
        assert stack.cache.stats()["position"].hits > hits_before


async def test_a_frozen_redis_never_holds_a_caller_beyond_its_budget(
    throwaway_redis: RedisProcess,
) -> None:
    async with stack_over(throwaway_redis) as stack:
        await stack.adapter.update_position("A", "1", "100")
        await asyncio.to_thread(throwaway_redis.freeze)
        try:
            worst = 0.0
            for _ in range(30):
                started = time.perf_counter()
                position = await stack.adapter.fetch_position("A")
                worst = max(worst, time.perf_counter() - started)
                assert position is not None
            # budget 20 ms; generous margin for a loaded CI machine, far below redis-py's 15 s
            assert worst < 0.25, f"slowest read took {worst * 1000:.0f} ms"
        finally:
            await asyncio.to_thread(throwaway_redis.thaw)


async def test_write_through_with_a_failing_database_write_leaves_no_newer_value(
    throwaway_redis: RedisProcess,
) -> None:
    async with stack_over(throwaway_redis) as stack:
        cache = stack.cache
        old = Position(symbol="A", qty="1", avg_price="100")
        await cache.put(CacheKind.POSITION, old, POSITION, symbol="A")

        async def failing_write() -> None:
            raise RuntimeError("database write failed")

        new = Position(symbol="A", qty="2", avg_price="100")
        try:
            await cache.write_through(CacheKind.POSITION, new, POSITION, failing_write, symbol="A")
        except RuntimeError:
            pass
        cached = await cache.get(CacheKind.POSITION, POSITION, symbol="A")
        assert cached is None or cached.value.qty == 1
