"""The TimescaleDB flavour against a real TimescaleDB engine (qts_data_timescale.testing.engine).

The engine is PostgreSQL 17 + TimescaleDB 2.23 compiled to WebAssembly: the
migrations, the continuous aggregates and policies, and the adapter's queries
(the whole conformance suite) run on it, proving they are valid TimescaleDB.
It takes one connection at a time and no COPY, so its adapters use a pool of
one and INSERT ... unnest ingest; throughput is measured on real PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from timescale_support import TABLES, WRITES, Factory, check_write_with_its_record

from qts_data.contracts import HealthState, Interval, TickData
from qts_data.interfaces import MigrationReport
from qts_data.testing import AdapterConformance
from qts_data_timescale.adapter import SHEETS, TimescaleAdapter
from qts_data_timescale.testing import TimescaleEngine

UTC = timezone.utc
T0 = datetime(2024, 1, 2, tzinfo=UTC)
AGGREGATES = ("ohlcv_1m", "daily_pnl", "hourly_execution_metrics")


@dataclass
class MigratedEngine:
    engine: TimescaleEngine
    dry_run: MigrationReport
    first: MigrationReport
    upgrade: MigrationReport
    again: MigrationReport


async def _connect(engine: TimescaleEngine) -> asyncpg.Connection:
    return await asyncpg.connect(engine.dsn, ssl=False, statement_cache_size=0)


@pytest.fixture(scope="session")
def migrated_engine(timescaledb_engine: TimescaleEngine) -> MigratedEngine:
    """The engine with the schema: a dry run first, then version 1, then the upgrade to the newest."""
    import asyncio

    async def run() -> MigratedEngine:
        adapter = timescaledb_engine.adapter()
        await adapter.open()
        try:
            dry = await adapter.migrate(dry_run=True)
            first = await adapter.migrate(target=1)
            upgrade = await adapter.migrate()
            again = await adapter.migrate()
        finally:
            await adapter.close()
        return MigratedEngine(timescaledb_engine, dry, first, upgrade, again)

    return asyncio.run(run())


@pytest_asyncio.fixture
async def engine(migrated_engine: MigratedEngine) -> AsyncIterator[TimescaleEngine]:
    """The migrated engine with every table and continuous aggregate emptied."""
    conn = await _connect(migrated_engine.engine)
    try:
        await conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY")
        for view in AGGREGATES:
            await conn.execute(f"TRUNCATE {view}")
    finally:
        conn.terminate()  # the engine does not end a session on Terminate; cut it
    yield migrated_engine.engine


async def fetch(engine: TimescaleEngine, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await _connect(engine)
    try:
        return await conn.fetch(sql, *args)
    finally:
        conn.terminate()


# -- the schema --------------------------------------------------------------------------------


def test_dry_run_prints_timescaledb_sql_and_writes_nothing(migrated_engine: MigratedEngine) -> None:
    dry = migrated_engine.dry_run
    assert (dry.from_version, dry.to_version) == (0, 4)
    assert dry.applied == ["0001_tables", "0002_aggregates", "0003_policies", "0004_outbox"]
    sql = "\n".join(dry.statements)
    assert "create_hypertable('tick_data', by_range('time', INTERVAL '1 day')" in sql
    assert "WITH (timescaledb.continuous, timescaledb.materialized_only = false)" in sql
    assert "add_retention_policy('ohlcv_1m', INTERVAL '30 days')" in sql
    # The real migration afterwards started from version 0: the dry run wrote nothing.
    assert migrated_engine.first.from_version == 0


def test_versions_upgrade_one_after_another_and_rerunning_is_harmless(
    migrated_engine: MigratedEngine,
) -> None:
    assert migrated_engine.first.applied == ["0001_tables"]
    assert (migrated_engine.upgrade.from_version, migrated_engine.upgrade.to_version) == (1, 4)
    assert migrated_engine.upgrade.applied == ["0002_aggregates", "0003_policies", "0004_outbox"]
    assert migrated_engine.again.applied == []
    assert (migrated_engine.again.from_version, migrated_engine.again.to_version) == (4, 4)
    assert any("TimescaleDB 2." in note for note in migrated_engine.first.notes)


async def test_hypertables_have_the_seed_chunk_intervals(engine: TimescaleEngine) -> None:
    rows = await fetch(
        engine,
        """SELECT d.hypertable_name, d.column_name, d.time_interval
           FROM timescaledb_information.dimensions d
           JOIN timescaledb_information.hypertables h USING (hypertable_schema, hypertable_name)
           WHERE NOT h.hypertable_name LIKE '\\_materialized%'""",
    )
    intervals = {row["hypertable_name"]: (row["column_name"], row["time_interval"]) for row in rows}
    assert intervals == {
        "tick_data": ("time", timedelta(days=1)),
        "ohlcv_1d": ("time", timedelta(days=30)),
        "execution_logs": ("time", timedelta(days=1)),
        "t_ledger": ("timestamp", timedelta(days=30)),
        "ohlcv_bars": ("time", timedelta(days=7)),
    }


async def test_continuous_aggregates_policies_compression_and_retention(
    engine: TimescaleEngine,
) -> None:
    aggregates = await fetch(
        engine,
        "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates",
    )
    assert {row["view_name"]: row["materialized_only"] for row in aggregates} == dict.fromkeys(
        AGGREGATES, False
    )
    jobs = await fetch(
        engine,
        """SELECT proc_name, hypertable_name, config::text AS config
           FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL""",
    )
    policies = {(row["proc_name"], row["hypertable_name"]): row["config"] for row in jobs}
    assert '"drop_after": "7 days"' in policies[("policy_retention", "tick_data")]
    assert '"drop_after": "30 days"' in policies[("policy_retention", "ohlcv_1m")]
    assert '"drop_after": "90 days"' in policies[("policy_retention", "execution_logs")]
    assert '"drop_after": "180 days"' in policies[("policy_retention", "hourly_execution_metrics")]
    assert '"compress_after": "7 days"' in policies[("policy_compression", "tick_data")]
    refresh = policies[("policy_refresh_continuous_aggregate", "ohlcv_1m")]
    assert '"end_offset": "00:01:00"' in refresh
    assert '"start_offset": "01:00:00"' in refresh
    assert ("policy_refresh_continuous_aggregate", "daily_pnl") in policies
    assert ("policy_refresh_continuous_aggregate", "hourly_execution_metrics") in policies
    assert not any(name == "ohlcv_1d" for _, name in policies)  # kept forever
    settings = await fetch(
        engine,
        """SELECT attname, segmentby_column_index FROM timescaledb_information.compression_settings
           WHERE hypertable_name = 'tick_data' AND segmentby_column_index IS NOT NULL""",
    )
    assert [row["attname"] for row in settings] == ["symbol"]


async def test_seed_indexes_exist(engine: TimescaleEngine) -> None:
    rows = await fetch(engine, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
    names = {row["indexname"] for row in rows}
    assert {
        "idx_positions_market",
        "idx_positions_updated",
        "idx_ledger_timestamp",
        "idx_ledger_symbol",
        "idx_ledger_strategy",
        "idx_strategies_updated",
        "idx_tick_symbol_time",
        "idx_tick_source",
        "idx_ohlcv_1d_symbol_time",
        "idx_exec_logs_order",
        "idx_exec_logs_stage",
    } <= names


# -- the adapter on TimescaleDB ------------------------------------------------------------------


class TestTimescaleDBConformance(AdapterConformance):
    """Every promise of the adapter interface, with hypertables and continuous aggregates."""

    raw_sheet_names = tuple(SHEETS)

    @pytest.fixture
    def make_adapter(self, engine: TimescaleEngine) -> Factory:
        return engine.adapter


def tick(when: datetime, price: str, volume: int, trade_id: str) -> TickData:
    return TickData(time=when, symbol="BTC", price=Decimal(price), volume=volume, trade_id=trade_id)


async def on_adapter(adapter: TimescaleAdapter, sql: str) -> list[asyncpg.Record]:
    """Run ``sql`` on the adapter's connection (the engine serves one connection at a time)."""
    async with adapter._require_pool("test").acquire() as conn:
        return await conn.fetch(sql)


