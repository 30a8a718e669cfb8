"""Schema versions and migrations; data persisting across adapters on the same file."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from qts_data.contracts import OHLCV, LedgerEntry, RiskConfig, StrategyParam, TickData
from qts_data.errors import BackendError
from qts_data.interfaces import Migratable
from qts_data_sqlite import schema
from qts_data_sqlite.adapter import SqliteAdapter
from qts_data_sqlite.schema import LATEST, MIGRATIONS, TABLES, Migration

T0 = datetime(2024, 1, 2, tzinfo=timezone.utc)
FAR = datetime(2100, 1, 1, tzinfo=timezone.utc)


def user_version(db_path: Path) -> int:
    conn = sqlite3.connect(db_path)
    try:
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        return version
    finally:
        conn.close()


def table_names(db_path: Path) -> set[str]:
    conn = sqlite3.connect(db_path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


async def test_open_creates_the_file_at_the_newest_schema_version(db_path: Path) -> None:
    adapter = SqliteAdapter(db_path)
    assert isinstance(adapter, Migratable)
    await adapter.open()
    try:
        assert adapter.opened_migration is not None
        assert (adapter.opened_migration.from_version, adapter.opened_migration.to_version) == (
            0,
            LATEST,
        )
        assert adapter.opened_migration.applied == [m.name for m in MIGRATIONS]
        assert user_version(db_path) == LATEST
        assert set(TABLES) <= table_names(db_path)
        again = await adapter.migrate()
        assert (again.from_version, again.to_version, again.applied) == (LATEST, LATEST, [])
        dry = await adapter.migrate(dry_run=True)
        assert dry.applied == []
        assert "nothing to do" in dry.notes[0]
    finally:
        await adapter.close()


def test_a_dry_run_lists_the_statements_without_applying_them(db_path: Path) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        report = schema.migrate(conn, str(db_path), dry_run=True)
        assert (report.from_version, report.to_version) == (0, LATEST)
        assert report.statements == [s for m in MIGRATIONS for s in m.statements]
        assert any(s.startswith("CREATE TABLE candles") for s in report.statements)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    finally:
        conn.close()


def test_a_failing_migration_leaves_the_previous_version_whole(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = Migration(
        LATEST + 1,
        "broken",
        ("CREATE TABLE extra (x INTEGER)", "ALTER TABLE no_such_table ADD COLUMN y"),
    )
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        schema.migrate(conn, str(db_path))
        monkeypatch.setattr(schema, "MIGRATIONS", (*MIGRATIONS, broken))
        monkeypatch.setattr(schema, "LATEST", LATEST + 1)
        with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
            schema.migrate(conn, str(db_path))
        assert not conn.in_transaction
        assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "extra" not in names
    finally:
        conn.close()


async def test_a_file_from_a_newer_plugin_is_refused(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    conn.close()
    adapter = SqliteAdapter(db_path)
    with pytest.raises(
        BackendError, match=rf"schema version {LATEST + 1} is newer .* upgrade the plugin"
    ):
        await adapter.open()
    await adapter.close()


async def test_adapters_opening_a_new_file_at_once_migrate_it_once(db_path: Path) -> None:
    adapters = [SqliteAdapter(db_path) for _ in range(4)]
    await asyncio.gather(*(a.open() for a in adapters))
    try:
        applied = [len(a.opened_migration.applied) for a in adapters if a.opened_migration]
        assert sorted(applied) == [0, 0, 0, len(MIGRATIONS)]
        assert user_version(db_path) == LATEST
        await adapters[0].update_position("AAPL", 1, 2)
        assert (await adapters[3].fetch_position("AAPL")) is not None
    finally:
        for adapter in adapters:
            await adapter.close()


async def test_everything_persists_across_reopening(db_path: Path) -> None:
    ledger = LedgerEntry(
        timestamp=T0,
        symbol="AAPL",
        side="BUY",
        qty=Decimal("1.5"),
        price=Decimal("10"),
        order_id="o-1",
    )
    candle = OHLCV(time=T0, symbol="BTC", open=1, high=2, low=1, close=2, volume=3)
    tick = TickData(time=T0, symbol="BTC", price=Decimal("1.25"), volume=1, trade_id="t-1")
    param = StrategyParam(strategy_id="s", param_name="p", value="3", value_type="int")
    risk = RiskConfig(config_key="max_loss", value=Decimal("-0.5"))

    writer = SqliteAdapter(db_path)
    await writer.open()
    position = await writer.update_position("AAPL", "1.5", "150.25")
    await writer.append_ledger(ledger)
    await writer.upsert_ohlcv([candle], "1d")
    await writer.ingest_ticks([tick])
    await writer.save_strategy_param(param)
    await writer.save_risk_config(risk)
    await writer.close()

    reader = SqliteAdapter(db_path)
    await reader.open()
    try:
        assert reader.opened_migration is not None
        assert reader.opened_migration.applied == []
        assert await reader.fetch_positions() == [position]
        assert await reader.fetch_ledger() == [ledger]
        assert await reader.append_ledger(ledger) is False  # the idempotency key persisted too
        assert await reader.fetch_ohlcv("BTC", T0, FAR, "1d") == [candle]
        assert await reader.fetch_tick_data("BTC", T0, FAR) == [tick]
        assert (await reader.ingest_ticks([tick])).inserted == 0
        assert await reader.fetch_strategy_params() == [param]
        assert await reader.fetch_risk_configs() == [risk]
    finally:
        await reader.close()
