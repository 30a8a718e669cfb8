"""The event dispatcher with real asyncio: P0 is never dropped, slow and failing sinks are isolated."""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest
from event_helpers import RecordingSink, assert_accounted, ev, fast_settings

from qts_data.contracts import Event, Priority
from qts_data.events import EventBusClosed, EventDispatcher, EventQueueFull
from qts_data_memory.sink import MemoryEventSink


async def test_no_p0_event_is_dropped_under_a_flood_with_a_slow_sink() -> None:
    sink = RecordingSink(delay_s=0.001)
    dispatcher = EventDispatcher([sink], fast_settings())
    await dispatcher.start()
    p0_sent = []
    for n in range(100_000):
        if n % 50 == 0:
            event = ev(Priority.P0, n)
            p0_sent.append(n)
            await dispatcher.publish(event)  # waits for room when the P0 queue is full
        else:
            dispatcher.publish_nowait(ev(Priority(1 + n % 3), n, key=f"k{n % 700}"))
    assert dispatcher.p0_waits > 0, "the flood never filled the P0 queue: the test proves nothing"
    await dispatcher.stop(drain_timeout=30)
    p0_received = [e.payload["n"] for e in sink.of(Priority.P0)]
    assert p0_received == p0_sent  # every P0 exactly once, in order
    summary = dispatcher.summary()["queues"]
    assert summary["P0"]["published"] == 2_000
    assert summary["P0"]["dropped"] == summary["P0"]["abandoned"] == 0
    assert summary["P1"]["dropped"] > 0 or summary["P2"]["collapsed"] > 0  # the flood overflowed
    assert_accounted(dispatcher)


async def test_p0_waits_for_room_in_every_sink_and_keeps_order() -> None:
    stuck, fast = RecordingSink("stuck"), RecordingSink("fast")
    stuck.gate(Priority.P0)
    dispatcher = EventDispatcher([stuck, fast], fast_settings(p0_capacity=10))
    await dispatcher.start()
    await dispatcher.publish(ev(Priority.P0, 0))
    await asyncio.sleep(0.01)  # the stuck sink's P0 lane holds event 0
    for n in range(1, 11):
        dispatcher.publish_nowait(ev(Priority.P0, n))
    with pytest.raises(EventQueueFull, match=r"P0 queue full .* not accepted"):
        dispatcher.publish_nowait(ev(Priority.P0, 11))
    waiter = asyncio.create_task(dispatcher.publish(ev(Priority.P0, 11)))
    await asyncio.sleep(0.02)
    assert not waiter.done()  # blocked, not dropped
    with pytest.raises(EventQueueFull, match="1 publishers waiting"):
        dispatcher.publish_nowait(ev(Priority.P0, 12))  # may not overtake a waiting publisher
    assert [e.payload["n"] for e in fast.of(Priority.P0)] == list(
        range(11)
    )  # the other sink is not held up
    stuck.release(Priority.P0)
    await asyncio.wait_for(waiter, 1)
    await dispatcher.publish(ev(Priority.P0, 12))
    await dispatcher.stop()
    assert [e.payload["n"] for e in stuck.of(Priority.P0)] == list(range(13))
    assert [e.payload["n"] for e in fast.of(Priority.P0)] == list(range(13))
    assert dispatcher.refused == 2
    assert_accounted(dispatcher)


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


async def test_p0_latency_with_50k_p3_queued_and_a_slow_sink() -> None:
    sink = RecordingSink(per_event_s=0.0001)  # 100 µs an event: a batch of 256 P3 takes 26 ms
    dispatcher = EventDispatcher([sink], fast_settings(p3_sample_from=1.0))  # sample only when full
    for n in range(50_000):
        dispatcher.publish_nowait(ev(Priority.P3, n))
    await dispatcher.start()
    sent: dict[int, float] = {}
    for n in range(200):
        for m in range(50):  # keep the P3 backlog topped up
            dispatcher.publish_nowait(ev(Priority.P3, m))
        sent[n] = time.perf_counter()
        await dispatcher.publish(ev(Priority.P0, n))
        await asyncio.sleep(0.002)
    assert dispatcher.queue(0, Priority.P3).depth > 45_000  # the backlog really was there
    await dispatcher.stop(drain_timeout=0)
    latencies = [t - sent[e.payload["n"]] for e, t in sink.arrivals if e.priority is Priority.P0]
    assert len(latencies) == 200
    p99 = _p99(latencies)
    assert p99 < 0.010, f"P0 p99 {p99 * 1e3:.2f} ms"


