"""Delivery to one sink: its own four queues, three lanes, retries and counters.

Every sink has a :class:`SinkChannel`, so a slow or failing sink only ever
fills its own queues: the other sinks and the publisher never wait for it.
Within a channel, three lanes (asyncio tasks) deliver concurrently:

* the P0 lane (seeds/003's dedicated P0 thread): all pending P0 events at once;
* the P1 lane (its P1 pool);
* the P2/P3 lane (its P2/P3 workers): P2 before P3, strictly.

So a P0 event never waits behind a P1-P3 batch, even to the same sink. Each
lane has one batch in flight at a time, which keeps every priority in
publication order at the sink (the sink's ``deliver`` must therefore accept
calls from different lanes concurrently, and must not block the event loop).

A failed (or timed-out) ``deliver`` is retried with exponential backoff; after
``retry_attempts`` retries the batch is given up. Both are counted, per sink
and per queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from qts_data.contracts import Event, Priority
from qts_data.events.degradation import Degradation
from qts_data.events.queues import EventQueue, Wakeup, make_queue
from qts_data.events.settings import EventSettings
from qts_data.interfaces import EventSink

__all__ = ["DeliveryCounters", "DeliveryLane", "SinkChannel"]

log = logging.getLogger("qts_data.events")


@dataclass
class DeliveryCounters:
    """What happened to the ``deliver`` calls of one sink."""

    delivered: int = 0  # events
    batches: int = 0  # successful deliver() calls
    failed: int = 0  # failed deliver() calls, timeouts included
    timeouts: int = 0
    retried: int = 0  # deliver() calls that were retries
    given_up: int = 0  # batches given up after all retries
    given_up_events: int = 0
    last_error: str | None = None


class DeliveryLane:
    """One asyncio task delivering the queues it serves, most urgent first, one batch at a time."""

    def __init__(
        self,
        channel: SinkChannel,
        queues: Sequence[EventQueue],
        *,
        batch_max: int,
        degradation: Degradation,
        on_taken: Callable[[EventQueue], None],
        hold_open: Callable[[], bool],
    ) -> None:
        self.channel = channel
        self.queues = tuple(queues)
        self.batch_max = batch_max
        self.wakeup = Wakeup()
        for queue in self.queues:
            queue.wakeup = self.wakeup
        #: Set by ``stop``: deliver everything, whatever the level, then end.
        self.draining = False
        self._degradation = degradation
        self._on_taken = on_taken
        self._hold_open = hold_open
        self.task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return f"{self.channel.name}:" + "+".join(q.priority.name for q in self.queues)

    def _take(self) -> tuple[EventQueue, list[Event]] | None:
        level = self._degradation.level
        draining = self.draining
        for queue in self.queues:
            if len(queue) and (draining or queue.priority + level <= 3):
                return queue, queue.take(self.batch_max)
        return None

    async def run(self) -> None:
        wakeup = self.wakeup
        while True:
            taken = self._take()
            if taken is None:
                if self.draining and not self._hold_open():
                    return
                await wakeup.wait()
                continue
            queue, batch = taken
            self._on_taken(queue)
            await self.channel.deliver(queue, batch)


class SinkChannel:
    """One sink's queues, lanes and delivery counters."""

    def __init__(
        self,
        sink: EventSink,
        name: str,
        settings: EventSettings,
        degradation: Degradation,
        on_taken: Callable[[EventQueue], None],
        hold_p0_open: Callable[[], bool],
    ) -> None:
        self.sink = sink
        self.name = name
        self.settings = settings
        self.counters = DeliveryCounters()
        s = settings
        #: The queues of P0, P1, P2, P3, in that order.
        self.queues: tuple[EventQueue, ...] = tuple(
            make_queue(p, s.capacity(p), sample_from=s.p3_sample_from, keep_one_in=s.p3_keep_one_in)
            for p in Priority
        )
        q0, q1, q2, q3 = self.queues
        never: Callable[[], bool] = lambda: False  # noqa: E731
        self.lanes = (
            DeliveryLane(
                self, (q0,), batch_max=max(q0.capacity, 1), degradation=degradation,
                on_taken=on_taken, hold_open=hold_p0_open,
            ),
            DeliveryLane(
                self, (q1,), batch_max=s.batch_max, degradation=degradation,
                on_taken=on_taken, hold_open=never,
            ),
            DeliveryLane(
                self, (q2, q3), batch_max=s.batch_max, degradation=degradation,
                on_taken=on_taken, hold_open=never,
            ),
        )  # fmt: skip

    async def deliver(self, queue: EventQueue, batch: list[Event]) -> None:
        """Deliver one batch, retrying with backoff; settle it as delivered or given up."""
        counters = self.counters
        settings = self.settings
        timeout = settings.deliver_timeout_s
        count = len(batch)
        attempt = 0
        while True:
            try:
                if timeout is None:
                    await self.sink.deliver(batch)
                else:
                    await asyncio.wait_for(self.sink.deliver(batch), timeout)
            except asyncio.TimeoutError:
                counters.failed += 1
                counters.timeouts += 1
                counters.last_error = f"deliver() took longer than {timeout:g} s"
            except Exception as exc:
                counters.failed += 1
                counters.last_error = f"{type(exc).__name__}: {exc}"
            else:
                queue.settle(count, delivered=True)
                counters.delivered += count
                counters.batches += 1
                return
            if attempt >= settings.retry_attempts:
                queue.settle(count, delivered=False)
                counters.given_up += 1
                counters.given_up_events += count
                log.warning(
                    "event sink %s: gave up %d %s events after %d attempts: %s",
                    self.name, count, queue.priority.name, attempt + 1, counters.last_error,
                )  # fmt: skip
                return
            attempt += 1
            counters.retried += 1
            delay = min(settings.retry_backoff_s * 2 ** (attempt - 1), settings.retry_backoff_max_s)
            if delay:
                await asyncio.sleep(delay)

    def summary(self) -> dict[str, Any]:
        return {
            **asdict(self.counters),
            "queues": {q.priority.name: q.counters() for q in self.queues},
        }
