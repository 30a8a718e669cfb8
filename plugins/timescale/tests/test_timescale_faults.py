"""Real faults on throwaway PostgreSQL servers of the tests' own: a restart in the middle of
an ingest, a streaming replica that lags and stops. The machine's server is never touched."""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import asyncpg
import pytest
from packaging.version import Version
from timescale_support import make

from qts_data.contracts import HealthState, TickData
from qts_data.errors import BackendError
from qts_data.testing import PostgresProcess
from qts_data_timescale.adapter import TimescaleAdapter
from qts_data_timescale.errors import is_broken_connection, is_connection_error

UTC = timezone.utc
T0 = datetime(2024, 1, 2, tzinfo=UTC)
pytestmark = pytest.mark.slow
FLOOR = "Failed to restore the pool connection floor; retrying"


async def _migrated(server: PostgresProcess, **settings: object) -> TimescaleAdapter:
    server.psql("CREATE DATABASE qts")
    adapter = make(server.dsn_for("qts"), **settings)
    await adapter.open()
    await adapter.migrate()
    return adapter


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_a_restart_in_the_middle_of_an_ingest_loses_and_repeats_nothing(
    throwaway_postgres: PostgresProcess, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "qts_data.timescale")
    adapter = await _migrated(throwaway_postgres, retry_timeout_s=60)
    total, batch = 40_000, 2_000
    restarted: asyncio.Future[None] | None = None

    async def ticks() -> AsyncIterator[TickData]:
        nonlocal restarted
        loop = asyncio.get_running_loop()
        for i in range(total):
            if i == total // 3:
                # The server goes down (and comes back) while batches are in flight.
                restarted = loop.run_in_executor(None, throwaway_postgres.restart, mode)
                await asyncio.sleep(0.05)
            yield TickData(
                time=T0 + timedelta(milliseconds=i),
                symbol="BTC" if i % 2 else "ETH",
                price=Decimal(100 + i % 50),
                volume=1 + i % 9,
                trade_id=None if i % 5 == 0 else f"t{i}",
            )

    try:
        result = await adapter.ingest_ticks(ticks(), batch_size=batch)
        assert restarted is not None
        await restarted
        assert result.received == total
        retried = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
        assert retried, "the restart did not hit a batch in flight"
        stored = await adapter.fetch_tick_data("BTC", T0, T0 + timedelta(days=1))
        stored += await adapter.fetch_tick_data("ETH", T0, T0 + timedelta(days=1))
        assert len(stored) == total
        assert len({(t.symbol, t.time) for t in stored}) == total  # each exactly once
        again = await adapter.ingest_ticks(ticks(), batch_size=batch)
        assert (again.received, again.inserted) == (total, 0)
    finally:
        await adapter.close()


async def test_an_operation_fails_in_one_line_when_the_server_stays_down(
    throwaway_postgres: PostgresProcess,
) -> None:
    adapter = await _migrated(throwaway_postgres, retry_timeout_s=0.5)
    try:
        throwaway_postgres.stop("immediate")
        with pytest.raises(BackendError, match=r"cannot reach PostgreSQL at 127\.0\.0\.1"):
            await adapter.fetch_positions()
        status = await adapter.health_check()
        assert status.state is HealthState.UNHEALTHY
        throwaway_postgres.start()
        assert await adapter.fetch_positions() == []  # the pool reconnects by itself
    finally:
        await adapter.close()


#: A process with the command line's logging and an open adapter (a pool of one idle
#: connection): prints ``open``, ``seen`` after asyncpg's pool first fails to restore its floor
#: (the test stops the server), then ``events N`` once the pool has its connection back.
_POOL_WATCHER = f"""
import asyncio, logging, sys, time
from qts_data.cli.logs import configure_logging
from qts_data_timescale.adapter import TimescaleAdapter

configure_logging()
events = 0

class Count(logging.Handler):
    def emit(self, record):
        global events
        events += record.getMessage() == {FLOOR!r}

logging.getLogger("asyncpg.pool").addHandler(Count())

async def main():
    adapter = TimescaleAdapter(dsn=sys.argv[1], pool_min_size=1, pool_max_size=2)
    await adapter.open()
    print("open", flush=True)
    deadline = time.monotonic() + 120
    while events == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    print("seen", flush=True)
    while adapter._pool.get_size() < 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await adapter.close()
    print("events", events, flush=True)

asyncio.run(main())
"""