async def test_a_slow_sink_never_blocks_the_producer_or_another_sink() -> None:
    hung, good = RecordingSink("hung", hang=True), MemoryEventSink(capacity=100_000)
    good.name = "good"
    dispatcher = EventDispatcher(
        [hung, good], fast_settings(deliver_timeout_s=None, emit_level_changes=False)
    )
    await dispatcher.start()
    started = time.perf_counter()
    for n in range(20_000):
        dispatcher.publish_nowait(ev(Priority(1 + n % 3), n))
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5  # tens of ms in practice: never waits for the hung sink
    assert await dispatcher.drain(0.2) is False  # the hung sink still holds its events
    await asyncio.sleep(0.05)
    assert good.delivered == 20_000 - dispatcher.queue("good", Priority.P2).dropped
    abandoned = await dispatcher.stop(drain_timeout=0.05)
    assert abandoned == dispatcher.summary()["sinks"]["hung"]["queues"]["P1"]["abandoned"] + (
        dispatcher.summary()["sinks"]["hung"]["queues"]["P2"]["abandoned"]
        + dispatcher.summary()["sinks"]["hung"]["queues"]["P3"]["abandoned"]
    )
    assert abandoned > 0
    assert_accounted(dispatcher)


async def test_a_failing_sink_is_retried_then_given_up_without_holding_up_others() -> None:
    broken, good = RecordingSink("broken", fail_always=True), RecordingSink("good")
    dispatcher = EventDispatcher([broken, good], fast_settings(retry_attempts=2))
    await dispatcher.start()
    await dispatcher.publish(ev(Priority.P0, 0))
    await asyncio.sleep(0.05)
    dispatcher.publish_nowait(ev(Priority.P1, 1))
    assert await dispatcher.drain(2)
    await dispatcher.stop()
    assert [e.payload["n"] for e in good.events] == [0, 1]
    counters = dispatcher.summary()["sinks"]["broken"]
    assert counters["failed_batches"] == counters["failed_events"] == 6  # 2 x (1 + 2 retries)
    assert counters["retried"] == 4
    assert (counters["given_up"], counters["given_up_events"]) == (2, 2)
    assert counters["last_error"] == "RuntimeError: sink broken broken (call 6)"
    assert counters["queues"]["P0"]["given_up"] == 1
    assert dispatcher.summary()["sinks"]["good"]["failed_batches"] == 0
    assert_accounted(dispatcher)


async def test_a_flaky_sink_gets_the_batch_on_a_retry() -> None:
    flaky = RecordingSink("flaky", fail_first=2)
    async with EventDispatcher([flaky], fast_settings(retry_attempts=3)) as dispatcher:
        dispatcher.publish_nowait(ev(Priority.P1, 7))
        assert await dispatcher.drain(2)
    counters = dispatcher.summary()["sinks"]["flaky"]
    assert (counters["failed_batches"], counters["retried"], counters["given_up"]) == (2, 2, 0)
    assert [e.payload["n"] for e in flaky.events] == [7]


async def test_a_hung_deliver_times_out_and_is_given_up() -> None:
    hung = RecordingSink("hung", hang=True)
    dispatcher = EventDispatcher([hung], fast_settings(deliver_timeout_s=0.02, retry_attempts=1))
    await dispatcher.start()
    await dispatcher.publish(ev(Priority.P0, 0))
    assert await dispatcher.drain(1)
    await dispatcher.stop()
    counters = dispatcher.summary()["sinks"]["hung"]
    assert (counters["timeouts"], counters["given_up_events"]) == (2, 1)
    assert counters["last_error"] == "deliver() took longer than 0.02 s"


