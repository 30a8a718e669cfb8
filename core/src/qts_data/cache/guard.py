"""One remote cache call: the caller waits its budget, the breaker judges what really happened.

A time budget says how long a caller waits, not what is broken. So the call
runs in a task of its own: the caller gets its result within the budget, or
gives up on it (and falls back to the source) when the budget runs out, while
the call goes on. The breaker records the call's real outcome when it ends:
a failure when it raised (refused, reset, or the client's own socket timeout),
a slow call when it took longer than ``slow_call_duration_s``; a call still
running at that moment is recorded as slow then, so a frozen server opens the
breaker within ``slow_call_duration_s`` of traffic.

A server that stops answering altogether (dead, frozen, or a network that drops
everything) is told apart from a slow one by its silence: when
:data:`SILENT_CALLS` calls in a row ended without an answer, or waited
``slow_call_duration_s`` for one, with nothing answered since each began, the
breaker opens at once. A slow
but healthy server keeps answering some calls, so only the slow-call rate over
the window can open the breaker for it.

Time the event loop itself could not run (a host too busy to schedule this
process, a long synchronous step) is not the server's slowness: a
:class:`LoopStallProbe` measures such stalls, and a call's duration is counted
without the stalled time that overlapped it. A call that failed by a
client-side timer (no reply, or no free connection, in time) while the loop
stalled is not counted at all: that timer ran on the stalled loop. Other
failures (refused, reset) count whatever the loop did.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any
from weakref import WeakKeyDictionary

from qts_data.cache.breaker import CircuitBreaker
from qts_data.errors import Failure

__all__ = ["GIVEN_UP", "SILENT_CALLS", "LoopStallProbe", "guarded"]

#: What :func:`guarded` returns when the caller did not get a result (failed, over budget).
GIVEN_UP: Any = object()


class LoopStallProbe:
    """A timer every ``interval_s`` that adds up how late the loop ran it (its stalls)."""

    def __init__(self, interval_s: float = 0.005, tolerance_s: float = 0.01) -> None:
        self.interval_s = interval_s
        self.tolerance_s = tolerance_s
        #: Seconds the loop has stalled since start (lateness past ``tolerance_s``), ever growing.
        self.stalled_s = 0.0
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

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        late = now - self._due
        if late > self.tolerance_s:
            self.stalled_s += late
            self.stalls += 1
        self._due = now + self.interval_s
        self._handle = loop.call_at(self._due, self._tick, loop)


_TIMER_FAILURES = (Failure.TIMEOUT, Failure.BUSY)
_NO_ANSWER = (*_TIMER_FAILURES, Failure.DISCONNECTED, Failure.UNREACHABLE, Failure.CLOSED)
#: Calls that must each have waited ``slow_call_duration_s`` with no answer from the
#: server since they began, before its silence opens the breaker.
SILENT_CALLS = 5


class Silence:
    """When the server behind one breaker last answered, and the calls waiting since."""

    __slots__ = ("answered_at", "unanswered")

    def __init__(self) -> None:
        self.answered_at = float("-inf")  # loop time of the last answer
        self.unanswered = 0  # calls past the slow-call duration with no answer since

    def answered(self, now: float) -> None:
        self.answered_at = now
        self.unanswered = 0


_SILENCES: WeakKeyDictionary[CircuitBreaker, Silence] = WeakKeyDictionary()


def _silence(breaker: CircuitBreaker) -> Silence:
    """The silence of the server behind ``breaker`` (one per breaker)."""
    silence = _SILENCES.get(breaker)
    if silence is None:
        silence = _SILENCES[breaker] = Silence()
    return silence


def _answered(error: BaseException | None) -> bool:
    """Whether the call got an answer from the server (a result, or a refusal)."""
    if error is None:
        return True
    if isinstance(error, (TimeoutError, ConnectionError, asyncio.CancelledError)):
        return False
    failure = getattr(error, "failure", None)
    return failure is not None and failure not in _NO_ANSWER


def _timed_out(error: BaseException) -> bool:
    """Whether ``error`` came from a client-side timer rather than from the server."""
    return isinstance(error, TimeoutError) or getattr(error, "failure", None) in _TIMER_FAILURES


def _record(
    breaker: CircuitBreaker,
    error: BaseException | None,
    started: float,
    now: float,
    stalled: float,
) -> None:
    """Record a call that ran from ``started`` to ``now`` (loop time), ``stalled`` seconds of
    which the loop stalled."""
    elapsed = max(now - started - stalled, 0.0)
    silence = _silence(breaker)
    if _answered(error):
        silence.answered(now)
    elif stalled and error is not None and _timed_out(error):
        breaker.release()  # the timer ran on a stalled loop: says nothing of the server
        return
    elif silence.answered_at < started and _unanswered(breaker, silence, elapsed):
        return
    if error is None:
        breaker.on_success(elapsed)
    else:
        breaker.on_failure(elapsed)


def _unanswered(breaker: CircuitBreaker, silence: Silence, waited_s: float) -> bool:
    """One more call the server left without an answer since it began; True when that
    makes :data:`SILENT_CALLS` and opened the breaker (a breaker not closed records the
    call as usual: half-open probes are judged by their outcomes)."""
    silence.unanswered += 1
    if silence.unanswered < SILENT_CALLS:
        return False
    return breaker.trip(
        f"no answer to {silence.unanswered} calls in a row (the last after {waited_s * 1000:.0f} ms)"
    )


class _Call:
    """The bookkeeping of one call that outlived its budget."""

    __slots__ = ("breaker", "on_late", "probe", "recorded", "stall_mark", "started")

    def __init__(
        self,
        breaker: CircuitBreaker,
        probe: LoopStallProbe | None,
        started: float,
        stall_mark: float,
        on_late: Callable[[BaseException | None], None] | None,
    ) -> None:
        self.breaker = breaker
        self.probe = probe
        self.started = started
        self.stall_mark = stall_mark
        self.on_late = on_late
        self.recorded = False

    def stalled(self) -> float:
        return 0.0 if self.probe is None else self.probe.stalled_s - self.stall_mark

    def still_running(self, task: asyncio.Task[Any]) -> None:
        """At ``slow_call_duration_s`` (plus the loop's stalls meanwhile): a call still
        running is slow."""
        if task.done() or self.recorded:
            return
        loop = task.get_loop()
        slow_at = self.started + self.breaker.settings.slow_call_duration_s + self.stalled()
        if slow_at > loop.time():  # the loop stalled: the server gets that time back
            loop.call_at(slow_at, self.still_running, task)
            return
        self.recorded = True
        breaker = self.breaker
        slow = breaker.settings.slow_call_duration_s
        silence = _silence(breaker)
        if silence.answered_at < self.started and _unanswered(breaker, silence, slow):
            return
        breaker.on_success(slow * 1.000001)

    def ended(self, task: asyncio.Task[Any]) -> None:
        error = asyncio.CancelledError() if task.cancelled() else task.exception()
        now = task.get_loop().time()
        if self.recorded:  # counted as slow already; an answer still ends a silence
            if _answered(error):
                _silence(self.breaker).answered(now)
        elif not isinstance(error, asyncio.CancelledError):
            _record(self.breaker, error, self.started, now, self.stalled())
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
    stall_mark = 0.0 if probe is None else probe.stalled_s
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
        if task.cancelled():
            breaker.release()
            return GIVEN_UP, asyncio.CancelledError()
        stalled = 0.0 if probe is None else probe.stalled_s - stall_mark
        error = task.exception()
        _record(breaker, error, started, loop.time(), stalled)
        if error is None:
            return task.result(), None
        return GIVEN_UP, error
    call = _Call(breaker, probe, started, stall_mark, on_late)
    task.add_done_callback(call.ended)
    call.still_running(task)
    return GIVEN_UP, None
