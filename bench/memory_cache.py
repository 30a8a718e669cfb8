"""Memory cache client against a plain dict, and the cost of starting a memory stack.

    python bench/memory_cache.py [--ops N]

Prints ns per operation for dict get/set, an empty awaited coroutine (the floor
of any async API), and MemoryCacheClient get/set of a live key; then the time
from interpreter start to an open memory stack beside `python -c pass`.
Absolute numbers are noisy on a shared machine: read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

from qts_data_memory.cache import MemoryCacheClient


def per_op_ns(total_s: float, ops: int) -> float:
    return total_s / ops * 1e9


def best_of(runs: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(runs))


def bench_dict(ops: int) -> tuple[float, float]:
    store: dict[str, bytes] = {}
    keys = [f"price:{i % 1000}" for i in range(ops)]
    value = b'{"price":"71000"}'

    def run_set() -> float:
        t = time.perf_counter()
        for k in keys:
            store[k] = value
        return per_op_ns(time.perf_counter() - t, ops)

    def run_get() -> float:
        get = store.get
        t = time.perf_counter()
        for k in keys:
            get(k)
        return per_op_ns(time.perf_counter() - t, ops)

    return best_of(5, run_get), best_of(5, run_set)


async def bench_async(ops: int) -> tuple[float, float, float]:
    client = MemoryCacheClient(max_entries=100_000)
    await client.open()
    keys = [f"price:{i % 1000}" for i in range(ops)]
    value = b'{"price":"71000"}'

    async def noop(key: str) -> None:
        return None

    async def timed(fn: Callable[[str], Awaitable[object]]) -> float:
        t = time.perf_counter()
        for k in keys:
            await fn(k)
        return per_op_ns(time.perf_counter() - t, ops)

    async def set_(k: str) -> None:
        await client.set(k, value, 60_000)

    floor = min([await timed(noop) for _ in range(5)])
    set_ns = min([await timed(set_) for _ in range(5)])
    get_ns = min([await timed(client.get) for _ in range(5)])
    await client.close()
    return floor, get_ns, set_ns


STARTUP = (
    "import asyncio, qts_data\n"
    "async def main():\n"
    "    async with qts_data.open_stack() as stack:\n"
    "        await stack.adapter.fetch_positions()\n"
    "asyncio.run(main())\n"
)


def startup_ms(code: str, runs: int = 7) -> float:
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=200_000)
    args = parser.parse_args()
    dict_get, dict_set = bench_dict(args.ops)
    floor, get_ns, set_ns = asyncio.run(bench_async(args.ops))
    print(f"{'operation':<34}{'ns/op':>10}{'vs dict':>10}")
    print(f"{'dict get':<34}{dict_get:>10.0f}{1:>10.2f}")
    print(f"{'dict set':<34}{dict_set:>10.0f}{1:>10.2f}")
    print(f"{'await empty coroutine':<34}{floor:>10.0f}{floor / dict_get:>10.2f}")
    print(f"{'MemoryCacheClient.get (hit)':<34}{get_ns:>10.0f}{get_ns / dict_get:>10.2f}")
    print(f"{'MemoryCacheClient.set (ttl 60 s)':<34}{set_ns:>10.0f}{set_ns / dict_set:>10.2f}")
    print(
        f"get over the async floor: {get_ns - floor:.0f} ns; set over it: {set_ns - floor:.0f} ns"
    )
    bare = startup_ms("pass")
    stack = startup_ms(STARTUP)
    print(
        f"interpreter start: {bare:.0f} ms; to an open memory stack and a read: {stack:.0f} ms "
        f"({stack / bare:.1f}x, +{stack - bare:.0f} ms)"
    )


if __name__ == "__main__":
    main()