async def test_stop_drains_within_the_timeout_and_counts_what_is_abandoned() -> None:
    slow = RecordingSink("slow", delay_s=0.05)
    dispatcher = EventDispatcher([slow], fast_settings(batch_max=10))
    await dispatcher.start()
    for n in range(1_000):
        dispatcher.publish_nowait(ev(Priority.P3, n))
    started = time.perf_counter()
    abandoned = await dispatcher.stop(drain_timeout=0.2)
    elapsed = time.perf_counter() - started
    assert 0.2 <= elapsed < 0.5
    q = dispatcher.summary()["queues"]["P3"]
    assert abandoned == q["abandoned"] == 1_000 - q["delivered"]
    assert 10 <= q["delivered"] <= 60  # 10 a batch, 50 ms a batch
    assert_accounted(dispatcher)


async def test_stop_delivers_everything_when_time_allows() -> None:
    sink = MemoryEventSink(capacity=100_000)
    dispatcher = EventDispatcher([sink], fast_settings())
    await dispatcher.start()
    for n in range(2_100):
        dispatcher.publish_nowait(ev(Priority(1 + n % 3), n))
    assert await dispatcher.stop(drain_timeout=5) == 0
    assert sink.delivered == 2_100
    assert dispatcher.pending == 0


async def test_stop_tells_a_still_blocked_p0_publisher_and_abandons_nothing_silently() -> None:
    stuck = RecordingSink("stuck")
    stuck.gate(Priority.P0)
    dispatcher = EventDispatcher([stuck], fast_settings(p0_capacity=2, emit_level_changes=False))
    await dispatcher.start()
    await dispatcher.publish(ev(Priority.P0, 0))
    await asyncio.sleep(0.01)  # event 0 in flight, held by the sink
    await dispatcher.publish(ev(Priority.P0, 1))
    await dispatcher.publish(ev(Priority.P0, 2))
    blocked = asyncio.create_task(dispatcher.publish(ev(Priority.P0, 3)))
    await asyncio.sleep(0.01)
    assert not blocked.done()
    abandoned = await dispatcher.stop(drain_timeout=0.05)
    with pytest.raises(EventBusClosed):
        await blocked  # told, not dropped in silence
    assert abandoned == 3  # 0 in flight, 1 and 2 queued
    q = dispatcher.summary()["queues"]["P0"]
    assert (q["published"], q["abandoned"], q["delivered"]) == (3, 3, 0)
    assert_accounted(dispatcher)


async def test_a_p0_publisher_blocked_at_stop_gets_in_while_draining() -> None:
    slow = RecordingSink("slow")
    slow.gate(Priority.P0)
    dispatcher = EventDispatcher([slow], fast_settings(p0_capacity=2, emit_level_changes=False))
    await dispatcher.start()
    await dispatcher.publish(ev(Priority.P0, 0))
    await asyncio.sleep(0.01)
    await dispatcher.publish(ev(Priority.P0, 1))
    await dispatcher.publish(ev(Priority.P0, 2))
    blocked = asyncio.create_task(dispatcher.publish(ev(Priority.P0, 3)))
    await asyncio.sleep(0.01)
    stopping = asyncio.create_task(dispatcher.stop(drain_timeout=2))
    await asyncio.sleep(0.01)
    slow.release(Priority.P0)
    assert await stopping == 0
    await blocked
    assert [e.payload["n"] for e in slow.events] == [0, 1, 2, 3]


async def test_publishing_after_stop_is_refused_until_started_again() -> None:
    sink = RecordingSink()
    dispatcher = EventDispatcher([sink], fast_settings())
    await dispatcher.start()
    await dispatcher.stop()
    dispatcher.publish_nowait(ev(Priority.P3))
    await dispatcher.emit(Priority.P2, "late")
    assert dispatcher.rejected == 2
    with pytest.raises(EventBusClosed, match="stopped; P0 event 'test' not accepted"):
        await dispatcher.publish(ev(Priority.P0))
    with pytest.raises(EventBusClosed):
        dispatcher.publish_nowait(ev(Priority.P0))
    await dispatcher.start()  # a reopened stack starts its dispatcher again
    await dispatcher.publish(ev(Priority.P0, 1))
    dispatcher.publish_nowait(ev(Priority.P3, 2))
    assert await dispatcher.drain(1)
    await dispatcher.stop()
    assert [e.payload["n"] for e in sink.events] == [1, 2]
    assert dispatcher.rejected == 2
    assert_accounted(dispatcher)


