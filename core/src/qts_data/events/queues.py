"""The four priority queues and their overflow policies (seeds/003, Phase 1-A).

============  ==========  =====================================================
priority      capacity    when full
============  ==========  =====================================================
P0 critical   100         BLOCK: never dropped; ``put`` refuses (the dispatcher
                          makes the publisher wait for room instead)
P1 high       10,000      DROP_OLDEST: a ring buffer, the newest are kept
P2 normal     1,000       COLLAPSE: an event replaces the pending one with the
                          same ``key`` (in its place); an event without a key
                          is never collapsed; when full, the oldest is dropped
P3 low        50,000      SAMPLE: from the high-water mark on, one incoming
                          event in N is kept; when full, a kept one replaces the
                          oldest
============  ==========  =====================================================

Each queue counts what happened to every event put into it. The invariant,
at any moment::

    published == delivered + dropped + collapsed + sampled + given_up
                 + abandoned + depth + in_flight

``put`` is synchronous and O(1): it is the hot path of every publisher.
"""

from __future__ import annotations

import asyncio
import sys
from collections import OrderedDict, deque
from collections.abc import Callable
from enum import Enum
from typing import Any, ClassVar

from qts_data.contracts import Event, Priority
from qts_data.events.errors import EventQueueFull

__all__ = [
    "BlockingQueue",
    "CollapsingQueue",
    "EventQueue",
    "OverflowPolicy",
    "RingQueue",
    "SamplingQueue",
    "Wakeup",
    "make_queue",
]


class OverflowPolicy(str, Enum):
    """What a full queue does with one more event."""

    BLOCK = "BLOCK"
    DROP_OLDEST = "DROP_OLDEST"
    COLLAPSE = "COLLAPSE"
    SAMPLE = "SAMPLE"


class Wakeup:
    """What a queue pokes when an event arrives; an idle delivery lane waits on it.

    Poking costs one attribute test while the lane is busy (no waiter).
    """

    __slots__ = ("waiter",)

    def __init__(self) -> None:
        self.waiter: asyncio.Future[None] | None = None

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> None:
        waiter = self.waiter
        if waiter is None:
            waiter = self.waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            if self.waiter is waiter:
                self.waiter = None


def _no_pressure_hook(queue: EventQueue) -> None:
    return None


