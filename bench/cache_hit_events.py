"""What events add to a cache hit: the same hit with the stack's event dispatcher on and off.

    python bench/cache_hit_events.py [--reads 200000]

A hit publishes nothing (hit and miss counts go out as one P3 event per second),
so the two should cost the same; this measures it, interleaved, best of rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from qts_data.cache import CacheKind, CacheManager, codec_for
from qts_data.contracts import Position
from qts_data.events import EventDispatcher
from qts_data_memory.cache import MemoryCacheClient
from qts_data_memory.sink import MemoryEventSink

POSITION = codec_for(Position)


async def hits(manager: CacheManager, n: int) -> float:
    async def load() -> Position:
        return Position(symbol="A", qty="1", avg_price="1")

    started = time.perf_counter()
    for _ in range(n):
        await manager.get_or_load(CacheKind.POSITION, POSITION, load, symbol="A")
    return (time.perf_counter() - started) / n


async def main(reads: int) -> None:
    sink = MemoryEventSink()
    sink.name = "memory"
    dispatcher = EventDispatcher([sink])
    await dispatcher.start()
    off = CacheManager(MemoryCacheClient())
    on = CacheManager(MemoryCacheClient(), events=dispatcher.publish_nowait)
    await on.start()
    await hits(off, 1000)
    await hits(on, 1000)
    without, with_events = [], []
    for _ in range(7):
        without.append(await hits(off, reads // 7))
        with_events.append(await hits(on, reads // 7))
    await on.stop()
    await dispatcher.stop()
    a, b = min(without), min(with_events)
    print(
        f"cache hit, events off: {a * 1e9:.0f} ns; events on: {b * 1e9:.0f} ns; ratio {b / a:.3f}x"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reads", type=int, default=200_000)
    asyncio.run(main(parser.parse_args().reads))
