"""Retries with exponential backoff and jitter, and what is safe to retry.

Google asks API clients to retry 429 and 5xx answers with "truncated exponential
backoff": the n-th retry waits about ``base * 2**n`` seconds, at most ``max``,
with randomness so that many clients do not retry in step. Here the wait is
"equal jitter": uniformly in ``[cap/2, cap]`` with ``cap = min(max, base * 2**n)``,
so it is never shorter than half the cap (a burst of 429s really slows down) and
never longer than the cap. A ``Retry-After`` header, when given, is a floor.

What may be retried depends on what the failure says about the server:

=====================  ======================  ===============================
failure                the request ...         retried
=====================  ======================  ===============================
429                    was refused             always
connect error/timeout  never reached it        always
5xx, 408               may have been applied   reads and idempotent writes
read timeout, reset    may have been applied   reads and idempotent writes
other 4xx              was refused for good    never
=====================  ======================  ===============================

A non-idempotent write (an append) whose outcome is unknown raises
:class:`UncertainWriteError` at once: its caller looks at the sheet to learn
whether it landed before sending it again (see the adapter's idempotency).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from qts_data.errors import BackendError

__all__ = [
    "CallStats",
    "Failure",
    "FailureKind",
    "RetryPolicy",
    "UncertainWriteError",
    "call_with_retry",
]

T = TypeVar("T")
log = logging.getLogger("qts_data.sheets")


class UncertainWriteError(BackendError):
    """A write may or may not have been applied: its answer was lost (timeout, 5xx, reset)."""


class FailureKind(enum.Enum):
    THROTTLED = "throttled"  # 429: refused, retry later
    UNSENT = "unsent"  # connection never made: nothing reached the server
    SERVER = "server"  # 5xx / 408: may have been applied
    LOST = "lost"  # read timeout / connection reset after sending: may have been applied
    FATAL = "fatal"  # any other answer: retrying cannot help


@dataclass(frozen=True)
class Failure:
    """What a failed request means (see the table in the module docstring)."""

    kind: FailureKind
    message: str
    status: int | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """Truncated exponential backoff with equal jitter."""

    max_retries: int = 5
    base_s: float = 1.0
    max_s: float = 32.0

    def cap(self, retry: int) -> float:
        """The longest wait before retry number ``retry`` (0-based)."""
        return float(min(self.max_s, self.base_s * (2**retry)))

    def delay(self, retry: int, rng: Callable[[], float] = random.random) -> float:
        """A wait in ``[cap/2, cap]`` before retry number ``retry``."""
        cap = self.cap(retry)
        return cap / 2 + rng() * cap / 2


@dataclass
class CallStats:
    """Counters of an adapter's API calls (shown in its health details)."""

    requests: int = 0  # attempts sent (each retry counts)
    retries: int = 0
    throttled: int = 0  # 429 answers
    server_errors: int = 0  # 5xx / 408 answers
    timeouts: int = 0  # timeouts and lost connections
    uncertain_writes: int = 0  # appends whose outcome had to be looked up in the sheet
    reconciled_landed: int = 0  # ... and had in fact landed
    quota_wait_s: float = 0.0  # time spent waiting for the rate limiter
    backoffs: deque[float] = field(default_factory=lambda: deque(maxlen=100))  # recent waits (s)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "retries": self.retries,
            "throttled": self.throttled,
            "server_errors": self.server_errors,
            "timeouts": self.timeouts,
            "uncertain_writes": self.uncertain_writes,
            "reconciled_landed": self.reconciled_landed,
            "quota_wait_s": round(self.quota_wait_s, 3),
        }


async def call_with_retry(
    attempt: Callable[[], Awaitable[T]],
    classify: Callable[[BaseException], Failure | None],
    policy: RetryPolicy,
    *,
    idempotent: bool,
    what: str,
    stats: CallStats,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> T:
    """Run ``attempt`` until it succeeds, retrying what the policy allows.

    ``classify`` turns an exception into a :class:`Failure` (None: not an API
    failure, raised as is). Raises :class:`UncertainWriteError` for a
    non-idempotent attempt whose outcome is unknown, and
    :class:`~qts_data.errors.BackendError` when retrying cannot help or the
    retries are spent. ``what`` names the call in those errors.
    """
    retry = 0
    while True:
        try:
            return await attempt()
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                raise
            _count(stats, failure)
            if failure.kind is FailureKind.FATAL:
                raise BackendError(f"Google Sheets {what}: {failure.message}") from exc
            if not idempotent and failure.kind in (FailureKind.SERVER, FailureKind.LOST):
                raise UncertainWriteError(
                    f"Google Sheets {what}: outcome unknown ({failure.message})"
                ) from exc
            if retry >= policy.max_retries:
                raise BackendError(
                    f"Google Sheets {what}: gave up after {retry + 1} attempt(s): {failure.message}"
                ) from exc
            wait = policy.delay(retry)
            if failure.retry_after is not None:
                wait = max(wait, min(failure.retry_after, policy.max_s))
            stats.retries += 1
            stats.backoffs.append(wait)
            log.info(
                "Google Sheets %s: %s; retry %d/%d in %.3fs",
                what,
                failure.message,
                retry + 1,
                policy.max_retries,
                wait,
            )
            await sleep(wait)
            retry += 1


def _count(stats: CallStats, failure: Failure) -> None:
    if failure.kind is FailureKind.THROTTLED:
        stats.throttled += 1
    elif failure.kind is FailureKind.SERVER:
        stats.server_errors += 1
    elif failure.kind in (FailureKind.LOST, FailureKind.UNSENT):
        stats.timeouts += 1
