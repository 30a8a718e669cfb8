"""maintain (ANALYZE always, VACUUM above the free-page threshold), storage_report, health_check."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from qts_data.contracts import OHLCV, HealthState
from qts_data.interfaces import Maintainable, StorageInspectable
from qts_data_sqlite import SqliteSettings
from qts_data_sqlite.adapter import SqliteAdapter

T0 = datetime(2024, 1, 2, tzinfo=timezone.utc)
CANDLES = 40_000  # about 3 MB of candles


@functools.cache
def candles() -> tuple[OHLCV, ...]:
    price = Decimal("71000.12345678")
    return tuple(
        OHLCV(
            time=T0 + timedelta(minutes=i),
            symbol="KRW-BTC",
            open=price,
            high=price,
            low=price,
            close=price,
            volume=i,
        )
        for i in range(CANDLES)
    )


async def fill(adapter: SqliteAdapter) -> None:
    await adapter.upsert_ohlcv(candles(), "1m")


def execute(db_path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db_path)
    try:
        rows = conn.execute(sql).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


def fragment(db_path: Path) -> None:
    """Delete 80 % of the candles from another connection: their pages go to the freelist."""
    execute(db_path, f"DELETE FROM candles WHERE volume < {CANDLES * 8 // 10}")


@pytest.fixture
async def adapter(db_path: Path) -> AsyncIterator[SqliteAdapter]:
    made = SqliteAdapter(db_path)
    await made.open()
    try:
        yield made
    finally:
        await made.close()


def has_statistics(db_path: Path, table: str) -> bool:
    exists = execute(db_path, "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")
    return bool(exists) and bool(
        execute(db_path, f"SELECT 1 FROM sqlite_stat1 WHERE tbl = '{table}'")
    )


async def test_maintain_analyzes_and_skips_vacuum_below_the_threshold(
    adapter: SqliteAdapter, db_path: Path
) -> None:
    assert isinstance(adapter, Maintainable)
    await fill(adapter)
    assert not has_statistics(db_path, "candles")
    report = await adapter.maintain()
    assert "ANALYZE" in report.actions
    assert "VACUUM" not in report.actions
    assert report.details["vacuum"] == "skipped"
    assert "<= threshold 15.0%" in report.details["vacuum_reason"]
    assert has_statistics(db_path, "candles")
    assert report.details["after"]["page_count"] >= report.details["before"]["page_count"]


async def test_maintain_vacuums_above_the_threshold_and_shrinks_the_file(
    adapter: SqliteAdapter, db_path: Path
) -> None:
    await fill(adapter)
    await adapter.maintain()  # checkpoint: the file holds every page before the deletion
    fragment(db_path)
    report = await adapter.maintain()
    before, after = report.details["before"], report.details["after"]
    assert before["free_fraction"] > 0.15
    assert report.actions[:2] == ["ANALYZE", "VACUUM"]
    assert "wal_checkpoint(TRUNCATE)" in report.actions
    assert report.details["vacuum"] == "ran"
    assert "> threshold 15.0%" in report.details["vacuum_reason"]
    assert after["freelist_count"] == 0
    assert after["page_count"] < before["page_count"] * 0.5
    assert after["file_bytes"] < before["file_bytes"] * 0.5
    assert after["wal_bytes"] == 0
    assert report.details["reclaimed_bytes"] > 1_000_000
    # Nothing was lost: the rows the deletion kept are all there.
    got = await adapter.fetch_ohlcv("KRW-BTC", T0, T0 + timedelta(minutes=CANDLES), "1m")
    assert [c.volume for c in got] == list(range(CANDLES * 8 // 10, CANDLES))


async def test_a_higher_threshold_leaves_the_fragmented_file_alone(db_path: Path) -> None:
    adapter = SqliteAdapter(SqliteSettings(path=str(db_path), vacuum_threshold=0.95))
    await adapter.open()
    try:
        await fill(adapter)
        fragment(db_path)
        report = await adapter.maintain()
        assert report.actions[0] == "ANALYZE"
        assert "VACUUM" not in report.actions
        assert report.details["after"]["freelist_count"] > 0
        forced = await adapter.maintain(vacuum=True)
        assert "VACUUM" in forced.actions
        assert forced.details["vacuum_reason"].startswith("forced by the caller")
        assert forced.details["after"]["freelist_count"] == 0
    finally:
        await adapter.close()


async def test_maintain_works_in_memory() -> None:
    adapter = SqliteAdapter(":memory:")
    await adapter.open()
    try:
        await fill(adapter)
        report = await adapter.maintain(vacuum=True)
        assert report.actions == ["ANALYZE", "VACUUM"]  # no WAL in memory: no checkpoint
        assert report.details["after"]["file_bytes"] is None
    finally:
        await adapter.close()


async def test_storage_report_counts_rows_and_bytes(adapter: SqliteAdapter, db_path: Path) -> None:
    assert isinstance(adapter, StorageInspectable)
    await fill(adapter)
    await adapter.update_position("AAPL", 1, 1)
    report = await adapter.storage_report()
    assert report.backend == "sqlite"
    by_name = {table["name"]: table for table in report.tables}
    assert list(by_name) == [
        "positions",
        "ledger",
        "ticks",
        "candles",
        "execution_logs",
        "strategies",
        "risk_configs",
    ]
    assert by_name["candles"]["rows"] == CANDLES
    assert by_name["positions"]["rows"] == 1
    assert by_name["ticks"]["rows"] == 0
    assert by_name["candles"]["bytes"] > CANDLES * 30
    assert by_name["ticks"]["indexes"] == ["ticks_by_key"]
    assert by_name["ledger"]["index_bytes"] > 0
    details = report.details
    assert details["journal_mode"] == "wal"
    assert details["schema_version"] == 1
    assert details["path"] == str(db_path)
    assert details["file_bytes"] + details["wal_bytes"] >= details["database_bytes"] * 0.5
    assert details["vacuum_due"] is False


async def test_health_check_is_degraded_while_fragmented(
    adapter: SqliteAdapter, db_path: Path
) -> None:
    status = await adapter.health_check()
    assert status.state is HealthState.HEALTHY
    assert status.latency_ms is not None
    assert status.details["journal_mode"] == "wal"
    await fill(adapter)
    fragment(db_path)
    status = await adapter.health_check()
    assert status.state is HealthState.DEGRADED
    assert "qts-data db maintain" in status.message
    await adapter.maintain()
    assert (await adapter.health_check()).state is HealthState.HEALTHY


async def test_health_check_of_a_closed_adapter_is_unhealthy(db_path: Path) -> None:
    adapter = SqliteAdapter(db_path)
    status = await adapter.health_check()
    assert status.state is HealthState.UNHEALTHY
    assert "not open" in status.message
    await adapter.open()
    await adapter.close()
    assert (await adapter.health_check()).state is HealthState.UNHEALTHY


async def test_health_check_runs_quick_check_when_asked(db_path: Path) -> None:
    adapter = SqliteAdapter(SqliteSettings(path=str(db_path), quick_check=True))
    await adapter.open()
    try:
        status = await adapter.health_check()
        assert status.details["quick_check"] == "ok"
        assert status.state is HealthState.HEALTHY
    finally:
        await adapter.close()
