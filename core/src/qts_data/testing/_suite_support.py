"""Helpers shared by the conformance suites (not part of the public API)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from qts_data.contracts import Contract, HealthState, HealthStatus
from qts_data.interfaces import Component

C = TypeVar("C", bound=Component)
T = TypeVar("T")

UTC = timezone.utc
#: A day boundary, so it is the start of a bucket of every interval.
T0 = datetime(2024, 1, 2, tzinfo=UTC)

#: How long after its TTL a key may still be seen (generous for a loaded CI machine).
EXPIRY_GRACE_S = 5.0


def at(
    *, days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0, us: int = 0
) -> datetime:
    """``T0`` plus an offset."""
    return T0 + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds, microseconds=us)


async def build(factory: Callable[[], Any], kind: type[Any], fixture: str) -> Any:
    """Call the author's factory (sync, or returning an awaitable) and check what it made."""
    if not callable(factory):
        raise TypeError(
            f"the fixture {fixture!r} must return a zero-argument callable that creates an "
            f"unopened {kind.__name__}, got {type(factory).__name__}"
        )
    made = factory()
    if inspect.isawaitable(made):
        made = await made
    if not isinstance(made, kind):
        raise TypeError(
            f"the callable returned by the fixture {fixture!r} must create a {kind.__name__}, "
            f"got {type(made).__name__}"
        )
    return made


async def collect(items: AsyncIterator[T]) -> list[T]:
    return [item async for item in items]


async def agen(items: Iterable[T]) -> AsyncIterator[T]:
    """An async generator over ``items`` that yields to the event loop between them."""
    for item in items:
        await asyncio.sleep(0)
        yield item


def dumps(rows: Iterable[Contract] | Contract | None) -> Any:
    """Contracts as plain dicts, for comparisons with readable diffs."""
    if rows is None:
        return None
    if isinstance(rows, Contract):
        return rows.model_dump()
    return [row.model_dump() for row in rows]


async def check_health(component: Component) -> None:
    status = await component.health_check()
    assert isinstance(status, HealthStatus), (
        f"health_check() must return a HealthStatus, got {type(status).__name__}"
    )
    assert isinstance(status.state, HealthState)
    assert status.state is not HealthState.UNHEALTHY, (
        f"an open, working {type(component).__name__} reports itself unhealthy: {status.message!r}"
    )
    assert status.component, "HealthStatus.component must name the component"


async def check_close_unopened(component: Component) -> None:
    """``close`` must not raise for a component that was never opened."""
    await component.close()


async def check_close_twice(component: Component) -> None:
    await component.open()
    await component.close()
    await component.close()


async def expires(
    write: Callable[[], Awaitable[object]],
    present: Callable[[], Awaitable[bool]],
    ttl_ms: int,
    what: str,
) -> None:
    """Check that what ``write`` stores with a TTL of ``ttl_ms`` is there before it and gone after.

    The presence check is only asserted when it ran well within the TTL (a
    loaded machine may stall); the absence is polled for up to
    :data:`EXPIRY_GRACE_S` after the TTL.
    """
    started = time.monotonic()
    await write()
    seen = await present()
    elapsed_ms = (time.monotonic() - started) * 1000
    if elapsed_ms < ttl_ms * 0.8:
        assert seen, f"{what} was gone {elapsed_ms:.0f} ms after being written with ttl_ms={ttl_ms}"
    deadline = started + ttl_ms / 1000 + EXPIRY_GRACE_S
    while await present():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{what} is still there {EXPIRY_GRACE_S:.0f} s after its TTL of {ttl_ms} ms"
            )
        await asyncio.sleep(0.01)
