"""MemoryEventSink: a ring buffer of delivered events with delivered/dropped counters."""

from __future__ import annotations

import asyncio

import pytest

from qts_data.contracts import Event, Priority
from qts_data.interfaces import EventSink
from qts_data_memory.sink import MemoryEventSink


def events(*types: str) -> list[Event]:
    return [Event(priority=Priority.P2, type=kind) for kind in types]


def test_memory_event_sink_is_an_event_sink() -> None:
    assert isinstance(MemoryEventSink(), EventSink)


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        MemoryEventSink(0)


async def test_events_are_kept_in_delivery_order() -> None:
    sink = MemoryEventSink()
    await sink.deliver(events("a", "b"))
    await sink.deliver(events("c"))
    assert [e.type for e in sink.events] == ["a", "b", "c"]
    assert (sink.delivered, sink.dropped) == (3, 0)


async def test_ring_buffer_drops_the_oldest_and_counts_them() -> None:
    sink = MemoryEventSink(capacity=3)
    await sink.deliver(events("a", "b"))
    await sink.deliver(events("c", "d"))
    assert [e.type for e in sink.events] == ["b", "c", "d"]
    assert (sink.delivered, sink.dropped) == (4, 1)
    await sink.deliver(events("e", "f", "g", "h", "i"))  # a batch larger than the buffer
    assert [e.type for e in sink.events] == ["g", "h", "i"]
    assert (sink.delivered, sink.dropped) == (9, 6)


async def test_events_is_a_copy() -> None:
    sink = MemoryEventSink()
    await sink.deliver(events("a"))
    sink.events.clear()
    assert len(sink.events) == 1


async def test_clear_empties_the_buffer_but_keeps_the_totals() -> None:
    sink = MemoryEventSink(capacity=2)
    await sink.deliver(events("a", "b", "c"))
    sink.clear()
    assert sink.events == []
    assert (sink.delivered, sink.dropped) == (3, 1)
    await sink.deliver(events("d", "e"))
    assert sink.dropped == 1  # the buffer had room again


async def test_wait_for_returns_a_buffered_or_later_event() -> None:
    sink = MemoryEventSink()
    await sink.deliver(events("early"))
    assert (await sink.wait_for(lambda e: e.type == "early")).type == "early"
    waiter = asyncio.create_task(sink.wait_for(lambda e: e.type == "late", timeout=1))
    await asyncio.sleep(0)
    assert not waiter.done()
    await sink.deliver(events("other", "late"))
    assert (await waiter).type == "late"
    with pytest.raises(TimeoutError):
        await sink.wait_for(lambda e: e.type == "never", timeout=0.01)


async def test_health_check_reports_the_counters() -> None:
    sink = MemoryEventSink(capacity=2)
    await sink.deliver(events("a", "b", "c"))
    status = await sink.health_check()
    assert status.healthy
    assert status.details == {"capacity": 2, "buffered": 2, "delivered": 3, "dropped": 1}
