"""A time limit on a command that a busy event loop cannot trip by itself.

``asyncio.timeout`` cancels its task when the loop runs the timer, and a loop
that was busy for longer than the limit (a burst of thousands of callers, a
slow callback, a host short of CPU) runs the timer in the same iteration that
first sees the reply on the socket: the reply is there, unread, and the
command fails as if the server had not answered. A healthy server, a failed
call - on a busy host that is most timeouts of a short limit.

:class:`Deadline` gives the loop a few more iterations when its timer fires,
so a reply that already arrived is read and the command completes; a server
that really has not answered still fails the command within the limit plus
those iterations (microseconds on an idle loop). The same rule as the slot
gate's (:mod:`~qts_data_redis_cache.gate`).
"""

from __future__ import annotations

import asyncio
import sys
from types import TracebackType

__all__ = ["Deadline"]

#: Loop iterations granted after the timer fires: the reply's read callback runs in the
#: iteration that sees it; the task that reads it, in the next.
_GRACE_ITERATIONS = 2


class Deadline:
    """``async with Deadline(seconds):`` - ``TimeoutError`` when the block outlasts it."""

    __slots__ = ("_cancelling", "_delay", "_fired", "_grace", "_handle", "_loop", "_task")

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
        self._handle: asyncio.Handle = loop.call_later(self._delay, self._expire)

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
        if self._grace:
            self._grace -= 1
            self._handle = self._loop.call_soon(self._expire)
            return
        self._fired = True
        self._task.cancel()
