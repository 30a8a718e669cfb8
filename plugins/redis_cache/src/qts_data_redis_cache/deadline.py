"""A time limit on a command that a busy event loop cannot trip by itself.

``asyncio.timeout`` cancels its task when the loop runs the timer, and a loop
that was busy for longer than the limit (a burst of thousands of callers, a
slow callback, a host short of CPU) runs the timer in the same iteration that
first sees the reply on the socket: the reply is there, unread, and the
command fails as if the server had not answered. A healthy server, a failed
call - on a busy host that is most timeouts of a short limit.

:class:`Deadline` gives the loop a few more iterations when its timer fires,
so a reply that already arrived is read and the command completes; and a timer
that runs late (the loop was busy for a quarter of the limit or more) starts
the limit again, since that time was the loop's. A server that really has not
answered still fails the command within the limit plus those iterations
(microseconds on an idle loop, whose timers run on time). The same rules as
the slot gate's (:mod:`~qts_data_redis_cache.gate`).
"""

from __future__ import annotations

import asyncio
import sys
from types import TracebackType

__all__ = ["Deadline", "fired_late"]

#: Loop iterations granted after the timer fires: the reply's read callback runs in the
#: iteration that sees it; the task that reads it, in the next.
_GRACE_ITERATIONS = 2
#: A timer that runs this fraction of its delay after it was due says the loop was busy
#: (on an idle loop a timer runs within a millisecond): the time is the loop's, not the
#: server's, and the limit starts again - at most this many times.
LATE_FRACTION = 0.25
MAX_RESTARTS = 8


def fired_late(now: float, due: float, delay: float) -> bool:
    """Whether a timer of ``delay`` seconds due at ``due`` ran late enough at ``now`` to
    say that the event loop, not the awaited server, used the time."""
    return now - due > delay * LATE_FRACTION


class Deadline:
    """``async with Deadline(seconds):`` - ``TimeoutError`` when the block outlasts it."""

    __slots__ = (
        "_cancelling",
        "_delay",
        "_due",
        "_fired",
        "_grace",
        "_handle",
        "_loop",
        "_restarts",
        "_task",
    )

    def __init__(self, delay: float) -> None:
        self._delay = delay

    async def __aenter__(self) -> None:
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - always inside a task here
            raise RuntimeError("Deadline must be used inside a task")
        self._task = task
        self._loop = loop = task.get_loop()
        if sys.version_info >= (3, 11):
            self._cancelling = task.cancelling()
        else:
            self._cancelling = 0
        self._grace = _GRACE_ITERATIONS
        self._fired = False
        self._restarts = 0
        self._due = loop.time() + self._delay
        self._handle: asyncio.Handle = loop.call_at(self._due, self._expire)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._handle.cancel()
        if self._fired and exc_type is asyncio.CancelledError:
            if sys.version_info >= (3, 11) and self._task.uncancel() > self._cancelling:
                return  # someone else cancelled the task too: theirs wins
            raise TimeoutError from exc

    def _expire(self) -> None:
        loop = self._loop
        if self._grace == _GRACE_ITERATIONS and self._restarts < MAX_RESTARTS:
            now = loop.time()
            if fired_late(now, self._due, self._delay):
                self._restarts += 1
                self._due = now + self._delay
                self._handle = loop.call_at(self._due, self._expire)
                return
        if self._grace:
            self._grace -= 1
            self._handle = self._loop.call_soon(self._expire)
            return
        self._fired = True
        self._task.cancel()
