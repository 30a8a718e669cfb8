"""The cache layer with its default settings, over throwaway Redis servers on a loaded host.

Every test here runs with the defaults (no budget, breaker or timeout overrides):
they are what users get. A memory store behind the ``cached`` composition with a
``redis_cache`` cache; readers compare what they get with what the store held
before their read began.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import position_workload
import pytest

from qts_data import open_stack
from qts_data.cache import BreakerState, CacheKind
from qts_data.stack import Stack
from qts_data.testing import RedisProcess

pytestmark = pytest.mark.slow


def stack_over(redis: RedisProcess, **cache: Any) -> Stack:
    return open_stack(
        {
            "stack": {"adapter": "main", "cache": "redis"},
            "adapters": {
                "db": {"type": "memory"},
                "main": {"type": "cached", "adapter": "db", "cache": "redis"},
            },
            "caches": {"redis": {"type": "redis_cache", "url": redis.url}},
            "cache": cache,
        }
    )


@pytest.fixture
def busy_host() -> Iterator[None]:
    """Two processes spinning on the CPU for the length of the test (the host has two cores)."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 2)
    ]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


class Workload(position_workload.Workload):
    def __init__(self, stack: Stack, symbols: int = 10) -> None:
        super().__init__(stack, [f"S{n}" for n in range(symbols)])


async def wait_for_state(stack: Stack, state: BreakerState, timeout: float) -> float:
    started = time.monotonic()
    while stack.cache.breaker.state is not state:
        if time.monotonic() - started > timeout:
            raise AssertionError(f"breaker still {stack.cache.breaker.state} after {timeout} s")
        await asyncio.sleep(0.005)
    return time.monotonic() - started


async def test_a_healthy_redis_under_100_readers_on_a_busy_host_keeps_the_breaker_closed(
    throwaway_redis: RedisProcess, busy_host: None
) -> None:
    async with stack_over(throwaway_redis) as stack:
        work = Workload(stack)
        await work.prime()
        tasks = work.start(readers=100)
        await asyncio.sleep(5)
        await work.finish(tasks)
        assert work.errors == []
        assert work.stale == []
        assert [t.current for t in stack.cache.transitions] == []
        stats = stack.cache.stats()["position"]
        assert stats.hit_rate is not None and stats.hit_rate >= 0.9, stack.cache.summary()


async def test_a_killed_redis_opens_the_breaker_and_it_recloses_after_the_restart(
    throwaway_redis: RedisProcess,
) -> None:
    async with stack_over(throwaway_redis) as stack:
        work = Workload(stack)
        await work.prime()
        tasks = work.start(readers=20)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(throwaway_redis.kill)
        opened_after = await wait_for_state(stack, BreakerState.OPEN, timeout=1)
        await asyncio.to_thread(throwaway_redis.start)
        await wait_for_state(stack, BreakerState.CLOSED, timeout=15)  # wait_s is 5 s
        await asyncio.sleep(0.5)
        await work.finish(tasks)
        assert opened_after < 0.1
        assert work.errors == []
        assert work.stale == []
        stats = stack.cache.stats()["position"]
        hits = stats.hits
        await stack.adapter.fetch_position("S1")
        await stack.adapter.fetch_position("S1")
        assert stack.cache.stats()["position"].hits > hits  # refilled without a restart


async def test_writes_in_flight_through_a_freeze_never_serve_an_older_value(
    throwaway_redis: RedisProcess,
) -> None:
    """SIGSTOP with writes going on: they miss their budget and Redis executes them after
    SIGCONT. With a TTL long enough that nothing expires during the test, any read older
    than the store would be seen."""
    async with stack_over(throwaway_redis, ttl_ms={"position": 60_000}) as stack:
        work = Workload(stack)
        await work.prime()
        tasks = work.start(readers=20)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(throwaway_redis.freeze)
        opened_after = await wait_for_state(stack, BreakerState.OPEN, timeout=1)
        await asyncio.sleep(2)
        await asyncio.to_thread(throwaway_redis.thaw)
        await wait_for_state(stack, BreakerState.CLOSED, timeout=15)
        await asyncio.sleep(3)  # reads from the thawed cache, late writes included
        await work.finish(tasks)
        assert opened_after < 0.15
        assert work.errors == []
        assert work.stale == [], (
            f"{len(work.stale)} of {sum(work.reads.values())} reads were older than the store"
        )
        stats = stack.cache.stats()["position"]
        assert stats.late_writes > 0  # the freeze did leave writes to be executed late
        assert stats.hits > 0


async def test_prices_pushed_through_a_freeze_are_never_served_after_a_newer_one_was_due(
    throwaway_redis: RedisProcess,
) -> None:
    """A feed pushes prices (and heartbeats) through a SIGSTOP; pushes given up on are
    executed after SIGCONT. A reader in another stack (another process, as far as the cache
    knows) must never get a price when a newer one was issued a full price TTL (100 ms)
    before its read began."""
    from datetime import datetime, timezone

    from qts_data.contracts import TickData

    busy = [f"P{n}" for n in range(10)]  # traded all the time
    quiet = [f"Q{n}" for n in range(5)]  # traded at the start and once during the freeze
    symbols = busy + quiet
    issued: dict[str, list[tuple[float, datetime]]] = {s: [] for s in symbols}
    trade_quiet = asyncio.Event()
    stale: list[tuple[str, datetime, datetime]] = []
    hits = 0
    stop = asyncio.Event()

    async with stack_over(throwaway_redis) as feed, stack_over(throwaway_redis) as other:

        async def push(symbol: str) -> None:
            now = datetime.now(timezone.utc)
            issued[symbol].append((time.monotonic(), now))
            tick = TickData(time=now, symbol=symbol, price="100", volume=1)
            await feed.cache.push_price(tick, feed="test")

        async def pusher() -> None:
            for symbol in quiet:
                await push(symbol)
            while not stop.is_set():
                for symbol in busy:
                    await push(symbol)
                if trade_quiet.is_set():
                    trade_quiet.clear()
                    for symbol in quiet:
                        await push(symbol)
                await asyncio.sleep(0.01)

        async def reader(n: int) -> None:
            nonlocal hits
            ttl = other.cache.ttl_ms(CacheKind.PRICE) / 1000
            while not stop.is_set():
                symbol = symbols[n % len(symbols)]
                began = time.monotonic()
                due = [when for at, when in issued[symbol] if at <= began - ttl]
                found = await other.cache.get_price(symbol)
                if found is not None:
                    hits += 1
                    if due and max(due) > found.value.time:
                        stale.append((symbol, found.value.time, max(due)))
                await asyncio.sleep(0.002)

        tasks = [asyncio.create_task(pusher())] + [
            asyncio.create_task(reader(n)) for n in range(20)
        ]
        await asyncio.sleep(0.5)
        await asyncio.to_thread(throwaway_redis.freeze)
        await wait_for_state(feed, BreakerState.OPEN, timeout=1)
        trade_quiet.set()  # pushes the open breaker skips: the cache keeps the older prices
        await asyncio.sleep(2)
        await asyncio.to_thread(throwaway_redis.thaw)
        await wait_for_state(feed, BreakerState.CLOSED, timeout=15)
        hits_before = hits
        await asyncio.sleep(2)
        stop.set()
        await asyncio.gather(*tasks)
        assert stale == [], f"{len(stale)} stale of {hits} hits, first {stale[:3]}"
        assert feed.cache.stats()["price"].late_writes > 0
        assert feed.cache.stats()["price"].skipped_writes >= len(quiet)
        assert hits > hits_before  # the cache serves prices again after the thaw
