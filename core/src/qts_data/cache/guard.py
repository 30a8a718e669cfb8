"""One remote cache call: the caller waits its budget, the breaker judges what really happened.

A time budget says how long a caller waits, not what is broken. So the call
runs in a task of its own: the caller gets its result within the budget, or
gives up on it (and falls back to the source) when the budget runs out, while
the call goes on. The breaker records the call's real outcome when it ends:
a failure when it raised (refused, reset, or the client's own socket timeout),
a slow call when it took longer than ``slow_call_duration_s``; a call still
running at that moment is recorded as slow then, so a frozen server opens the
breaker within ``slow_call_duration_s`` of traffic.

Time the event loop itself could not run (a host too busy to schedule this
process, a long synchronous step) is not the server's slowness: a
:class:`LoopStallProbe` notices such stalls, and a call that overlapped one is
not counted as slow (its failure, if it failed, still counts).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from qts_data.cache.breaker import CircuitBreaker

__all__ = ["GIVEN_UP", "LoopStallProbe", "guarded"]

#: What :func:`guarded` returns when the caller did not get a result (failed, over budget).
GIVEN_UP: Any = object()


class LoopStallProbe:
    """A timer every ``interval_s`` that remembers when the loop last ran it late."""

    def __init__(self, interval_s: float = 0.005, tolerance_s: float = 0.01) -> None:
        self.interval_s = interval_s
        self.tolerance_s = tolerance_s
        #: Loop time at which the last stall ended (0: none seen).
        self.last_stall_end = 0.0
        self.stalls = 0
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def start(self) -> None:
        if self._handle is None:
            loop = asyncio.get_running_loop()
            self._due = loop.time() + self.interval_s
            self._handle = loop.call_at(self._due, self._tick, loop)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def stalled_since(self, started: float) -> bool:
        """Whether the loop stalled after loop time ``started``."""
        return self.last_stall_end > started

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        if now - self._due > self.tolerance_s:
            self.last_stall_end = now
            self.stalls += 1
        self._due = now + self.interval_s
        self._handle = loop.call_at(self._due, self._tick, loop)


class _Call:
    """The bookkeeping of one call that outlived its budget."""

    __slots__ = ("breaker", "on_late", "probe", "recorded", "started")

    def __init__(
        self,
        breaker: CircuitBreaker,
        probe: LoopStallProbe | None,
        started: float,
        on_late: Callable[[BaseException | None], None] | None,
    ) -> None:
        self.breaker = breaker
        self.probe = probe
        self.started = started
        self.on_late = on_late
        self.recorded = False

    def stalled(self) -> bool:
        return self.probe is not None and self.probe.stalled_since(self.started)

    def still_running(self, task: asyncio.Task[Any]) -> None:
        """At ``slow_call_duration_s``: a call still running is slow (unless the loop stalled)."""
        if task.done() or self.recorded or self.stalled():
            return
        self.recorded = True
        self.breaker.on_success(self.breaker.settings.slow_call_duration_s * 1.000001)

    def ended(self, task: asyncio.Task[Any]) -> None:
        error = asyncio.CancelledError() if task.cancelled() else task.exception()
        if not self.recorded:
            elapsed = task.get_loop().time() - self.started
            if self.stalled():
                elapsed = 0.0  # not the server's slowness
            if error is None:
                self.breaker.on_success(elapsed)
            elif not isinstance(error, asyncio.CancelledError):
                self.breaker.on_failure(elapsed)
        if self.on_late is not None:
            self.on_late(error)


async def guarded(
    breaker: CircuitBreaker,
    budget_s: float,
    op: Coroutine[Any, Any, Any],
    probe: LoopStallProbe | None = None,
    on_late: Callable[[BaseException | None], None] | None = None,
) -> tuple[Any, BaseException | None]:
    """``(result, None)``, or ``(GIVEN_UP, error)`` where ``error`` is the call's exception,
    or None when the budget ran out first (the call goes on; ``on_late(error or None)`` is
    called when it ends). The caller must have been permitted by ``breaker.try_acquire()``.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    task = loop.create_task(op)
    waiter = loop.create_future()

    def wake(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    task.add_done_callback(wake)
    timer = loop.call_at(started + budget_s, wake)
    try:
        await waiter
    except asyncio.CancelledError:  # the caller was cancelled: so is its call
        timer.cancel()
        task.remove_done_callback(wake)
        task.cancel()
        breaker.release()
        if on_late is not None:
            task.add_done_callback(lambda _: on_late(asyncio.CancelledError()))
        raise
    timer.cancel()
    if task.done():
        elapsed = loop.time() - started
        if probe is not None and probe.stalled_since(started):
            elapsed = 0.0
        if task.cancelled():
            breaker.release()
            return GIVEN_UP, asyncio.CancelledError()
        error = task.exception()
        if error is None:
            breaker.on_success(elapsed)
            return task.result(), None
        breaker.on_failure(elapsed)
        return GIVEN_UP, error
    call = _Call(breaker, probe, started, on_late)
    task.add_done_callback(call.ended)
    slow_at = started + breaker.settings.slow_call_duration_s
    if slow_at > loop.time():
        loop.call_at(slow_at, call.still_running, task)
    else:
        call.still_running(task)
    return GIVEN_UP, None
