"""A bound on the commands in flight: at most ``limit`` at once; a waiter fails when the pool is stuck.

This is the checkout side of the connection pool (one slot = one connection in
use). The fast path is two attribute reads and a decrement, done inline by the
callers::

    if gate.free and not gate.waiters:
        gate.free -= 1
    else:
        await gate.wait()
    try:
        reply = ...
        gate.served += 1          # a command completed
    finally:
        gate.leave()

Waiters queue FIFO. A waiter fails with :class:`GateTimeout` when no command
has completed for ``timeout_s`` while it waited: the pool is stuck (Redis hangs,
or every connection is held). A queue that moves is waited out, so a burst of
callers larger than the pool is served rather than shed - bounding each call's
total time is the caller's budget (the cache manager's), and a hanging server
is still detected within ``timeout_s`` by every waiter.

Invariant: ``free > 0`` only while no live waiter is queued (``leave`` hands a
slot to the first live waiter before it counts one as free), so a caller that
finds a free slot never overtakes a waiter.
"""

from __future__ import annotations

import asyncio
from collections import deque

from qts_data_redis_cache.deadline import MAX_RESTARTS, fired_late

__all__ = ["GateClosed", "GateTimeout", "SlotGate"]


class GateTimeout(Exception):
    """No command completed for the timeout while the caller waited for a slot."""


class GateClosed(Exception):
    """The gate was closed (the client is closed)."""


#: Loop iterations a waiter's timer lets pass before it concludes that nothing completes:
#: replies that arrived while the loop was busy finish their commands in these.
_GRACE_ITERATIONS = 2


class _Waiter:
    __slots__ = ("due", "future", "grace", "restarts", "seen", "timer")

    def __init__(self, future: asyncio.Future[None], seen: int, due: float) -> None:
        self.future = future
        self.seen = seen
        self.due = due
        self.grace = _GRACE_ITERATIONS
        self.restarts = 0
        self.timer: asyncio.TimerHandle | None = None

    def arm(self, gate: SlotGate, loop: asyncio.AbstractEventLoop, now: float) -> None:
        self.due = now + gate.timeout_s
        self.grace = _GRACE_ITERATIONS
        self.timer = loop.call_at(self.due, _check, gate, self)


def _check(gate: SlotGate, waiter: _Waiter) -> None:
    """The waiter's timer: re-arm when a command completed since it was armed, else fail.

    A timer can fire right after the loop was busy (a burst of callers makes the
    loop run thousands of steps before it polls the sockets again): a timer that
    ran late starts the wait again (that time was the loop's), and before failing
    it lets the loop poll and run the tasks it woke a few times.
    """
    future = waiter.future
    if future.done():
        return
    loop = future.get_loop()
    if gate.served != waiter.seen:
        waiter.seen = gate.served
        waiter.arm(gate, loop, loop.time())
        return
    if waiter.grace == _GRACE_ITERATIONS and waiter.restarts < MAX_RESTARTS:
        now = loop.time()
        if fired_late(now, waiter.due, gate.timeout_s):
            waiter.restarts += 1
            waiter.arm(gate, loop, now)
            return
    if waiter.grace:
        waiter.grace -= 1
        loop.call_soon(_check, gate, waiter)
    else:
        future.set_exception(GateTimeout())


class SlotGate:
    """``limit`` slots; :meth:`wait` queues FIFO while the pool makes progress."""

    __slots__ = ("closed", "free", "limit", "served", "timeout_s", "waiters")

    def __init__(self, limit: int, timeout_s: float) -> None:
        if limit < 1:
            raise ValueError(f"a gate needs at least one slot, got {limit}")
        self.limit = limit
        self.free = limit
        self.timeout_s = timeout_s
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.closed = False
        #: Commands completed (counted by the callers); a waiter's timer watches it.
        self.served = 0

    @property
    def in_use(self) -> int:
        return self.limit - self.free

    def queued(self) -> int:
        """Callers waiting for a slot."""
        return sum(1 for waiter in self.waiters if not waiter.done())

    async def wait(self) -> None:
        """Take a slot; GateTimeout when nothing completes for ``timeout_s``; GateClosed."""
        if self.closed:
            raise GateClosed()
        # No scan of the whole queue for dead waiters (it made a burst of n callers
        # O(n^2)): leave() skips them, and while a slot is free the queue is empty. Those
        # at its head (waiters time out in the order they came) are dropped here.
        waiters = self.waiters
        while waiters and waiters[0].done():
            waiters.popleft()
        if self.free and not waiters:
            self.free -= 1
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        waiters.append(future)
        waiter = _Waiter(future, self.served, 0.0)
        waiter.arm(self, loop, loop.time())
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled() and future.exception() is None:
                self.leave()  # a slot was handed over as we were cancelled: pass it on
            raise
        finally:
            if waiter.timer is not None:
                waiter.timer.cancel()

    def leave(self) -> None:
        """Give a slot back: to the first live waiter, else to the free count."""
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        if not self.closed:
            self.free += 1

    def close(self) -> None:
        """Refuse new callers (GateClosed) and fail the queued ones."""
        self.closed = True
        self.free = 0  # sends every new caller to wait(), which raises GateClosed
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(GateClosed())
