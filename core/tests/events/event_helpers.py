"""Helpers of the event dispatcher tests: a recording sink (slow, gated, failing), events, invariants."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from qts_data.contracts import Event, Priority
from qts_data.events import EventDispatcher, EventSettings
from qts_data.interfaces import EventSink


class RecordingSink(EventSink):
    """Records every delivered event and the ``perf_counter`` time its deliver() call began.

    ``delay_s`` sleeps in every call, ``per_event_s`` per event of the batch;
    ``gate(priority)`` makes calls carrying that priority wait until ``release``;
    ``fail_first`` calls raise, or every call when ``fail_always``.
    """

    def __init__(
        self,
        name: str = "rec",
        *,
        delay_s: float = 0.0,
        per_event_s: float = 0.0,
        fail_first: int = 0,
        fail_always: bool = False,
        hang: bool = False,
    ) -> None:
        self.name = name
        self.delay_s = delay_s
        self.per_event_s = per_event_s
        self.fail_first = fail_first
        self.fail_always = fail_always
        self.hang = hang
        self.calls = 0
        self.events: list[Event] = []
        self.arrivals: list[tuple[Event, float]] = []
        self.gates: dict[Priority, asyncio.Event] = {}

    def gate(self, priority: Priority) -> None:
        self.gates[priority] = asyncio.Event()

    def release(self, priority: Priority) -> None:
        self.gates.pop(priority).set()

    async def deliver(self, events: Sequence[Event]) -> None:
        now = time.perf_counter()
        self.calls += 1
        if self.hang:
            await asyncio.Event().wait()
        if self.fail_always or self.calls <= self.fail_first:
            raise RuntimeError(f"sink {self.name} broken (call {self.calls})")
        gate = self.gates.get(events[0].priority)
        if gate is not None:
            await gate.wait()
        for event in events:
            self.arrivals.append((event, now))
        self.events.extend(events)
        delay = self.delay_s + self.per_event_s * len(events)
        if delay:
            await asyncio.sleep(delay)

    def of(self, priority: Priority) -> list[Event]:
        return [e for e in self.events if e.priority is priority]


def ev(priority: Priority, n: int = 0, key: str | None = None, **payload: Any) -> Event:
    return Event(
        priority=priority, type="test", source="test", payload={"n": n, **payload}, key=key
    )


def fast_settings(**overrides: Any) -> EventSettings:
    """Default settings with fast retries; any field overridden by keyword."""
    values: dict[str, Any] = {"retry_backoff_s": 0.001, "retry_backoff_max_s": 0.005}
    values.update(overrides)
    return EventSettings(**values)


def assert_accounted(dispatcher: EventDispatcher) -> None:
    """Every published event is accounted for, per sink and priority."""
    for sink, info in dispatcher.summary()["sinks"].items():
        for priority, q in info["queues"].items():
            settled = (
                q["delivered"] + q["dropped"] + q["collapsed"] + q["sampled"] + q["given_up"]
                + q["abandoned"] + q["depth"] + q["in_flight"]
            )  # fmt: skip
            assert q["published"] == settled, (sink, priority, q)
