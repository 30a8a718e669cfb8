"""One guarded cache call on a real event loop: budgets, real outcomes, silence, loop stalls."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from qts_data.cache.breaker import BreakerSettings, BreakerState, CircuitBreaker
from qts_data.cache.guard import GIVEN_UP, SILENT_CALLS, LoopStallProbe, guarded
from qts_data.errors import BackendError, Failure


async def answer(after_s: float, value: Any = "ok") -> Any:
    await asyncio.sleep(after_s)
    return value


async def never() -> None:
    await asyncio.Event().wait()


async def refused() -> None:
    raise BackendError("cache: connection refused", failure=Failure.UNREACHABLE)


async def test_the_caller_waits_its_budget_and_the_breaker_records_the_real_outcome() -> None:
    breaker = CircuitBreaker("t", BreakerSettings())
    ended: list[BaseException | None] = []
    assert breaker.try_acquire()
    began = time.monotonic()
    result, error = await guarded(breaker, 0.005, answer(0.03), on_late=ended.append)
    assert (result, error) == (GIVEN_UP, None)
    assert time.monotonic() - began < 0.025  # the budget, not the call
    await asyncio.sleep(0.06)
    assert ended == [None]  # the call went on and landed
    assert breaker.summary()["calls_in_window"] == 1  # and was recorded once, not slow
    assert breaker.slow_call_rate is None  # under minimum_calls: no rate yet


async def test_a_silent_server_opens_the_breaker_after_five_unanswered_calls() -> None:
    breaker = CircuitBreaker("t", BreakerSettings())
    began = time.monotonic()
    for _ in range(SILENT_CALLS):
        assert breaker.try_acquire()
        await guarded(breaker, 0.005, never())
    while breaker.state is BreakerState.CLOSED:
        assert time.monotonic() - began < 2
        await asyncio.sleep(0.005)
    assert breaker.state is BreakerState.OPEN
    # slow_call_duration_s after the first call, not a window of 50 slow calls
    assert time.monotonic() - began < 0.08 + 0.1


async def test_five_refused_calls_in_a_row_open_the_breaker() -> None:
    breaker = CircuitBreaker("t", BreakerSettings())
    for n in range(SILENT_CALLS):
        assert breaker.state is BreakerState.CLOSED, n
        assert breaker.try_acquire()
        result, error = await guarded(breaker, 0.005, refused())
        assert result is GIVEN_UP and isinstance(error, BackendError)
    assert breaker.state is BreakerState.OPEN


async def test_a_slow_server_that_keeps_answering_keeps_the_breaker_closed() -> None:
    """Latencies up to 150 ms, a third of them past the slow-call duration (80 ms)."""
    breaker = CircuitBreaker("t", BreakerSettings())
    latencies = itertools.cycle([0.002, 0.03, 0.12, 0.06, 0.005, 0.15])
    stop = time.monotonic() + 1.5
    given_up = 0

    async def worker() -> None:
        nonlocal given_up
        while time.monotonic() < stop:
            assert breaker.try_acquire(), breaker.summary()
            result, _ = await guarded(breaker, 0.005, answer(next(latencies)))
            given_up += result is GIVEN_UP
            await asyncio.sleep(0.01)

    await asyncio.gather(*(worker() for _ in range(20)))
    assert breaker.state is BreakerState.CLOSED
    assert given_up > 0


async def test_a_timeout_that_overlapped_a_loop_stall_is_not_counted() -> None:
    probe = LoopStallProbe()
    probe.start()
    breaker = CircuitBreaker("t", BreakerSettings())

    async def times_out() -> None:
        await asyncio.sleep(0.02)
        raise BackendError("cache: no reply", failure=Failure.TIMEOUT)

    try:
        for _ in range(SILENT_CALLS + 2):
            assert breaker.try_acquire()
            call = asyncio.ensure_future(guarded(breaker, 0.05, times_out(), probe))
            await asyncio.sleep(0.001)
            time.sleep(0.03)  # noqa: ASYNC251 - the loop stalls, as on a host too busy to run it
            await call
        assert probe.stalls >= SILENT_CALLS
        assert breaker.state is BreakerState.CLOSED
        assert breaker.summary()["calls_in_window"] == 0
        # Without a stall, the same timeouts count.
        for _ in range(SILENT_CALLS):
            assert breaker.try_acquire()
            await guarded(breaker, 0.05, times_out(), probe)
        assert breaker.state is BreakerState.OPEN
    finally:
        probe.stop()