async def test_events_published_before_start_are_delivered_in_priority_order() -> None:
    sink = RecordingSink()
    dispatcher = EventDispatcher([sink], fast_settings())
    for n in range(30):
        dispatcher.publish_nowait(ev(Priority(3 - n % 4), n))
    await dispatcher.start()
    assert await dispatcher.drain(1)
    await dispatcher.stop()
    for priority in Priority:
        got = [e.payload["n"] for e in sink.of(priority)]
        assert got == sorted(got) and len(got) in (7, 8)  # in order within a priority
    assert sink.events[0].priority is Priority.P0  # the P0 lane starts first


async def test_the_event_bus_surface() -> None:
    sink = MemoryEventSink()
    sink.name = "mem"
    dispatcher = EventDispatcher([sink], fast_settings())
    assert dispatcher.enabled and dispatcher.sinks == [sink]
    async with dispatcher:
        await dispatcher.emit(Priority.P1, "safety.changed", "safety", current="LOCKDOWN")
        await dispatcher.emit(Priority.P2, "stale", "cache", key="price:A", age=1)
        dispatcher.emit_nowait(Priority.P3, "cache.hit", "cache", kind="price")
        await dispatcher.publish_many([ev(Priority.P0, 1), ev(Priority.P3, 2)])
        assert await dispatcher.drain(1)
    assert sorted(e.type for e in sink.events) == [
        "cache.hit", "safety.changed", "stale", "test", "test",
    ]  # fmt: skip
    stale = sink.of_type("stale")[0]
    assert (stale.key, stale.payload) == ("price:A", {"age": 1})
    summary = dispatcher.summary()
    assert summary["published"] == 5
    assert summary["level"] == "NORMAL"
    assert summary["sinks"]["mem"]["delivered"] == 5
    assert set(summary["queues"]["P3"]) >= {
        "depth", "published", "delivered", "dropped", "collapsed", "sampled", "given_up",
    }  # fmt: skip


async def test_without_sinks_publishing_does_nothing() -> None:
    dispatcher = EventDispatcher()
    assert not dispatcher.enabled
    async with dispatcher:
        dispatcher.publish_nowait(ev(Priority.P0))
        dispatcher.emit_nowait(Priority.P3, "cache.hit")
        await dispatcher.emit(Priority.P0, "safety.changed")
        await dispatcher.publish_many([ev(Priority.P0)] * 500)  # never blocks
    assert dispatcher.summary()["published"] == 0


async def test_two_sinks_with_the_same_name_are_told_apart() -> None:
    a, b = RecordingSink("same"), RecordingSink("same")
    dispatcher = EventDispatcher([a, b], fast_settings())
    assert set(dispatcher.summary()["sinks"]) == {"same", "same#1"}


async def test_counters_add_up_after_overflow_of_every_kind() -> None:
    sink = RecordingSink(delay_s=0.002)
    small = fast_settings(p1_capacity=50, p2_capacity=20, p3_capacity=100, batch_max=8)
    dispatcher = EventDispatcher([sink, MemoryEventSink()], small)
    await dispatcher.start()
    for n in range(3_000):
        dispatcher.publish_nowait(ev(Priority(1 + n % 3), n, key=f"k{n % 30}"))
        if n % 100 == 0:
            await dispatcher.publish(ev(Priority.P0, n))
    assert_accounted(dispatcher)
    await dispatcher.stop(drain_timeout=0.05)
    assert_accounted(dispatcher)
    queues = dispatcher.summary()["queues"]
    assert queues["P1"]["dropped"] > 0
    assert queues["P2"]["collapsed"] > 0
    assert queues["P3"]["sampled"] > 0
    assert queues["P0"]["delivered"] == 2 * 30  # two sinks, every P0


def _event_count(events: list[Event], type_: str) -> int:
    return sum(1 for e in events if e.type == type_)