class EventQueue:
    """Base of the four queues: the counters, batch taking and settling."""

    policy: ClassVar[OverflowPolicy]

    __slots__ = (
        "abandoned",
        "capacity",
        "collapsed",
        "delivered",
        "dropped",
        "given_up",
        "in_flight",
        "on_pressure",
        "pressure_at",
        "priority",
        "published",
        "sampled",
        "wakeup",
    )

    def __init__(self, priority: Priority, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(
                f"{Priority(priority).name} queue capacity must be at least 1, got {capacity}"
            )
        self.priority = Priority(priority)
        self.capacity = capacity
        self.published = 0
        self.delivered = 0
        self.dropped = 0
        self.collapsed = 0
        self.sampled = 0
        self.given_up = 0
        self.abandoned = 0
        self.in_flight = 0
        #: Poked on every accepted event (the delivery lane of this queue waits on it).
        self.wakeup = Wakeup()
        #: From this depth on, ``on_pressure(self)`` is called after each put (degradation).
        self.pressure_at = sys.maxsize
        self.on_pressure: Callable[[EventQueue], None] = _no_pressure_hook

    def __len__(self) -> int:
        raise NotImplementedError

    @property
    def depth(self) -> int:
        """Events waiting in the queue (not those being delivered)."""
        return len(self)

    def put(self, event: Event) -> None:
        """Accept ``event`` under the queue's overflow policy; never awaits."""
        raise NotImplementedError

    def take(self, limit: int) -> list[Event]:
        """Remove up to ``limit`` events, oldest first; they count as in flight until settled."""
        raise NotImplementedError

    def settle(self, count: int, *, delivered: bool) -> None:
        """``count`` in-flight events were delivered, or given up after retries."""
        self.in_flight -= count
        if delivered:
            self.delivered += count
        else:
            self.given_up += count

    def abandon(self) -> int:
        """Count everything pending (queued and in flight) as abandoned and empty the queue."""
        count = len(self) + self.in_flight
        self._clear()
        self.in_flight = 0
        self.abandoned += count
        return count

    def _clear(self) -> None:
        raise NotImplementedError

    def counters(self) -> dict[str, Any]:
        return {
            "policy": self.policy.value,
            "capacity": self.capacity,
            "depth": len(self),
            "in_flight": self.in_flight,
            "published": self.published,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "collapsed": self.collapsed,
            "sampled": self.sampled,
            "given_up": self.given_up,
            "abandoned": self.abandoned,
        }


class _DequeQueue(EventQueue):
    __slots__ = ("_items",)

    def __init__(self, priority: Priority, capacity: int, maxlen: int | None) -> None:
        super().__init__(priority, capacity)
        self._items: deque[Event] = deque(maxlen=maxlen)

    def __len__(self) -> int:
        return len(self._items)

    def take(self, limit: int) -> list[Event]:
        items = self._items
        if len(items) <= limit:
            batch = list(items)
            items.clear()
        else:
            popleft = items.popleft
            batch = [popleft() for _ in range(limit)]
        self.in_flight += len(batch)
        return batch

    def _clear(self) -> None:
        self._items.clear()

    def peek(self) -> list[Event]:
        """The queued events, oldest first (a copy; for tests and inspection)."""
        return list(self._items)


class BlockingQueue(_DequeQueue):
    """P0: bounded, never drops. ``put`` on a full queue raises :class:`EventQueueFull`."""

    policy = OverflowPolicy.BLOCK
    __slots__ = ()

    def __init__(self, priority: Priority = Priority.P0, capacity: int = 100) -> None:
        super().__init__(priority, capacity, None)

    @property
    def has_room(self) -> bool:
        return len(self._items) < self.capacity

    def put(self, event: Event) -> None:
        items = self._items
        if len(items) >= self.capacity:
            raise EventQueueFull(
                f"the {self.priority.name} queue is full ({self.capacity} events); "
                f"{self.priority.name} events are never dropped: await publish(event) to wait for room"
            )
        items.append(event)
        self.published += 1
        if len(items) >= self.pressure_at:
            self.on_pressure(self)
        if self.wakeup.waiter is not None:
            self.wakeup.wake()


class RingQueue(_DequeQueue):
    """P1: a ring buffer; when full, the oldest event is dropped (and counted)."""

    policy = OverflowPolicy.DROP_OLDEST
    __slots__ = ()

    def __init__(self, priority: Priority = Priority.P1, capacity: int = 10_000) -> None:
        super().__init__(priority, capacity, capacity)

    def put(self, event: Event) -> None:
        items = self._items
        self.published += 1
        if len(items) == self.capacity:
            self.dropped += 1  # the deque's maxlen evicts the oldest
        items.append(event)
        if len(items) >= self.pressure_at:
            self.on_pressure(self)
        if self.wakeup.waiter is not None:
            self.wakeup.wake()


class SamplingQueue(_DequeQueue):
    """P3: bounded; from ``sample_from`` events on, only one incoming event in ``keep_one_in`` is kept.

    The others are counted as ``sampled``. When the queue is full, a kept event
    replaces the oldest one, counted as ``dropped``: memory stays bounded.
    """

    policy = OverflowPolicy.SAMPLE
    __slots__ = ("_tick", "keep_one_in", "sample_from")

    def __init__(
        self,
        priority: Priority = Priority.P3,
        capacity: int = 50_000,
        sample_from: int | None = None,
        keep_one_in: int = 10,
    ) -> None:
        super().__init__(priority, capacity, capacity)
        if keep_one_in < 1:
            raise ValueError(f"keep_one_in must be at least 1, got {keep_one_in}")
        self.sample_from = capacity * 8 // 10 if sample_from is None else min(sample_from, capacity)
        self.keep_one_in = keep_one_in
        self._tick = 0

    def put(self, event: Event) -> None:
        self.published += 1
        items = self._items
        depth = len(items)
        if depth >= self.sample_from:
            self._tick += 1
            if self._tick < self.keep_one_in:
                self.sampled += 1
                return
            self._tick = 0
            if depth == self.capacity:
                self.dropped += 1  # the deque's maxlen evicts the oldest
        items.append(event)
        if self.wakeup.waiter is not None:
            self.wakeup.wake()


class CollapsingQueue(EventQueue):
    """P2: FIFO by first arrival; an event replaces the pending one with the same ``key``.

    The replaced (older) event counts as ``collapsed``; the newer one takes its
    place in the order, so a key updated often is still delivered in bounded
    time. Events without a key are never collapsed. When the queue is full, the
    oldest pending event is dropped (and counted).
    """

    policy = OverflowPolicy.COLLAPSE
    __slots__ = ("_anonymous", "_items")

    def __init__(self, priority: Priority = Priority.P2, capacity: int = 1_000) -> None:
        super().__init__(priority, capacity)
        # str keys for keyed events, int keys (never equal to a str) for the others
        self._items: OrderedDict[str | int, Event] = OrderedDict()
        self._anonymous = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, event: Event) -> None:
        self.published += 1
        items = self._items
        key: str | int | None = event.key
        if key is None:
            self._anonymous += 1
            key = self._anonymous
        elif key in items:
            items[key] = event  # keeps the place of the replaced event
            self.collapsed += 1
            return
        if len(items) >= self.capacity:
            items.popitem(last=False)
            self.dropped += 1
        items[key] = event
        if len(items) >= self.pressure_at:
            self.on_pressure(self)
        if self.wakeup.waiter is not None:
            self.wakeup.wake()

    def take(self, limit: int) -> list[Event]:
        items = self._items
        popitem = items.popitem
        batch = [popitem(last=False)[1] for _ in range(min(limit, len(items)))]
        self.in_flight += len(batch)
        return batch

    def _clear(self) -> None:
        self._items.clear()

    def peek(self) -> list[Event]:
        """The queued events in delivery order (a copy; for tests and inspection)."""
        return list(self._items.values())


def make_queue(
    priority: Priority, capacity: int, *, sample_from: float = 0.8, keep_one_in: int = 10
) -> EventQueue:
    """The queue seeds/003 assigns to ``priority``, of ``capacity`` events."""
    priority = Priority(priority)
    if priority is Priority.P0:
        return BlockingQueue(priority, capacity)
    if priority is Priority.P1:
        return RingQueue(priority, capacity)
    if priority is Priority.P2:
        return CollapsingQueue(priority, capacity)
    return SamplingQueue(priority, capacity, max(1, int(capacity * sample_from)), keep_one_in)
