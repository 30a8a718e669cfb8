"""Helpers shared by the redis_cache tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

#: ``await open_clients(**settings)``: the ``open_clients`` fixture.
OpenClient = Callable[..., Any]


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not come true in time")
        await asyncio.sleep(0.01)
