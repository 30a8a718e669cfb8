"""The event bus of a stack: delivers events to its sinks, in publication order.

This is the simple in-order bus; a failing sink never stops delivery to the
others, and its failures are counted, not hidden.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qts_data.contracts import Event, Priority
from qts_data.interfaces import EventSink

log = logging.getLogger("qts_data.events")


@dataclass
class SinkCounters:
    delivered: int = 0
    failed_batches: int = 0
    failed_events: int = 0
    last_error: str | None = None


class EventBus:
    """Publishes events to every sink of the stack."""

    def __init__(self, sinks: Sequence[EventSink] = ()) -> None:
        self.sinks = list(sinks)
        self.published = 0
        self.counters = {id(sink): SinkCounters() for sink in self.sinks}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def enabled(self) -> bool:
        return bool(self.sinks)

    async def publish(self, event: Event) -> None:
        await self.publish_many((event,))

    def publish_nowait(self, event: Event) -> None:
        """Publish without waiting (from synchronous code or the hot path): delivery runs as a task."""
        if not self.sinks:
            return
        task = asyncio.get_running_loop().create_task(self.publish_many((event,)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the deliveries started by ``publish_nowait``."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def emit(self, priority: Priority, type_: str, source: str = "", **payload: Any) -> None:
        """Build and publish an event; costs nothing when the stack has no sinks."""
        if self.sinks:
            await self.publish(Event(priority=priority, type=type_, source=source, payload=payload))

    async def publish_many(self, events: Sequence[Event]) -> None:
        self.published += len(events)
        for sink in self.sinks:
            counters = self.counters[id(sink)]
            try:
                await sink.deliver(events)
            except Exception as exc:
                counters.failed_batches += 1
                counters.failed_events += len(events)
                counters.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("event sink %s failed: %s", sink.name, counters.last_error)
            else:
                counters.delivered += len(events)

    def summary(self) -> dict[str, Any]:
        return {
            "published": self.published,
            "sinks": {
                sink.name: {
                    "delivered": c.delivered,
                    "failed_batches": c.failed_batches,
                    "failed_events": c.failed_events,
                    "last_error": c.last_error,
                }
                for sink in self.sinks
                for c in (self.counters[id(sink)],)
            },
        }
