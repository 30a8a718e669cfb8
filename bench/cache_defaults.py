"""The cache's default settings on a loaded host: what Redis takes, what callers wait,
what the breaker sees, and how fast it reacts to a dead or frozen server.

    python bench/cache_defaults.py [--readers 100] [--seconds 5] [--spinners 2]

Needs qts-data, qts-data-memory, qts-data-redis-cache, and `redis-server` on PATH
(throwaway servers on free loopback ports; the machine's Redis is not touched).
``--spinners`` processes spin on the CPU for the whole run (the default: one per
core), so the numbers are those of a busy host. Prints, in one run:

1. raw redis-py: ``--readers`` tasks doing HGETALL on one connection pool — the
   latency of a healthy Redis as this loaded event loop sees it (p50 … max);
2. the same readers through ``cached`` (memory store, ``redis_cache`` cache, all
   defaults) with a writer every 50 ms: caller latency, how many calls missed the
   5 ms budget (served by the source), calls the breaker counted slow, loop
   stalls excused, breaker transitions, hit rate;
3. SIGKILL, then restart; SIGSTOP, then SIGCONT, under 20 readers: how long until
   the breaker opens, and recloses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

import redis.asyncio as aioredis

from qts_data import open_stack
from qts_data.cache import BreakerState
from qts_data.stack import Stack
from qts_data.testing import RedisProcess


def percentiles(samples_s: list[float]) -> str:
    ordered = sorted(samples_s)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return (
        f"p50 {at(0.5):6.2f}  p99 {at(0.99):6.2f}  p99.9 {at(0.999):6.2f}  "
        f"max {ordered[-1] * 1000:6.2f} ms  ({len(ordered)} calls)"
    )


#: ``--set caches.redis.socket_timeout_ms=1000``-style overrides, to compare settings.
OVERRIDES: dict[str, Any] = {}


def stack_over(url: str) -> Stack:
    config: dict[str, Any] = {
        "stack": {"adapter": "main", "cache": "redis"},
        "adapters": {
            "db": {"type": "memory"},
            "main": {"type": "cached", "adapter": "db", "cache": "redis"},
        },
        "caches": {"redis": {"type": "redis_cache", "url": url}},
    }
    for path, value in OVERRIDES.items():
        *parents, leaf = path.split(".")
        table = config
        for part in parents:
            table = table.setdefault(part, {})
        table[leaf] = value
    return open_stack(config)


async def raw(url: str, readers: int, seconds: float) -> list[float]:
    client = aioredis.Redis.from_url(url)
    await client.hset("bench:pos", mapping={"v": "x" * 120, "t": "1", "n": "1"})
    samples: list[float] = []
    stop = time.monotonic() + seconds

    async def reader() -> None:
        while time.monotonic() < stop:
            began = time.perf_counter()
            await client.hgetall("bench:pos")
            samples.append(time.perf_counter() - began)
            await asyncio.sleep(0.001)

    await asyncio.gather(*(reader() for _ in range(readers)))
    await client.aclose()
    return samples


async def workload(
    stack: Stack, readers: int, seconds: float, during: Any = None
) -> tuple[list[float], int]:
    adapter = stack.adapter
    symbols = [f"S{n}" for n in range(10)]
    for symbol in symbols:
        await adapter.update_position(symbol, "1", "100")
    samples: list[float] = []
    errors = 0
    stop = asyncio.Event()

    async def writer() -> None:
        qty = 1
        while not stop.is_set():
            qty += 1
            for symbol in symbols:
                await adapter.update_position(symbol, str(qty), "100")
            await asyncio.sleep(0.05)

    async def reader(n: int) -> None:
        nonlocal errors
        while not stop.is_set():
            began = time.perf_counter()
            try:
                await adapter.fetch_position(symbols[n % len(symbols)])
            except Exception:
                errors += 1
            samples.append(time.perf_counter() - began)
            await asyncio.sleep(0.001)

    tasks = [asyncio.create_task(writer())] + [
        asyncio.create_task(reader(n)) for n in range(readers)
    ]
    if during is not None:
        await during()
    else:
        await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks)
    return samples, errors


async def until(stack: Stack, state: BreakerState, timeout: float) -> float:
    began = time.monotonic()
    while stack.cache.breaker.state is not state:
        if time.monotonic() - began > timeout:
            return float("nan")
        await asyncio.sleep(0.002)
    return time.monotonic() - began


async def main(readers: int, seconds: float) -> None:
    redis = RedisProcess.launch()
    try:
        samples = await raw(redis.url, readers, seconds)
        print(f"1. raw redis-py HGETALL, {readers} tasks: {percentiles(samples)}")

        async with stack_over(redis.url) as stack:
            samples, errors = await workload(stack, readers, seconds)
            cache = stack.cache
            stats = cache.stats()["position"]
            probe = cache._probe
            print(f"2. through the cache, defaults, {readers} readers: {percentiles(samples)}")
            print(
                f"   over the 5 ms budget (served by the source): {stats.timeouts}; errors "
                f"{stats.errors}; caller errors {errors}; loop stalls excused "
                f"{probe.stalls if probe else 0}; breaker transitions "
                f"{[t.current.value + ' (' + t.reason + ')' for t in cache.transitions]}; slow-call rate "
                f"{cache.breaker.slow_call_rate}; position hit rate {stats.hit_rate:.1%}"
            )

        async with stack_over(redis.url) as stack:
            timings: dict[str, float] = {}

            async def faults() -> None:
                await asyncio.sleep(0.5)
                await asyncio.to_thread(redis.kill)
                timings["open after SIGKILL"] = await until(stack, BreakerState.OPEN, 2)
                await asyncio.to_thread(redis.start)
                timings["closed after restart"] = await until(stack, BreakerState.CLOSED, 20)
                await asyncio.sleep(0.5)
                await asyncio.to_thread(redis.freeze)
                timings["open after SIGSTOP"] = await until(stack, BreakerState.OPEN, 2)
                await asyncio.sleep(1)
                await asyncio.to_thread(redis.thaw)
                timings["closed after SIGCONT"] = await until(stack, BreakerState.CLOSED, 20)
                await asyncio.sleep(0.5)

            samples, errors = await workload(stack, 20, 0, faults)
            stats = stack.cache.stats()["position"]
            print(
                "3. faults, 20 readers: "
                + "; ".join(f"{name} {value * 1000:.0f} ms" for name, value in timings.items())
            )
            print(
                f"   callers: {percentiles(samples)}; caller errors {errors}; "
                f"late writes {stats.late_writes}"
            )
    finally:
        redis.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readers", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--spinners", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--set", action="append", default=[], metavar="PATH=VALUE", help="a setting to override"
    )
    args = parser.parse_args()
    for item in args.set:
        path, _, value = item.partition("=")
        OVERRIDES[path] = json.loads(value)
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.spinners)
    ]
    try:
        asyncio.run(main(args.readers, args.seconds))
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
