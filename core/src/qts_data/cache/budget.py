"""Time budgets for cache calls: a call that has not answered in time is abandoned."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

#: What a missed budget raises (``asyncio.TimeoutError`` is ``TimeoutError`` from Python 3.11 on).
BudgetExceeded = (TimeoutError, asyncio.TimeoutError)

if sys.version_info >= (3, 11):

    async def within(seconds: float, awaitable: Awaitable[T]) -> T:
        """``await awaitable``, or TimeoutError after ``seconds`` (no extra task is created)."""
        async with asyncio.timeout(seconds):
            return await awaitable

else:  # pragma: no cover - Python 3.10

    async def within(seconds: float, awaitable: Awaitable[T]) -> T:
        return await asyncio.wait_for(awaitable, seconds)
