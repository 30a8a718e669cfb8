"""The event loop keeps running while SQLite works; WAL lets others read; locks give clear errors."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from qts_data.contracts import LedgerEntry, TickData
from qts_data.errors import BackendError
from qts_data_sqlite import SqliteSettings
from qts_data_sqlite.adapter import SqliteAdapter

T0 = datetime(2024, 1, 2, tzinfo=timezone.utc)
FAR = datetime(2100, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
async def adapter(db_path: Path) -> AsyncIterator[SqliteAdapter]:
    made = SqliteAdapter(SqliteSettings(path=str(db_path), busy_timeout_ms=200))
    await made.open()
    try:
        yield made
    finally:
        await made.close()


def ticks(count: int) -> Iterator[TickData]:
    price = Decimal("71000.12345678")
    for i in range(count):
        yield TickData(
            time=T0 + timedelta(microseconds=i * 1000),
            symbol="BTC",
            price=price,
            volume=1,
            trade_id=str(i),
        )


async def test_the_event_loop_keeps_ticking_during_a_large_ingest(adapter: SqliteAdapter) -> None:
    batch = list(ticks(100_000))
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    result = await adapter.ingest_ticks(batch, batch_size=100_000)  # one batch: one long call
    took = time.perf_counter() - started
    done.set()
    await task
    assert result.inserted == 100_000
    # A blocking implementation stalls the loop for the whole batch (took); here the loop
    # only waits for the GIL now and then. Both bounds are generous for a loaded machine.
    assert took > 0.1, f"the ingest took {took:.3f} s: too fast to tell anything"
    assert max(gaps) < min(0.25, took / 3), (
        f"the loop stalled {max(gaps) * 1000:.0f} ms during a {took * 1000:.0f} ms ingest"
    )
    assert len(gaps) > 10


async def test_sqlite_runs_on_the_adapters_own_thread(adapter: SqliteAdapter) -> None:
    def where(conn: sqlite3.Connection) -> tuple[str, int]:
        conn.execute("SELECT 1")
        return threading.current_thread().name, threading.get_ident()

    name, ident = await adapter._call("probe", where)
    assert ident != threading.get_ident()
    assert name.startswith("qts-sqlite-")
    assert await adapter._call("probe", where) == (name, ident)  # always the same thread


async def test_concurrent_writes_from_many_coroutines_are_all_stored(
    adapter: SqliteAdapter,
) -> None:
    entries = [
        LedgerEntry(
            timestamp=T0 + timedelta(seconds=i),
            symbol="AAPL",
            side="BUY",
            qty=1,
            price=1,
            order_id=f"o{i}",
        )
        for i in range(200)
    ]
    stored = await asyncio.gather(*(adapter.append_ledger(e) for e in entries + entries[:50]))
    assert stored.count(True) == 200
    assert stored.count(False) == 50
    assert [e.order_id for e in await adapter.fetch_ledger()] == [f"o{i}" for i in range(200)]


async def test_wal_lets_the_adapter_read_while_another_process_writes(
    adapter: SqliteAdapter, db_path: Path
) -> None:
    await adapter.update_position("AAPL", 1, 100)
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        other.execute("BEGIN IMMEDIATE")  # the other process holds the write lock
        other.execute("UPDATE positions SET qty = '5'")
        position = await adapter.fetch_position("AAPL")  # readers are not blocked
        assert position is not None
        assert position.qty == 1  # and see the last committed state
        started = time.perf_counter()
        with pytest.raises(
            BackendError, match=r"sqlite adapter .*: save_position failed: database is locked"
        ):
            await adapter.update_position("AAPL", 2, 100)
        assert 0.15 < time.perf_counter() - started < 5  # it waited busy_timeout_ms
        other.execute("COMMIT")
    finally:
        other.close()
    stored = await adapter.fetch_position("AAPL")
    assert stored is not None
    assert stored.qty == 5
    await adapter.update_position("AAPL", 3, 100)  # the lock is gone: writes work again
    assert (await adapter.fetch_positions())[0].qty == 3


async def test_a_cancelled_read_leaves_the_adapter_usable(adapter: SqliteAdapter) -> None:
    await adapter.ingest_ticks(ticks(20_000))
    task = asyncio.create_task(adapter.fetch_tick_data("BTC", T0, FAR))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(await adapter.fetch_tick_data("BTC", T0, FAR)) == 20_000


async def test_operations_on_an_unopened_or_closed_adapter_say_so(db_path: Path) -> None:
    adapter = SqliteAdapter(db_path)
    with pytest.raises(BackendError, match=r"fetch_positions: the adapter is not open"):
        await adapter.fetch_positions()
    with pytest.raises(BackendError, match=r"ingest_ticks: the adapter is not open"):
        await adapter.ingest_ticks([])
    await adapter.open()
    await adapter.open()  # a second open does nothing
    await adapter.close()
    with pytest.raises(BackendError, match=r"fetch_ohlcv: the adapter is not open"):
        await adapter.fetch_ohlcv("BTC", T0, FAR)
