"""The in-memory event sink: the last ``capacity`` events, for tests and inspection."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from qts_data.contracts import Event, HealthState, HealthStatus
from qts_data.interfaces import EventSink

__all__ = ["MemoryEventSink"]


class MemoryEventSink(EventSink):
    """Keeps delivered events in a ring buffer of ``capacity``; the oldest are dropped first.

    ``delivered`` counts every event received, ``dropped`` those the ring buffer
    overwrote (or that never fitted, when one batch exceeds the capacity).
    """

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._buffer: deque[Event] = deque(maxlen=capacity)
        self.delivered = 0
        self.dropped = 0
        self.batches = 0
        self._waiters: list[tuple[Callable[[Event], bool], asyncio.Future[Event]]] = []

    async def deliver(self, events: Sequence[Event]) -> None:
        count = len(events)
        if not count:
            return
        buffer = self._buffer
        overflow = len(buffer) + count - self.capacity
        if overflow > 0:
            self.dropped += overflow
        buffer.extend(events)
        self.delivered += count
        self.batches += 1
        if self._waiters:
            self._notify(events)

    def _notify(self, events: Sequence[Event]) -> None:
        pending = []
        for predicate, future in self._waiters:
            if future.done():
                continue
            match = next((event for event in events if predicate(event)), None)
            if match is None:
                pending.append((predicate, future))
            else:
                future.set_result(match)
        self._waiters = pending

    @property
    def events(self) -> list[Event]:
        """The buffered events, oldest first (a copy)."""
        return list(self._buffer)

    def __len__(self) -> int:
        return len(self._buffer)

    def of_type(self, event_type: str) -> list[Event]:
        """The buffered events of one ``type``, oldest first."""
        return [event for event in self._buffer if event.type == event_type]

    def clear(self) -> None:
        """Empty the buffer; the counters keep their totals."""
        self._buffer.clear()

    async def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 5.0) -> Event:
        """The first buffered or future event matching ``predicate``; TimeoutError after ``timeout`` s."""
        for event in self._buffer:
            if predicate(event):
                return event
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
            raise TimeoutError(f"no matching event within {timeout} s") from None
        finally:
            self._waiters = [(p, f) for p, f in self._waiters if f is not future]

    async def health_check(self) -> HealthStatus:
        return HealthStatus(
            component=self.name or "memory",
            state=HealthState.HEALTHY,
            details={
                "capacity": self.capacity,
                "buffered": len(self._buffer),
                "delivered": self.delivered,
                "dropped": self.dropped,
            },
        )

    def describe(self) -> dict[str, Any]:
        return {"capacity": self.capacity}

    async def close(self) -> None:
        for _, future in self._waiters:
            future.cancel()
        self._waiters = []
        await super().close()
