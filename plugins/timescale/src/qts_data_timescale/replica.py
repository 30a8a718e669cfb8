"""The read replica: its pool, its measured lag, and whether reads may go there.

A background task measures the replica's lag every ``replica_check_interval_s``.
Reads go to the replica while it answers and lags at most ``read_max_lag_s``;
otherwise they go to the primary. A read that fails on the replica for a lost
connection or a recovery conflict marks it unusable at once and is answered by
the primary; the next successful measurement brings the replica back.

The lag is measured against the primary, one query on each side per check: it is
0 when the replica has replayed the primary's WAL position (read on the primary
first, then compared on the replica), whatever the age of the last transaction
(an idle primary writes none). Only when the replica is behind that position is
the lag a time: the age of the last transaction it replayed, capped by the time
since it was last seen caught up (a primary idle for minutes then writing once
does not make the replica minutes late). When the primary cannot be asked (down,
unreachable, its pool exhausted, or it is itself in recovery) the replica is NOT
taken for caught up: its lag is measured the same time-based way, and so it grows
while the primary stays out of reach, until reads leave a replica whose freshness
nobody can vouch for (``read_max_lag_s`` keeps bounding the staleness of reads).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import asyncpg

from qts_data.config.secrets import mask
from qts_data_timescale.queries import PRIMARY_WAL_LSN, REPLICA_LAG
from qts_data_timescale.settings import TimescaleSettings

log = logging.getLogger("qts_data.timescale.replica")


class Replica:
    """A streaming replica used for reads."""

    def __init__(self, settings: TimescaleSettings, primary: asyncpg.Pool) -> None:
        self.settings = settings
        self.address = settings.address(replica=True)
        self.primary = primary  # the adapter's pool, asked for its WAL position
        self.pool: asyncpg.Pool | None = None
        self.lag_s: float | None = None
        self.in_recovery: bool | None = None
        self.error: str | None = "not checked yet"
        self.checked_at: float | None = None
        #: Why the last check could not read the primary's WAL position (None when it could).
        self.primary_error: str | None = None
        #: The primary's position the replica was last seen to have replayed, and when
        #: (monotonic) it was read: while the replica has replayed it, it is at most that old.
        self.synced: tuple[int, float] | None = None
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
        """Measure lag and recovery state once: the primary's WAL position, then the replica
        (each bounded by the connect timeout)."""
        assert self.pool is not None
        asked = time.monotonic()
        primary_lsn = await self._primary_lsn()
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
            self.in_recovery = bool(row["standby"])
            replayed = None if row["replay_lsn"] is None else parse_lsn(row["replay_lsn"])
            if not self.in_recovery:
                self.lag_s = 0.0
            elif replayed is not None and primary_lsn is not None and replayed >= primary_lsn:
                self.lag_s = 0.0
                self.synced = (primary_lsn, asked)
            else:
                lag = float(row["replay_age_s"])
                if self.synced is not None and replayed is not None and replayed >= self.synced[0]:
                    lag = min(lag, time.monotonic() - self.synced[1])
                self.lag_s = max(lag, 0.0)
            self.error = None
            if was != self.state:
                log.info(
                    "replica %s is %s (lag %.3f s%s)",
                    self.address,
                    self.state,
                    self.lag_s,
                    "" if self.primary_error is None else f"; primary: {self.primary_error}",
                )
        self.checked_at = time.monotonic()

    async def _primary_lsn(self) -> int | None:
        """The primary's WAL position; None (and ``primary_error`` says why) if unknown."""
        try:
            lsn = await asyncio.wait_for(
                self.primary.fetchval(PRIMARY_WAL_LSN), self.settings.connect_timeout_s
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = mask(f"{type(exc).__name__}: {exc}") or type(exc).__name__
            if self.primary_error is None:
                log.debug("replica %s: primary WAL position unknown: %s", self.address, message)
            self.primary_error = message
            return None
        self.primary_error = None
        return parse_lsn(lsn)

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
            "primary_error": self.primary_error,
        }


def parse_lsn(text: str) -> int:
    """A ``pg_lsn`` in its text form (``16/B374D848``) as an integer."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


async def close_pool(pool: asyncpg.Pool, timeout: float) -> None:
    """Close ``pool`` gracefully within ``timeout`` seconds, then cut what is left."""
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except (asyncio.TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        pool.terminate()