@pytest.mark.skipif(
    Version(asyncpg.__version__) < Version("0.32"),
    reason=f"asyncpg {asyncpg.__version__} does not restore the pool's connection floor, "
    "so it logs no reconnect warnings (asyncpg 0.32 does)",
)
@pytest.mark.parametrize("debug", ["0", "1"])
def test_the_pool_s_reconnect_warnings_are_one_line_each_on_the_command_line(
    throwaway_postgres: PostgresProcess, debug: str
) -> None:
    env = {**os.environ, "QTS_DATA_DEBUG": debug}
    proc = subprocess.Popen(
        [sys.executable, "-c", _POOL_WATCHER, throwaway_postgres.dsn],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        assert lines.get(timeout=60).strip() == "open"
        throwaway_postgres.stop("fast")
        assert lines.get(timeout=120).strip() == "seen"
        throwaway_postgres.start()
        assert proc.wait(timeout=180) == 0
        events = int(lines.get(timeout=10).split()[1])
    finally:
        if proc.poll() is None:
            proc.kill()
        assert proc.stderr is not None
        stderr = proc.stderr.read()
    assert events >= 1
    warnings = [line for line in stderr.splitlines() if line.startswith("qts-data: ")]
    assert len(warnings) == events, stderr
    assert all(
        line.startswith(f"qts-data: warning: asyncpg.pool: {FLOOR} (") and line.endswith(")")
        for line in warnings
    ), stderr
    if debug == "1":
        assert stderr.count("Traceback (most recent call last):") == events, stderr
    else:
        assert stderr.splitlines() == warnings  # nothing else: one line per event
        assert "Traceback" not in stderr


# -- the read replica ------------------------------------------------------------------------------


async def _wait_for(
    condition: object, what: str, timeout: float = 15.0, detail: Callable[[], object] = str
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what} {detail()}".rstrip())
        await asyncio.sleep(0.05)


async def _wait_until_idle(primary: PostgresProcess, idle_s: float, timeout: float = 60.0) -> None:
    """Wait until the primary writes no more WAL by itself, its last write ``idle_s`` old.

    After a write the background writer logs one standby snapshot (within 15 s, later when it
    hibernates), then nothing while nobody writes: wait for that record, or for 30 s without one
    (it was logged before the first look)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    first = await asyncio.to_thread(primary.current_wal_lsn)
    while await asyncio.to_thread(primary.current_wal_lsn) == first:
        if loop.time() > started + min(30.0, timeout):
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(max(0.0, started + idle_s - loop.time()))


async def test_reads_are_served_by_the_replica_and_survive_its_lag_and_its_loss(
    throwaway_postgres: PostgresProcess,
) -> None:
    primary = throwaway_postgres
    writer = await _migrated(primary)
    await writer.update_position("AAPL", 1, 100)
    await writer.close()
    replica = primary.make_replica()
    replica.wait_for_replay()
    adapter = make(
        primary.dsn_for("qts"),
        read_dsn=replica.dsn_for("qts"),
        read_max_lag_s=0.5,
        alert_replication_lag_s=0.5,
        replica_check_interval_s=0.05,
        retry_timeout_s=5,
    )
    await adapter.open()
    router = adapter.replica
    assert router is not None
    try:
        # 1. Served by the replica: with its replay paused it still shows the old position.
        assert [p.qty for p in await adapter.fetch_positions()] == [Decimal(1)]
        assert router.reads == 1
        replica.psql("SELECT pg_wal_replay_pause()")
        await adapter.update_position("AAPL", 2, 100)  # writes go to the primary
        assert (await adapter.fetch_position("AAPL")).qty == Decimal(1)  # type: ignore[union-attr]
        assert router.reads == 2

        # 2. Lagging past the bound: reads go back to the primary, health warns.
        await asyncio.sleep(0.7)
        await _wait_for(lambda: router.state == "lagging", "the replica to be seen lagging")
        assert (await adapter.fetch_position("AAPL")).qty == Decimal(2)  # type: ignore[union-attr]
        assert router.reads == 2
        status = await adapter.health_check()
        assert status.state is HealthState.DEGRADED
        assert "replication lag" in status.message
        replica.psql("SELECT pg_wal_replay_resume()")
        replica.wait_for_replay()
        await _wait_for(lambda: router.usable, "the replica to catch up")
        assert (await adapter.fetch_position("AAPL")).qty == Decimal(2)  # type: ignore[union-attr]
        assert router.reads == 3

        # 3. The replica stops: reads are still answered (by the primary), health warns.
        replica.stop("immediate")
        await adapter.update_position("AAPL", 3, 100)
        assert (await adapter.fetch_position("AAPL")).qty == Decimal(3)  # type: ignore[union-attr]
        assert router.state == "down"
        status = await adapter.health_check()
        assert status.state is HealthState.DEGRADED
        assert "down, reads served by the primary" in status.message
        assert status.details["replica"]["state"] == "down"

        # 4. It comes back and serves reads again.
        replica.start()
        replica.wait_for_replay()
        await _wait_for(lambda: router.usable, "the replica to be back")
        reads = router.reads
        assert (await adapter.fetch_position("AAPL")).qty == Decimal(3)  # type: ignore[union-attr]
        assert router.reads == reads + 1
    finally:
        await adapter.close()


async def test_a_replica_restarted_while_the_primary_is_idle_serves_reads_again(
    throwaway_postgres: PostgresProcess,
) -> None:
    # After a restart the replica's receive position restarts at its WAL segment's start, and
    # on an idle primary its last replayed transaction only gets older: it is caught up when it
    # has replayed the primary's WAL position, whatever the age of that transaction.
    primary = throwaway_postgres
    writer = await _migrated(primary)
    await writer.update_position("AAPL", 1, 100)
    await writer.close()
    replica = primary.make_replica()
    replica.wait_for_replay()
    adapter = make(
        primary.dsn_for("qts"),
        read_dsn=replica.dsn_for("qts"),
        read_max_lag_s=1.0,
        alert_replication_lag_s=1.0,
        replica_check_interval_s=0.1,
        connect_timeout_s=2.0,
    )
    await adapter.open()
    router = adapter.replica
    assert router is not None
    try:
        await adapter.update_position("AAPL", 2, 100)  # a transaction the replica replays
        replica.wait_for_replay()
        await _wait_until_idle(primary, idle_s=3.0)  # and it is >= 3 s old
        await _wait_for(
            lambda: router.usable and router.lag_s == 0.0,
            "the replica to be seen caught up",
            detail=router.describe,
        )
        assert [p.qty for p in await adapter.fetch_positions()] == [Decimal(2)]
        assert router.reads == 1

        # 1. The replica alone restarts; the primary stays idle.
        await asyncio.to_thread(replica.restart, "fast")
        await _wait_for(
            lambda: router.usable and router.lag_s == 0.0,
            "the restarted replica to be seen caught up",
            timeout=30.0,
            detail=router.describe,
        )
        primary_reads = adapter._primary_reads
        assert [p.qty for p in await adapter.fetch_positions()] == [Decimal(2)]
        assert (router.reads, adapter._primary_reads) == (2, primary_reads)
        status = await adapter.health_check()
        assert status.details["replica"]["state"] == "serving", status.details
        assert "replication lag" not in status.message
        assert "reads served by the primary" not in status.message

        # 2. The primary cannot be asked: the replica is not taken for caught up, its lag
        #    grows from its last verified catch-up until reads leave it.
        primary.stop("immediate")
        await _wait_for(
            lambda: router.state == "lagging" and router.primary_error is not None,
            "the replica to be seen lagging while the primary is down",
            detail=router.describe,
        )
        assert router.error is None  # the replica itself answers
        primary.start()
        await _wait_for(
            lambda: router.usable and router.lag_s == 0.0,
            "the replica to be caught up with the primary back",
            timeout=30.0,
            detail=router.describe,
        )
        assert router.primary_error is None
    finally:
        await adapter.close()


def test_a_connection_left_mid_operation_counts_as_lost() -> None:
    # what asyncpg raises on a connection a restart left in the middle of a COPY: it is
    # dropped and the operation retried on a new connection
    broken = [
        asyncpg.InternalClientError(
            "cannot switch to state 21; another operation (2) is in progress"
        ),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    ]
    assert all(is_broken_connection(e) and is_connection_error(e) for e in broken)
    assert not is_connection_error(asyncpg.InterfaceError("the pool is closing"))