async def _refresh_minutes(adapter: TimescaleAdapter) -> None:
    await on_adapter(adapter, "CALL refresh_continuous_aggregate('ohlcv_1m', NULL, NULL)")


@pytest.mark.parametrize("refresh", [True, False])
async def test_ticks_backfilled_below_the_watermark_refresh_the_minute_aggregate(
    engine: TimescaleEngine, refresh: bool
) -> None:
    adapter = engine.adapter(refresh_after_backfill=refresh)
    await adapter.open()
    try:
        await adapter.ingest_ticks(
            [tick(T0, "100", 1, "a"), tick(T0 + timedelta(seconds=30), "101", 1, "b")]
        )
        await _refresh_minutes(adapter)  # bucket T0 is now materialized: below the watermark
        await adapter.ingest_ticks([tick(T0 + timedelta(seconds=40), "150", 5, "late")])
        got = await adapter.fetch_ohlcv("BTC", T0, T0 + timedelta(minutes=1), Interval.M1)
    finally:
        await adapter.close()
    high, volume = (Decimal("150"), 7) if refresh else (Decimal("101"), 2)
    # Without the refresh the stale materialized bucket shows: the 1m read goes
    # through the continuous aggregate, not the raw ticks.
    assert [(c.high, c.volume) for c in got] == [(high, volume)]


