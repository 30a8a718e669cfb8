"""The read replica: its pool, its measured lag, and whether reads may go there.

A background task measures the replica's lag every ``replica_check_interval_s``.
Reads go to the replica while it answers and lags at most ``read_max_lag_s``;
otherwise they go to the primary. A read that fails on the replica for a lost
connection or a recovery conflict marks it unusable at once and is answered by
the primary; the next successful measurement brings the replica back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import asyncpg

from qts_data.config.secrets import mask
from qts_data_timescale.queries import REPLICA_LAG
from qts_data_timescale.settings import TimescaleSettings

log = logging.getLogger("qts_data.timescale.replica")


class Replica:
    """A streaming replica used for reads."""

    def __init__(self, settings: TimescaleSettings) -> None:
        self.settings = settings
        self.address = settings.address(replica=True)
        self.pool: asyncpg.Pool | None = None
        self.lag_s: float | None = None
        self.in_recovery: bool | None = None
        self.error: str | None = "not checked yet"
        self.checked_at: float | None = None
        self.reads = 0  # reads it answered
        self._task: asyncio.Task[None] | None = None

    @property
    def usable(self) -> bool:
        return (
            self.pool is not None
            and self.error is None
            and self.lag_s is not None
            and self.lag_s <= self.settings.read_max_lag_s
        )

    @property
    def state(self) -> str:
        if self.error is not None:
            return "down"
        if self.lag_s is not None and self.lag_s > self.settings.read_max_lag_s:
            return "lagging"
        return "serving"

    async def start(self) -> None:
        kwargs: dict[str, Any] = self.settings.connect_kwargs(replica=True)
        # min_size 0: a replica that is down when the adapter opens does not stop it.
        self.pool = await asyncpg.create_pool(
            min_size=0, max_size=self.settings.pool_max_size, **kwargs
        )
        await self.check()
        self._task = asyncio.ensure_future(self._monitor())

    async def check(self) -> None:
        """Measure lag and recovery state once (bounded by the connect timeout)."""
        assert self.pool is not None
        try:
            row = await asyncio.wait_for(
                self.pool.fetchrow(REPLICA_LAG), self.settings.connect_timeout_s
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.mark_down(exc)
        else:
            assert row is not None
            was = self.state
            self.lag_s = float(row["lag_s"])
            self.in_recovery = bool(row["standby"])
            self.error = None
            if was != self.state:
                log.info("replica %s is %s (lag %.3f s)", self.address, self.state, self.lag_s)
        self.checked_at = time.monotonic()

    def mark_down(self, exc: BaseException) -> None:
        message = mask(f"{type(exc).__name__}: {exc}") or type(exc).__name__
        if self.error is None:
            log.warning("replica %s unusable, reading from the primary: %s", self.address, message)
        self.error = message

    async def _monitor(self) -> None:
        while True:
            await asyncio.sleep(self.settings.replica_check_interval_s)
            await self.check()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        pool, self.pool = self.pool, None
        if pool is not None:
            await close_pool(pool, self.settings.close_timeout_s)

    def describe(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "state": self.state,
            "lag_s": self.lag_s,
            "max_lag_s": self.settings.read_max_lag_s,
            "reads": self.reads,
            "error": self.error,
        }


async def close_pool(pool: asyncpg.Pool, timeout: float) -> None:
    """Close ``pool`` gracefully within ``timeout`` seconds, then cut what is left."""
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except (asyncio.TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        pool.terminate()
