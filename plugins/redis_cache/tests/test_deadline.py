"""Deadline and the slot gate: a busy loop is not a silent server; silence still fails in time."""

from __future__ import annotations

import asyncio
import time

import pytest

from qts_data_redis_cache.deadline import Deadline
from qts_data_redis_cache.gate import GateTimeout, SlotGate

pytestmark = pytest.mark.asyncio


def reply_after_a_busy_loop(reply: asyncio.Future[str]) -> None:
    """Keep the loop busy past the limit, then deliver the reply: as a socket read does,
    the reply's callback runs in the same loop iteration as the overdue timer, before it,
    and the waiting task only in the next one."""
    loop = asyncio.get_running_loop()

    def busy() -> None:
        time.sleep(0.05)
        loop.call_soon(reply.set_result, "PONG")

    loop.call_soon(busy)


async def test_a_reply_that_arrived_while_the_loop_was_busy_completes_the_block() -> None:
    reply: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def command() -> str:
        async with Deadline(0.01):
            return await reply

    task = asyncio.create_task(command())
    await asyncio.sleep(0)  # the command is waiting for its reply
    reply_after_a_busy_loop(reply)
    assert await task == "PONG"


async def test_asyncio_timeout_fails_the_same_block() -> None:
    """The defect Deadline exists for, so the test above proves something."""
    timeout = getattr(asyncio, "timeout", None)
    if timeout is None:
        pytest.skip("asyncio.timeout is Python 3.11+")
    reply: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def command() -> str:
        async with timeout(0.01):
            return await reply

    task = asyncio.create_task(command())
    await asyncio.sleep(0)
    reply_after_a_busy_loop(reply)
    with pytest.raises(TimeoutError):
        await task


async def test_a_silent_server_fails_the_block_within_the_limit() -> None:
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    started = time.perf_counter()
    with pytest.raises(TimeoutError):
        async with Deadline(0.05):
            await never
    elapsed = time.perf_counter() - started
    assert 0.05 <= elapsed < 0.5


async def test_a_block_that_finishes_in_time_is_left_alone() -> None:
    async with Deadline(0.05):
        await asyncio.sleep(0)
    await asyncio.sleep(0.1)  # the timer was cancelled: nothing cancels this task later


async def test_a_cancel_from_outside_stays_a_cancel() -> None:
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def command() -> None:
        async with Deadline(10):
            await never

    task = asyncio.create_task(command())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_deadlines_nest_and_the_inner_one_fires_first() -> None:
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def nested() -> None:
        async with Deadline(10), Deadline(0.02):
            await never

    started = time.perf_counter()
    with pytest.raises(TimeoutError):
        await nested()
    assert time.perf_counter() - started < 5
    async with Deadline(0.05):
        await asyncio.sleep(0)


async def test_a_loop_busy_before_the_command_was_sent_restarts_the_limit() -> None:
    """The loop's pause ate the limit before the server had the command: not the server's time."""
    loop = asyncio.get_running_loop()
    reply: asyncio.Future[str] = loop.create_future()

    async def command() -> str:
        async with Deadline(0.02):
            loop.call_soon(time.sleep, 0.1)  # the loop is busy for five times the limit...
            await asyncio.sleep(0)  # ...before the command goes out...
            loop.call_later(0.005, reply.set_result, "PONG")  # ...to be answered in 5 ms
            return await reply

    assert await command() == "PONG"


async def test_a_gate_waiter_outlives_a_loop_pause_longer_than_its_timeout() -> None:
    gate = SlotGate(1, timeout_s=0.02)
    await gate.wait()  # the only slot is in use
    waiter = asyncio.create_task(gate.wait())
    await asyncio.sleep(0)  # queued, its timer armed
    loop = asyncio.get_running_loop()
    loop.call_soon(time.sleep, 0.1)  # the loop is busy past the waiter's timeout...
    loop.call_later(0.11, gate.leave)  # ...and the slot is given back right after
    await asyncio.wait_for(waiter, 2)


async def test_a_stuck_gate_still_fails_its_waiters_in_time() -> None:
    gate = SlotGate(1, timeout_s=0.05)
    await gate.wait()
    started = time.perf_counter()
    with pytest.raises(GateTimeout):
        await gate.wait()
    assert 0.05 <= time.perf_counter() - started < 0.5


async def test_a_burst_of_waiters_is_served_in_order() -> None:
    gate = SlotGate(2, timeout_s=1.0)
    order: list[int] = []

    async def caller(i: int) -> None:
        await gate.wait()
        try:
            await asyncio.sleep(0)
            order.append(i)
        finally:
            gate.leave()

    await asyncio.gather(*(caller(i) for i in range(20_000)))
    assert order == sorted(order)
    assert gate.free == 2
    assert not gate.waiters
