"""The prioritised event dispatcher of a stack (seeds/003, Phase 1-A).

Publishing puts an event into the queue of its priority in every sink's
channel (:mod:`qts_data.events.delivery`), under that queue's overflow policy
(:mod:`qts_data.events.queues`); lanes deliver from there, at the pace of each
sink, as far as the degradation level allows (:mod:`qts_data.events.degradation`).

Publishing, by priority:

* P1-P3: ``publish_nowait(event)`` is synchronous, O(1) and never blocks; a full
  queue applies its policy (drop oldest, collapse, sample) and counts it.
  ``await publish(event)`` does the same.
* P0: never dropped. ``await publish(event)`` waits for room in every sink's P0
  queue (BLOCK; publishers waiting are served in order).
  ``publish_nowait(event)`` puts it if there is room now and otherwise raises
  :class:`EventQueueFull` without accepting it; the caller keeps the event.

For every sink and priority, at any moment::

    published == delivered + dropped + collapsed + sampled + given_up
                 + abandoned + depth + in_flight

``abandoned`` counts what ``stop()`` could not deliver within its drain
timeout. Events published after ``stop()`` began are not accepted: P1-P3 are
counted as ``rejected``, a P0 publish raises :class:`EventBusClosed`. Events
published before ``start()`` wait in the queues. With no sinks, publishing
does nothing at all (and counts nothing).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from qts_data.contracts import Event, Priority, SafetyChange, SafetyState
from qts_data.events.degradation import DegradationLevel, LevelChange
from qts_data.events.delivery import SinkChannel
from qts_data.events.errors import EventBusClosed, EventQueueFull
from qts_data.events.queues import BlockingQueue, EventQueue
from qts_data.events.settings import EventSettings
from qts_data.interfaces import EventSink

__all__ = ["EventDispatcher"]

log = logging.getLogger("qts_data.events")

_NEW, _RUNNING, _STOPPING, _STOPPED = "new", "running", "stopping", "stopped"

#: The event type of a degradation level change (published at P1 when ``emit_level_changes``).
LEVEL_CHANGED = "events.level_changed"


class EventDispatcher:
    """Delivers prioritised events to sinks (the stack's ``Stack.events``).

    Use ``await start()`` once the sinks are open and ``await stop()`` before
    they close (or ``async with``).
    """

    def __init__(
        self, sinks: Sequence[EventSink] = (), settings: EventSettings | None = None
    ) -> None:
        self.settings = s = settings if settings is not None else EventSettings()
        self.sinks = list(sinks)
        self._safety = SafetyState.NORMAL
        #: Called (synchronously) with every :class:`LevelChange` of any sink.
        self.level_listeners: list[Callable[[LevelChange], None]] = []
        self._room = asyncio.Event()
        names: set[str] = set()
        self._channels: list[SinkChannel] = []
        for index, sink in enumerate(self.sinks):
            name = sink.name or type(sink).__name__
            if name in names:
                name = f"{name}#{index}"
            names.add(name)
            channel = SinkChannel(
                sink,
                name,
                s,
                on_p0_taken=self._room.set,
                hold_p0_open=self._p0_publishers_waiting,
                p0_pending=self._p0_pending,
            )
            channel.degradation.listeners.append(self._level_changed)
            self._channels.append(channel)
        self._p0: tuple[BlockingQueue, ...] = tuple(
            q for c in self._channels for q in c.queues[:1] if isinstance(q, BlockingQueue)
        )
        self._p0_lock = asyncio.Lock()
        self._p0_blocked = 0
        self._state = _NEW
        #: P1-P3 events published after ``stop()`` began (not accepted).
        self.rejected = 0
        #: P0 ``publish_nowait`` calls refused because a P0 queue was full (not accepted).
        self.refused = 0
        #: P0 publishes that had to wait for room.
        self.p0_waits = 0
        self._put: list[Callable[[Event], None]] = self._accepting_puts()

    # -- publishing --------------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        """Whether there is any sink; without one, publishing costs (almost) nothing."""
        return bool(self._channels)

    def publish_nowait(self, event: Event) -> None:
        """Queue ``event`` now, without waiting (the hot path). A P0 event meeting a
        full queue raises :class:`EventQueueFull` and is not accepted."""
        self._put[event.priority](event)

    def emit_nowait(
        self,
        priority: Priority,
        type_: str,
        source: str = "",
        *,
        key: str | None = None,
        **payload: Any,
    ) -> None:
        """Build and queue an event; builds nothing when there is no sink."""
        if self._channels:
            self._put[priority](Event(priority, type_, source, payload, key))

    async def publish(self, event: Event) -> None:
        """Queue ``event``; a P0 event waits for room rather than being dropped."""
        if event.priority:
            self._put[event.priority](event)
        elif self._channels:
            await self._publish_p0(event)

    async def publish_many(self, events: Sequence[Event]) -> None:
        """Publish ``events`` in order (P0 ones may wait for room)."""
        put = self._put
        for event in events:
            if event.priority:
                put[event.priority](event)
            elif self._channels:
                await self._publish_p0(event)

    async def emit(
        self,
        priority: Priority,
        type_: str,
        source: str = "",
        *,
        key: str | None = None,
        **payload: Any,
    ) -> None:
        """Build and publish an event; costs nothing when there is no sink."""
        if self._channels:
            await self.publish(Event(priority, type_, source, payload, key))

    # -- P0 ------------------------------------------------------------------------------------------
    def _p0_has_room(self) -> bool:
        return all(len(queue) < queue.capacity for queue in self._p0)

    def _p0_pending(self) -> bool:
        return any(len(queue) for queue in self._p0)

    def _p0_publishers_waiting(self) -> bool:
        return self._p0_blocked > 0

    def _put_p0_nowait(self, event: Event) -> None:
        if self._p0_blocked or not self._p0_has_room():
            self.refused += 1
            waiting = f", {self._p0_blocked} publishers waiting" if self._p0_blocked else ""
            raise EventQueueFull(
                f"P0 queue full ({self.settings.p0_capacity} events per sink{waiting}); "
                f"event {event.type!r} not accepted; P0 events are never dropped: "
                "await publish(event) to wait for room"
            )
        for queue in self._p0:
            queue.put(event)

    def _put_p0_closed(self, event: Event) -> None:
        raise EventBusClosed(
            f"the event dispatcher is {self._state}; P0 event {event.type!r} not accepted"
        )

    async def _publish_p0(self, event: Event) -> None:
        if self._state in (_STOPPING, _STOPPED):
            self._put_p0_closed(event)
        if not self._p0_blocked and self._p0_has_room():
            for queue in self._p0:
                queue.put(event)
            return
        self.p0_waits += 1
        self._p0_blocked += 1
        try:
            async with self._p0_lock:  # FIFO: waiting publishers keep their order
                while True:
                    if self._state is _STOPPED:  # stop() drained what it could: not accepted
                        self._put_p0_closed(event)
                    if self._p0_has_room():
                        break
                    self._room.clear()
                    await self._room.wait()
                for queue in self._p0:
                    queue.put(event)
        finally:
            self._p0_blocked -= 1

    # -- puts ------------------------------------------------------------------------------------
    def _accepting_puts(self) -> list[Callable[[Event], None]]:
        if not self._channels:
            return [_discard] * len(Priority)
        puts: list[Callable[[Event], None]] = [self._put_p0_nowait]
        for priority in (Priority.P1, Priority.P2, Priority.P3):
            queue_puts = tuple(c.queues[priority].put for c in self._channels)
            puts.append(queue_puts[0] if len(queue_puts) == 1 else _fan_out(queue_puts))
        return puts

    def _reject(self, event: Event) -> None:
        self.rejected += 1

    # -- degradation and safety ----------------------------------------------------------------------
    def _level_changed(self, change: LevelChange) -> None:
        if self.settings.emit_level_changes and self._state in (_NEW, _RUNNING):
            self.emit_nowait(
                Priority.P1,
                LEVEL_CHANGED,
                "events",
                sink=change.sink,
                previous=change.previous.name,
                current=change.current.name,
                reason=change.reason,
            )
        for listener in list(self.level_listeners):
            try:
                listener(change)
            except Exception as exc:
                log.warning("event level listener %r failed: %s", listener, exc)

    @property
    def level(self) -> DegradationLevel:
        """The most degraded level of any sink (CRITICAL_ONLY in LOCKDOWN, even without sinks)."""
        level = max((c.degradation.level for c in self._channels), default=DegradationLevel.NORMAL)
        if self._safety is SafetyState.LOCKDOWN:
            return DegradationLevel.CRITICAL_ONLY
        return level

    def levels(self) -> dict[str, DegradationLevel]:
        """Each sink's level."""
        return {c.name: c.degradation.level for c in self._channels}

    @property
    def safety(self) -> SafetyState:
        return self._safety

    def set_safety_state(self, state: SafetyState | str) -> None:
        """LOCKDOWN forces CRITICAL_ONLY (only P0 delivered); any other state lifts it."""
        self._safety = SafetyState(state)
        for channel in self._channels:
            channel.degradation.set_safety_state(self._safety)

    def on_safety_change(self, change: SafetyChange) -> None:
        """A :class:`~qts_data.safety.SafetyController` internal hook."""
        self.set_safety_state(change.current)

    # -- lifecycle -----------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._state is _RUNNING

    async def start(self) -> None:
        """Start the delivery lanes (idempotent). Events published before are delivered now.

        A stopped dispatcher starts again (a stack reopened): it accepts events
        anew; its counters keep their totals.
        """
        if self._state is _RUNNING:
            return
        if self._state is _STOPPING:
            raise EventBusClosed("the event dispatcher is stopping; start it once stop() returned")
        loop = asyncio.get_running_loop()
        if self._state is _STOPPED:
            self._put = self._accepting_puts()
            self._room.clear()
        for channel in self._channels:
            for lane in channel.lanes:
                lane.draining = lane.aborted = False
                lane.task = loop.create_task(lane.run(), name=f"qts-data events {lane.name}")
                lane.task.add_done_callback(_report_crash)
        self._state = _RUNNING

    async def stop(self, drain_timeout: float | None = None) -> int:
        """Stop accepting events, deliver what is queued (whatever the level) for up to
        ``drain_timeout`` s (default: the settings'), then end the lanes.

        Returns the number of (event, sink) deliveries abandoned, also counted
        per queue as ``abandoned``. Idempotent.
        """
        if self._state is _STOPPED or self._state is _STOPPING:
            return 0
        timeout = self.settings.drain_timeout_s if drain_timeout is None else drain_timeout
        self._state = _STOPPING
        if self._channels:
            self._put = [self._put_p0_closed, self._reject, self._reject, self._reject]
        tasks = []
        for channel in self._channels:
            for lane in channel.lanes:
                lane.draining = True
                lane.wakeup.wake()
                if lane.task is not None:
                    tasks.append(lane.task)
        try:
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=timeout)
                for channel in self._channels:
                    for lane in channel.lanes:
                        lane.aborted = True
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
        finally:
            abandoned = sum(q.abandon() for c in self._channels for q in c.queues)
            self._state = _STOPPED
            self._room.set()  # P0 publishers still waiting get EventBusClosed
        if abandoned:
            log.warning("event dispatcher stopped with %d deliveries abandoned", abandoned)
        return abandoned

    async def __aenter__(self) -> EventDispatcher:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- observation -----------------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """(event, sink) deliveries not settled yet: queued or in flight."""
        return sum(len(q) + q.in_flight for c in self._channels for q in c.queues)

    @property
    def published(self) -> int:
        """Events accepted, all priorities (each reaches every sink's queue)."""
        if not self._channels:
            return 0
        return sum(q.published for q in self._channels[0].queues)

    def queue(self, sink: int | str, priority: Priority) -> EventQueue:
        """The queue of ``priority`` of one sink (by index or name), for inspection."""
        if isinstance(sink, int):
            return self._channels[sink].queues[priority]
        for channel in self._channels:
            if channel.name == sink:
                return channel.queues[priority]
        raise KeyError(f"no event sink named {sink!r}; sinks: {[c.name for c in self._channels]}")

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until nothing is pending, for up to ``timeout`` s (default: ``drain_timeout_s``).

        True when everything was settled (delivered or given up); False on timeout.
        The dispatcher keeps running (``stop`` ends it). Paused priorities stay
        pending: at a degraded level this may time out.
        """
        limit = self.settings.drain_timeout_s if timeout is None else timeout
        deadline = time.monotonic() + limit
        while self.pending:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.001)
        return True

    def summary(self) -> dict[str, Any]:
        """Counters for the health output.

        ``queues`` sums each priority's counters over the sinks (``published``
        is counted once: every sink receives every event); ``sinks`` has each
        sink's delivery counters and its own queues.
        """
        queues: dict[str, dict[str, Any]] = {}
        for priority in Priority:
            mine = [c.queues[priority].counters() for c in self._channels]
            total: dict[str, Any] = {
                "policy": mine[0]["policy"] if mine else None,
                "capacity": self.settings.capacity(priority),
                "published": mine[0]["published"] if mine else 0,
            }
            for field in (
                "depth", "in_flight", "delivered", "dropped", "collapsed", "sampled",
                "given_up", "abandoned",
            ):  # fmt: skip
                total[field] = sum(m[field] for m in mine)
            queues[priority.name] = total
        return {
            "state": self._state,
            "level": self.level.name,
            "safety": self._safety.value,
            "published": self.published,
            "rejected": self.rejected,
            "refused": self.refused,
            "p0_waits": self.p0_waits,
            "queues": queues,
            "sinks": {c.name: c.summary() for c in self._channels},
        }


def _discard(event: Event) -> None:
    return None


def _fan_out(puts: tuple[Callable[[Event], None], ...]) -> Callable[[Event], None]:
    def put(event: Event) -> None:
        for queue_put in puts:
            queue_put(event)

    return put


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("event delivery lane %s crashed", task.get_name(), exc_info=task.exception())
