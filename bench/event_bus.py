"""The event dispatcher: the producer's cost of a publish, and P0 delivery latency under a backlog.

    python bench/event_bus.py [--ops N] [--samples N]

1. ns per ``publish_nowait`` of a P3 event (the cost an event adds to a cache
   hit) beside a plain ``deque.append`` in the same run, with the ratio; also
   the P3 sampling path (queue above its high-water mark), a dispatcher without
   sinks, ``emit_nowait`` (which builds the Event) and building an Event alone.
2. P0 delivery latency (publish -> the sink's deliver() called with it), p50,
   p99 and max, for a slow sink: with no backlog, with 50,000 P3 events queued
   (kept topped up) to a sink that is slow by waiting (20 µs of I/O per event),
   and to a sink that is slow by computing (5 µs of CPU per event, e.g. JSON
   logging), which holds the event loop for a whole P3 batch.

Absolute numbers are noisy on a shared machine: read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
from collections import deque
from collections.abc import Callable, Sequence

from qts_data.contracts import Event, Priority
from qts_data.events import EventDispatcher, EventSettings
from qts_data.interfaces import EventSink
from qts_data_memory.sink import MemoryEventSink


def best_ns(runs: int, ops: int, fn: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best / ops * 1e9


def hit_event(n: int) -> Event:
    return Event(Priority.P3, "cache.hit", "cache", {"kind": "price", "n": n})


def bench_publish(ops: int) -> list[tuple[str, float]]:
    events = [hit_event(n) for n in range(ops)]
    settings = EventSettings(p3_capacity=max(50_000, ops + 1), p3_sample_from=1.0)

    def plain_deque() -> None:
        items: deque[Event] = deque()
        append = items.append
        for event in events:
            append(event)

    def publish_nowait() -> None:
        dispatcher = EventDispatcher([MemoryEventSink()], settings)
        publish = dispatcher.publish_nowait
        for event in events:
            publish(event)

    sampling = EventDispatcher([MemoryEventSink()], EventSettings(p3_capacity=1_000))
    for event in events[:1_000]:
        sampling.publish_nowait(event)

    def publish_sampled() -> None:
        publish = sampling.publish_nowait
        for event in events:
            publish(event)

    def publish_no_sinks() -> None:
        publish = EventDispatcher().publish_nowait
        for event in events:
            publish(event)

    def emit_nowait() -> None:
        emit = EventDispatcher([MemoryEventSink()], settings).emit_nowait
        for n in range(ops):
            emit(Priority.P3, "cache.hit", "cache", kind="price", n=n)

    def build_event() -> None:
        for n in range(ops):
            Event(Priority.P3, "cache.hit", "cache", {"kind": "price", "n": n})

    rows = [
        ("deque.append", best_ns(5, ops, plain_deque)),
        ("publish_nowait P3", best_ns(5, ops, publish_nowait)),
        ("publish_nowait P3, sampling", best_ns(5, ops, publish_sampled)),
        ("publish_nowait P3, no sinks", best_ns(5, ops, publish_no_sinks)),
        ("Event(...) alone", best_ns(5, ops, build_event)),
        ("emit_nowait P3 (builds the Event)", best_ns(5, ops, emit_nowait)),
    ]
    return rows


class SlowSink(EventSink):
    """Records when deliver() is called with each P0 event; slow by waiting or by computing."""

    def __init__(self, io_per_event_s: float = 0.0, cpu_per_event_s: float = 0.0) -> None:
        self.io_per_event_s = io_per_event_s
        self.cpu_per_event_s = cpu_per_event_s
        self.p0_arrivals: dict[int, float] = {}
        self.delivered = 0

    async def deliver(self, events: Sequence[Event]) -> None:
        now = time.perf_counter()
        for event in events:
            if event.priority is Priority.P0:
                self.p0_arrivals[event.payload["n"]] = now
        self.delivered += len(events)
        if self.cpu_per_event_s:
            until = time.perf_counter() + self.cpu_per_event_s * len(events)
            while time.perf_counter() < until:
                pass
        if self.io_per_event_s:
            await asyncio.sleep(self.io_per_event_s * len(events))


async def p0_latency(
    samples: int, backlog: int, io_per_event_s: float, cpu_per_event_s: float
) -> tuple[list[float], int, int]:
    sink = SlowSink(io_per_event_s, cpu_per_event_s)
    dispatcher = EventDispatcher([sink], EventSettings(p3_sample_from=1.0))
    for n in range(backlog):
        dispatcher.publish_nowait(hit_event(n))
    await dispatcher.start()
    await asyncio.sleep(0.01)
    sent: dict[int, float] = {}
    p3 = dispatcher.queue(0, Priority.P3)
    least_depth = p3.depth
    for n in range(samples):
        if backlog:
            for m in range(backlog - p3.depth):  # keep the backlog topped up
                dispatcher.publish_nowait(hit_event(m))
            least_depth = min(least_depth, p3.depth)
        sent[n] = time.perf_counter()
        await dispatcher.publish(Event(Priority.P0, "kill", "bench", {"n": n}))
        await asyncio.sleep(0.002)
    await asyncio.sleep(0.02)
    await dispatcher.stop(drain_timeout=0)
    latencies = [(sink.p0_arrivals[n] - t) * 1000 for n, t in sent.items()]
    return latencies, least_depth, sink.delivered


def describe(latencies: list[float]) -> str:
    q = statistics.quantiles(latencies, n=100)
    return f"{q[49]:>8.3f}{q[98]:>8.3f}{max(latencies):>8.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=200_000)
    parser.add_argument("--samples", type=int, default=500)
    args = parser.parse_args()
    logging.getLogger("qts_data.events").setLevel(logging.ERROR)  # "stopped with N abandoned"

    rows = bench_publish(args.ops)
    floor = rows[0][1]
    print(f"{'producer side':<38}{'ns/op':>10}{'vs deque':>10}")
    for name, ns in rows:
        print(f"{name:<38}{ns:>10.0f}{ns / floor:>10.2f}")

    print()
    print(f"{'P0 latency (ms), slow sink':<48}{'p50':>8}{'p99':>8}{'max':>8}  P3 backlog")
    cases = [
        ("no backlog, 20 µs I/O an event", 0, 20e-6, 0.0),
        ("50,000 P3 queued, 20 µs I/O an event", 50_000, 20e-6, 0.0),
        ("no backlog, 5 µs CPU an event", 0, 0.0, 5e-6),
        ("50,000 P3 queued, 5 µs CPU an event", 50_000, 0.0, 5e-6),
    ]
    for name, backlog, io_s, cpu_s in cases:
        latencies, least, delivered = asyncio.run(p0_latency(args.samples, backlog, io_s, cpu_s))
        print(f"{name:<48}{describe(latencies)}  >= {least:,} ({delivered:,} delivered)")


if __name__ == "__main__":
    main()
