"""Stampede protection: concurrent loads of one key share a single load.

The first caller runs the loader; the others await its result (or its
exception). A caller cancelled while waiting does not cancel the shared load.
:meth:`SingleFlight.forget` detaches a running load from its key: its callers
still get its result, later callers start a new one (a write of the key ended,
so what the running load read may be older than the write).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class SingleFlight:
    __slots__ = ("_inflight",)

    def __init__(self) -> None:
        self._inflight: dict[str, asyncio.Future[Any]] = {}

    def pending(self, key: str) -> asyncio.Future[Any] | None:
        return self._inflight.get(key)

    async def run(self, key: str, load: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """``(value, merged)``: merged is True when this caller joined another's load."""
        existing = self._inflight.get(key)
        if existing is not None:
            value: T = await asyncio.shield(existing)
            return value, True
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await load()
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        else:
            future.set_result(result)
            return result, False
        finally:
            if self._inflight.get(key) is future:
                del self._inflight[key]

    def forget(self, key: str) -> None:
        """Later callers of ``key`` do not join the load running now (it goes on for its own)."""
        self._inflight.pop(key, None)

    def __len__(self) -> int:
        return len(self._inflight)
