"""The cache manager over Redis against raw redis-py, in the same run.

    python bench/cache_redis.py [--reads 20000]

Needs qts-data, qts-data-memory, qts-data-redis-cache, and `redis-server` on PATH
(a throwaway server is started on a free loopback port and killed at the end;
the machine's shared Redis is not touched). Prints:

1. a price read through the cache manager (``get_price``) against a raw
   redis-py ``HGETALL`` of the same key: µs per read and the ratio;
2. a near-cache hit: ns per read, against the raw read;
3. while Redis is dead: the 99th percentile of a read through the manager
   (which falls back to the adapter) against redis-py with default settings;
4. 1,000 concurrent misses of one key: how many loads ran.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from typing import Any

import redis.asyncio as aioredis

from qts_data import open_stack
from qts_data.cache import CacheKind, codec_for
from qts_data.contracts import Position, TickData


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(port: int, folder: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            folder,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), 0.1):
                return proc
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def config(port: int, near: bool) -> dict[str, Any]:
    return {
        "stack": {"adapter": "main", "cache": "redis"},
        "adapters": {
            "db": {"type": "memory"},
            "main": {"type": "cached", "adapter": "db", "cache": "redis"},
        },
        "caches": {"redis": {"type": "redis_cache", "url": f"redis://127.0.0.1:{port}/0"}},
        "cache": {"ttl_ms": {"price": 600_000}, "near_cache": ["price"] if near else []},
    }


async def timed(n: int, fn: Any) -> float:
    started = time.perf_counter()
    for _ in range(n):
        await fn()
    return (time.perf_counter() - started) / n


async def bench(port: int, reads: int, proc_holder: dict[str, Any], folder: str) -> None:
    tick = TickData(
        time=datetime.now(timezone.utc),
        symbol="005930",
        price="71000.5",
        volume=10,
        bid="71000",
        ask="71001",
    )
    raw = aioredis.Redis(host="127.0.0.1", port=port)
    async with (
        open_stack(config(port, near=False)) as stack,
        open_stack(config(port, near=True)) as near_stack,
    ):
        manager = stack.cache
        await manager.push_price(tick)
        key = manager.key(CacheKind.PRICE, {"symbol": "005930"})

        async def via_manager() -> Any:
            return await manager.get_price("005930")

        async def via_raw() -> Any:
            return await raw.hgetall(key)

        for _ in range(2):  # warm-up
            await timed(1000, via_manager)
            await timed(1000, via_raw)
        ours, theirs = [], []
        for _ in range(5):  # interleaved rounds, best of each
            ours.append(await timed(reads // 5, via_manager))
            theirs.append(await timed(reads // 5, via_raw))
        print(
            f"1. price read through the cache manager: {min(ours) * 1e6:.1f} µs; raw redis-py HGETALL: "
            f"{min(theirs) * 1e6:.1f} µs; ratio {min(ours) / min(theirs):.3f}x"
        )

        near = near_stack.cache
        await near.get_price("005930")  # fills the near cache

        async def near_hit() -> Any:
            return await near.get_price("005930")

        near_ns = min([await timed(reads, near_hit) for _ in range(5)]) * 1e9
        assert (await near.get_price("005930")).origin == "near"  # type: ignore[union-attr]
        print(
            f"2. near-cache hit: {near_ns:.0f} ns per read; {min(theirs) * 1e9 / near_ns:.0f}x faster than the raw read"
        )

        await stack.adapter.update_position("005930", "10", "71000")
        proc_holder["proc"].kill()
        proc_holder["proc"].wait()
        samples = []
        for _ in range(500):
            started = time.perf_counter()
            await stack.adapter.fetch_position("005930")
            samples.append(time.perf_counter() - started)
        ours_p99 = statistics.quantiles(samples, n=100)[98]
        default = aioredis.Redis(host="127.0.0.1", port=port)  # redis-py's defaults
        raw_samples = []
        for _ in range(3):
            started = time.perf_counter()
            try:
                await asyncio.wait_for(default.hgetall(key), 30)
            except Exception:
                pass
            raw_samples.append(time.perf_counter() - started)
        await default.aclose()
        print(
            f"3. while Redis is dead: p99 of a read through the manager {ours_p99 * 1e3:.2f} ms "
            f"(breaker {manager.breaker.state.value}); redis-py with default settings: "
            f"{statistics.median(raw_samples) * 1e3:.0f} ms per read (median of 3)"
        )

        proc_holder["proc"] = start_redis(port, folder)
        await asyncio.sleep(0)
    await raw.aclose()

    async with open_stack(config(port, near=False)) as stack:
        loads = 0

        async def loader() -> Position:
            nonlocal loads
            loads += 1
            await asyncio.sleep(0.01)
            return Position(symbol="X", qty="1", avg_price="1")

        codec = codec_for(Position)
        await asyncio.gather(
            *(
                stack.cache.get_or_load(CacheKind.POSITION, codec, loader, symbol="X")
                for _ in range(1000)
            )
        )
        print(f"4. 1,000 concurrent misses of one key: {loads} load(s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reads", type=int, default=20_000)
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not on PATH")
    folder = tempfile.mkdtemp(prefix="qts-bench-redis-")
    port = free_port()
    holder = {"proc": start_redis(port, folder)}
    try:
        asyncio.run(bench(port, args.reads, holder, folder))
    finally:
        holder["proc"].kill()
        holder["proc"].wait()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
