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
import sys
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
    failed_batches: int = 0  # failed deliver() calls, timeouts included
    failed_events: int = 0  # the events of those calls (an event retried twice counts twice)
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
        hold_open: Callable[[], bool],
        defer_to: Callable[[], bool] | None = None,
    ) -> None:
        self.channel = channel
        self.queues = tuple(queues)
        self.batch_max = batch_max
        self.wakeup = Wakeup()
        for queue in self.queues:
            queue.wakeup = self.wakeup
        #: Set by ``stop``: deliver everything, whatever the level, then end.
        self.draining = False
        #: Set by ``stop`` when the drain time is over: end now (even if a cancellation was lost).
        self.aborted = False
        self._hold_open = hold_open
        self._defer_to = defer_to
        self.task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return f"{self.channel.name}:" + "+".join(q.priority.name for q in self.queues)

    def _take(self) -> tuple[EventQueue, list[Event]] | None:
        level = self.channel.degradation.level
        draining = self.draining
        for queue in self.queues:
            if len(queue) and (draining or queue.priority + level <= 3):
                return queue, queue.take(self.batch_max)
        return None

    async def run(self) -> None:
        wakeup = self.wakeup
        defer_to = self._defer_to
        while not self.aborted:
            if defer_to is not None and defer_to():
                # P0 events are waiting (for any sink): let their lanes, already scheduled,
                # run before this lane takes a batch that may hold the loop for a while.
                await asyncio.sleep(0)
            taken = self._take()
            if taken is None:
                if self.draining and not self._hold_open():
                    return
                await wakeup.wait()
                continue
            queue, batch = taken
            channel = self.channel
            channel.taken(queue)
            await channel.deliver(queue, batch, self)
            # A sink that never suspends (a memory or logging sink) would otherwise run the
            # whole backlog in one go and hold the event loop: P0 and the producers would
            # wait. Yielding bounds that to one batch.
            await asyncio.sleep(0)


class SinkChannel:
    """One sink's queues, lanes, degradation level and delivery counters."""

    def __init__(
        self,
        sink: EventSink,
        name: str,
        settings: EventSettings,
        *,
        on_p0_taken: Callable[[], None],
        hold_p0_open: Callable[[], bool],
        p0_pending: Callable[[], bool] | None = None,
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
        #: This sink's level: its own queues' pressure, and the safety state.
        self.degradation = Degradation(
            [q.capacity for q in self.queues],
            lambda priority: len(self.queues[priority]),
            enter=s.degrade_enter,
            leave=s.degrade_leave,
            name=name,
        )
        for queue in self.queues[:3]:
            queue.pressure_at = self.degradation.enter_at[queue.priority]
            queue.on_pressure = self._pressure
        self.degradation.listeners.append(self._wake_lanes)
        self._on_p0_taken = on_p0_taken
        q0, q1, q2, q3 = self.queues
        never: Callable[[], bool] = lambda: False  # noqa: E731
        self.lanes = (
            DeliveryLane(self, (q0,), batch_max=q0.capacity, hold_open=hold_p0_open),
            DeliveryLane(self, (q1,), batch_max=s.batch_max, hold_open=never, defer_to=p0_pending),
            DeliveryLane(
                self, (q2, q3), batch_max=s.batch_max, hold_open=never, defer_to=p0_pending
            ),
        )

    def _pressure(self, queue: EventQueue) -> None:
        self.degradation.pressure(queue.priority)

    def _wake_lanes(self, change: object) -> None:
        for lane in self.lanes:
            lane.wakeup.wake()

    def taken(self, queue: EventQueue) -> None:
        """A lane took a batch from ``queue``: room for P0 publishers, maybe the end of a pressure."""
        priority = queue.priority
        if priority == 0:
            self._on_p0_taken()
        if priority < 3 and self.degradation.pressured[priority]:
            self.degradation.relief(priority)

    async def deliver(self, queue: EventQueue, batch: list[Event], lane: DeliveryLane) -> None:
        """Deliver one batch, retrying with backoff; settle it as delivered or given up.

        Left unsettled (in flight) when the lane is aborted: ``stop`` counts it abandoned.
        """
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
                    await _deliver_within(self.sink, batch, timeout)
            except _DeliverTimeout:
                counters.failed_batches += 1
                counters.failed_events += count
                counters.timeouts += 1
                counters.last_error = f"deliver() took longer than {timeout:g} s"
            except Exception as exc:
                counters.failed_batches += 1
                counters.failed_events += count
                counters.last_error = f"{type(exc).__name__}: {exc}"
            else:
                queue.settle(count, delivered=True)
                counters.delivered += count
                counters.batches += 1
                return
            if lane.aborted:
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
            "level": self.degradation.level.name,
            "pressured": [
                Priority(p).name for p, on in enumerate(self.degradation.pressured) if on
            ],
            "level_changes": self.degradation.changes,
            "queues": {q.priority.name: q.counters() for q in self.queues},
        }


class _DeliverTimeout(Exception):
    """deliver() exceeded the dispatcher's ``deliver_timeout_s`` (not a timeout of the sink's own)."""


if sys.version_info >= (3, 11):

    async def _deliver_within(sink: EventSink, batch: list[Event], timeout: float) -> None:
        # asyncio.timeout runs deliver() in the lane's own task (no task per batch) and,
        # unlike wait_for before 3.12, never swallows a cancellation of the lane.
        scope = asyncio.timeout(timeout)
        try:
            async with scope:
                await sink.deliver(batch)
        except TimeoutError:
            if scope.expired():
                raise _DeliverTimeout from None
            raise

else:  # pragma: no cover - Python 3.10

    async def _deliver_within(sink: EventSink, batch: list[Event], timeout: float) -> None:
        try:
            await asyncio.wait_for(sink.deliver(batch), timeout)
        except asyncio.TimeoutError:
            raise _DeliverTimeout from None
