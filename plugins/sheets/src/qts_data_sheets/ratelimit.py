"""The Sheets API quota on the client side: at most N requests in any window of W seconds.

Google counts requests per minute per user (60 by default, seeds/002 §4.3 runs on
it); going over earns a 429. :class:`SlidingWindowLimiter` keeps the start times
of the last N requests and lets a request go only when the N-th latest one is a
full window old, so every window of W seconds holds at most N starts, whatever
the burst. It is one instance per credentials (:func:`shared_limiter`), since
the quota is per user, not per adapter.

Reservations are made under a thread lock and waited for with ``asyncio.sleep``,
so one limiter serves any number of event loops (tests open a loop per test)
and never blocks a loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["SlidingWindowLimiter", "shared_limiter"]


class SlidingWindowLimiter:
    """At most ``limit`` acquisitions in any ``window_s`` seconds (a sliding-window log)."""

    def __init__(
        self, limit: int, window_s: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._starts: deque[float] = deque(maxlen=limit)  # the last `limit` reserved start times
        self._lock = threading.Lock()
        self.acquired = 0
        self.waited_s = 0.0

    def reserve(self) -> float:
        """Reserve the earliest allowed start time (on the limiter's clock) and return it."""
        with self._lock:
            now = self._clock()
            start = now
            if self._starts:
                start = max(start, self._starts[-1])  # keep the log ordered
                if len(self._starts) == self.limit:
                    start = max(start, self._starts[0] + self.window_s)
            self._starts.append(start)
            self.acquired += 1
            self.waited_s += start - now
            return start

    async def acquire(self) -> float:
        """Wait for a slot; returns how long it waited (seconds)."""
        start = self.reserve()
        delay = start - self._clock()
        if delay > 0:
            await asyncio.sleep(delay)
            return delay
        return 0.0

    def in_window(self) -> int:
        """How many reserved starts fall in the current window (for health reports)."""
        with self._lock:
            now = self._clock()
            return sum(1 for t in self._starts if now - self.window_s < t <= now)


_shared: dict[tuple[str, int, float], SlidingWindowLimiter] = {}
_shared_lock = threading.Lock()


def shared_limiter(identity: str, limit: int, window_s: float) -> SlidingWindowLimiter:
    """The limiter of one user of the API (``identity``: the service account's e-mail, or
    the stand-in's address), shared by every adapter that uses those credentials."""
    key = (identity, limit, window_s)
    with _shared_lock:
        limiter = _shared.get(key)
        if limiter is None:
            limiter = _shared[key] = SlidingWindowLimiter(limit, window_s)
        return limiter
