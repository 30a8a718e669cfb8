"""The conformance suite of :class:`~qts_data.interfaces.EventSink`.

Subclass :class:`EventSinkConformance` in a test module of your plugin, give
it a ``make_event_sink`` fixture and say how to read back what the sink received::

    import pytest
    from qts_data.testing import EventSinkConformance

    class TestMySink(EventSinkConformance):
        @pytest.fixture
        def make_event_sink(self, redis_prefix):
            # a NEW, unopened sink that has received nothing
            return lambda: MyStreamSink(stream=f"{redis_prefix}events")

        async def delivered(self, sink):
            return await read_events_back(sink)   # list[Event], oldest first

Events are compared on ``type``, ``priority``, ``key`` and ``payload`` (the part
a sink must carry); payloads use JSON types only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, ClassVar

import pytest
import pytest_asyncio

from qts_data.contracts import Event, Priority
from qts_data.interfaces import EventSink
from qts_data.testing._suite_support import (
    build,
    check_close_twice,
    check_close_unopened,
    check_health,
)

__all__ = ["EventSinkConformance"]


def event(i: int, priority: Priority = Priority.P2, **payload: Any) -> Event:
    return Event(
        priority=priority,
        type=f"test.event{i % 3}",
        source="conformance",
        payload={"i": i, **payload},
        key=f"k{i}" if i % 2 else None,
    )


def view(events: Sequence[Event]) -> list[tuple[str, Priority, str | None, dict[str, Any]]]:
    """What a sink must preserve of each event."""
    return [(e.type, Priority(e.priority), e.key, e.payload) for e in events]


class EventSinkConformance:
    """Conformance tests of an :class:`~qts_data.interfaces.EventSink`.

    Provide in the subclass:

    * ``make_event_sink`` (fixture, required): returns a zero-argument callable
      that creates a new, unopened sink which has received nothing (it may
      return an awaitable of the sink). The suite's ``event_sink`` fixture
      opens it and closes it after the test.
    * ``async def delivered(self, sink) -> list[Event]`` (required): every event
      the sink has received so far, oldest first.
    """

    pytestmark: ClassVar[Any] = pytest.mark.asyncio

    @pytest_asyncio.fixture(loop_scope="function")
    async def event_sink(self, make_event_sink: Callable[[], Any]) -> AsyncIterator[EventSink]:
        """The sink under test, opened; closed after the test."""
        made: EventSink = await build(make_event_sink, EventSink, "make_event_sink")
        await made.open()
        try:
            yield made
        finally:
            await made.close()

    async def delivered(self, sink: EventSink) -> list[Event]:
        """Every event ``sink`` has received, oldest first. Override this."""
        raise NotImplementedError(
            f"{type(self).__name__} must override `async def delivered(self, sink) -> list[Event]` "
            "to read back the events the sink received, oldest first (an in-memory sink: "
            "`return list(sink.events)`; a Redis Streams sink: read the stream)"
        )

    async def test_delivers_a_batch_in_order(self, event_sink: EventSink) -> None:
        batch = [event(i) for i in range(10)]
        await event_sink.deliver(batch)
        assert view(await self.delivered(event_sink)) == view(batch)

    async def test_accepts_every_priority(self, event_sink: EventSink) -> None:
        batch = [event(i, priority) for i, priority in enumerate(Priority)]
        batch += [event(10 + i, priority) for i, priority in enumerate(reversed(Priority))]
        await event_sink.deliver(batch)
        got = await self.delivered(event_sink)
        assert view(got) == view(batch)
        assert [Priority(e.priority) for e in got] == [*Priority, *reversed(Priority)]

    async def test_nested_payload_survives(self, event_sink: EventSink) -> None:
        payload = {
            "nested": {"list": [1, 2.5, {"deep": ["x", None, True]}], "empty": {}},
            "text": '호가 ü ₩ "quoted" \\ \n',
            "number": -12345678901234,
            "float": 0.125,
            "flag": False,
            "nothing": None,
            "empty_list": [],
        }
        batch = [Event(priority=Priority.P1, type="nested", payload=payload, key="book:BTC")]
        await event_sink.deliver(batch)
        assert view(await self.delivered(event_sink)) == view(batch)

    async def test_empty_batch_is_accepted(self, event_sink: EventSink) -> None:
        await event_sink.deliver([])
        assert await self.delivered(event_sink) == []
        batch = [event(1)]
        await event_sink.deliver(batch)
        await event_sink.deliver(())
        assert view(await self.delivered(event_sink)) == view(batch)

    async def test_batches_in_sequence_keep_their_order(self, event_sink: EventSink) -> None:
        sent: list[Event] = []
        for b in range(20):
            batch = [event(b * 5 + i, Priority(i % 4)) for i in range(5)]
            await event_sink.deliver(batch)
            sent += batch
        assert view(await self.delivered(event_sink)) == view(sent)

    async def test_health_check_returns_a_health_status(self, event_sink: EventSink) -> None:
        await check_health(event_sink)

    async def test_close_of_an_unopened_sink_does_not_raise(
        self, make_event_sink: Callable[[], Any]
    ) -> None:
        await check_close_unopened(await build(make_event_sink, EventSink, "make_event_sink"))

    async def test_close_twice_does_not_raise(self, make_event_sink: Callable[[], Any]) -> None:
        await check_close_twice(await build(make_event_sink, EventSink, "make_event_sink"))