async def test_newest_ticks_past_the_watermark_are_in_the_minute_candles(
    engine: TimescaleEngine,
) -> None:
    adapter = engine.adapter()
    await adapter.open()
    try:
        await adapter.ingest_ticks([tick(T0, "100", 1, "a")])
        await _refresh_minutes(adapter)
        await adapter.ingest_ticks([tick(T0 + timedelta(minutes=5), "120", 2, "new")])
        got = await adapter.fetch_ohlcv("BTC", T0, T0 + timedelta(hours=1), "1m")
        hourly = await adapter.fetch_ohlcv("BTC", T0, T0 + timedelta(hours=1), "1h")
    finally:
        await adapter.close()
    assert [(c.time, c.close) for c in got] == [
        (T0, Decimal("100")),
        (T0 + timedelta(minutes=5), Decimal("120")),
    ]
    assert [(c.open, c.high, c.close, c.volume) for c in hourly] == [
        (Decimal("100"), Decimal("120"), Decimal("120"), 3)
    ]


async def test_storage_report_shows_hypertables_chunks_and_compression(
    engine: TimescaleEngine,
) -> None:
    adapter = engine.adapter()
    await adapter.open()
    try:
        await adapter.ingest_ticks(
            [tick(T0 + timedelta(days=d), "100", 1, f"t{d}") for d in range(3)]
        )
        conn_report = await adapter.storage_report()
        rows = await on_adapter(adapter, "SELECT count(*) AS n FROM show_chunks('tick_data')")
        await on_adapter(adapter, "SELECT compress_chunk(c) FROM show_chunks('tick_data') c")
        compressed = await adapter.storage_report()
        # Reads and dedup still work over compressed chunks.
        again = await adapter.ingest_ticks([tick(T0, "100", 1, "t0")])
        stored = await adapter.fetch_tick_data("BTC", T0, T0 + timedelta(days=3))
    finally:
        await adapter.close()
    assert conn_report.backend == "timescaledb"
    tables = {t["name"]: t for t in conn_report.tables}
    assert tables["tick_data"]["kind"] == "hypertable"
    assert tables["tick_data"]["chunks"] == rows[0]["n"] == 3
    assert tables["tick_data"]["compression"] == "enabled"
    assert tables["ohlcv_1m"]["kind"] == "continuous aggregate"
    assert tables["positions"]["kind"] == "table"
    assert {p["kind"] for p in conn_report.details["policies"]} >= {
        "policy_retention",
        "policy_compression",
        "policy_refresh_continuous_aggregate",
    }
    assert {t["name"]: t for t in compressed.tables}["tick_data"]["compressed_chunks"] == 3
    assert (again.received, again.inserted) == (1, 0)
    assert len(stored) == 3


async def test_maintain_runs_the_retention_and_compression_jobs(engine: TimescaleEngine) -> None:
    now = datetime.now(UTC)
    adapter = engine.adapter()
    await adapter.open()
    try:
        await adapter.ingest_ticks(
            [tick(now - timedelta(days=10), "1", 1, "old"), tick(now, "2", 1, "new")]
        )
        report = await adapter.maintain()
        kept = await adapter.fetch_tick_data(
            "BTC", now - timedelta(days=30), now + timedelta(days=1)
        )
    finally:
        await adapter.close()
    assert any("policy_retention on tick_data" in action for action in report.actions)
    assert [t.trade_id for t in kept] == ["new"]


async def test_health_names_the_timescaledb_version(engine: TimescaleEngine) -> None:
    adapter = engine.adapter()
    await adapter.open()
    try:
        status = await adapter.health_check()
    finally:
        await adapter.close()
    assert status.state is HealthState.HEALTHY, status.message
    assert status.details["timescaledb"].startswith("2.")
    assert status.details["flavour"] == "timescale"
    assert status.details["server_version"].startswith("17")


@pytest.mark.parametrize("name", list(WRITES))
async def test_writes_commit_with_their_outbox_record_on_hypertables(
    engine: TimescaleEngine, name: str
) -> None:
    """The write-plus-record statements are valid TimescaleDB (the ledger, candles and logs
    are hypertables there)."""
    adapter = engine.adapter()
    await adapter.open()
    outbox = adapter.transactional_outbox("engine")
    await outbox.open()
    try:
        await check_write_with_its_record(adapter, outbox, name)
    finally:
        await outbox.close()
        await adapter.close()
