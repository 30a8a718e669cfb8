"""Versioned migrations on plain PostgreSQL: dry runs, upgrades, re-runs, flavour choice."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from timescale_support import make

from qts_data.contracts import HealthState
from qts_data.errors import BackendError
from qts_data.testing import PostgresDatabaseFactory, run_psql
from qts_data_timescale.errors import SchemaMissingError
from qts_data_timescale.migrations import latest_version, migrations

T0 = datetime(2024, 1, 2, tzinfo=timezone.utc)


def test_every_version_exists_in_both_flavours() -> None:
    plain = [m.label for m in migrations("plain")]
    timescale = [m.label for m in migrations("timescale")]
    assert (
        plain
        == timescale
        == [
            "0001_tables",
            "0002_aggregates",
            "0003_policies",
            "0004_outbox",
        ]
    )
    assert latest_version() == 4
    assert "by_range('time', INTERVAL '1 day')" in migrations("timescale")[0].sql
    assert "time_bucket(" not in "".join(m.sql for m in migrations("plain"))


async def test_dry_run_prints_the_plain_sql_and_writes_nothing(
    make_postgres_database: PostgresDatabaseFactory,
) -> None:
    dsn = make_postgres_database()
    adapter = make(dsn)
    await adapter.open()
    try:
        report = await adapter.migrate(dry_run=True)
    finally:
        await adapter.close()
    assert (report.from_version, report.to_version) == (0, 4)
    assert report.applied == [
        "0001_tables",
        "0002_aggregates",
        "0003_policies",
        "0004_outbox",
    ]
    sql = "\n".join(report.statements)
    for fragment in (
        "CREATE TABLE IF NOT EXISTS qts_schema_version",
        "CREATE TABLE tick_data",
        "USING brin (time)",
        "CREATE VIEW ohlcv_1m",
        "date_bin(INTERVAL '1 minute'",
        "CREATE TABLE qts_retention_policies",
        "INSERT INTO qts_schema_version",
        "CREATE TABLE qts_outbox",
    ):
        assert fragment in sql
    assert any("TimescaleDB absent" in note for note in report.notes)
    assert (
        run_psql(
            dsn,
            "SELECT to_regclass('tick_data') IS NULL, to_regclass('qts_schema_version') IS NULL",
        )
        == "t|t"
    )


async def test_later_versions_upgrade_earlier_ones_and_rerunning_is_harmless(
    make_postgres_database: PostgresDatabaseFactory,
) -> None:
    dsn = make_postgres_database()
    adapter = make(dsn)
    await adapter.open()
    try:
        first = await adapter.migrate(target=1)
        assert run_psql(dsn, "SELECT to_regclass('ohlcv_1m') IS NULL") == "t"
        upgrade = await adapter.migrate()
        again = await adapter.migrate()
    finally:
        await adapter.close()
    assert first.applied == ["0001_tables"]
    assert (upgrade.from_version, upgrade.to_version, upgrade.applied) == (
        1,
        4,
        ["0002_aggregates", "0003_policies", "0004_outbox"],
    )
    assert (again.from_version, again.to_version, again.applied) == (4, 4, [])
    recorded = run_psql(
        dsn,
        "SELECT string_agg(version || ':' || flavour, ',' ORDER BY version) FROM qts_schema_version",
    )
    assert recorded == "1:plain,2:plain,3:plain,4:plain"


async def test_two_migrators_at_once_apply_each_version_once(
    make_postgres_database: PostgresDatabaseFactory,
) -> None:
    dsn = make_postgres_database()
    adapters = [make(dsn), make(dsn)]
    for adapter in adapters:
        await adapter.open()
    try:
        reports = await asyncio.gather(*(adapter.migrate() for adapter in adapters))
    finally:
        for adapter in adapters:
            await adapter.close()
    applied = sorted(label for report in reports for label in report.applied)
    assert applied == ["0001_tables", "0002_aggregates", "0003_policies", "0004_outbox"]
    assert run_psql(dsn, "SELECT count(*) FROM qts_schema_version") == "4"


async def test_timescaledb_required_but_absent_is_an_error(
    make_postgres_database: PostgresDatabaseFactory,
) -> None:
    adapter = make(make_postgres_database(), timescaledb="require")
    await adapter.open()
    try:
        with pytest.raises(BackendError, match=r"require.*no TimescaleDB extension"):
            await adapter.migrate()
    finally:
        await adapter.close()


async def test_an_unmigrated_database_opens_degraded_and_says_to_migrate(
    make_postgres_database: PostgresDatabaseFactory,
) -> None:
    adapter = make(make_postgres_database())
    await adapter.open()
    try:
        status = await adapter.health_check()
        assert status.state is HealthState.DEGRADED
        assert "schema version 0 of 4: run `qts-data migrate`" in status.message
        with pytest.raises(SchemaMissingError, match="qts-data migrate"):
            await adapter.fetch_positions()
        with pytest.raises(SchemaMissingError, match="qts-data migrate"):
            await adapter.fetch_ohlcv("BTC", T0, T0.replace(day=3))
        await adapter.migrate()
        assert await adapter.fetch_positions() == []
        assert (await adapter.health_check()).state is HealthState.HEALTHY
    finally:
        await adapter.close()


async def test_auto_migrate_brings_the_schema_up_when_opening(
    make_postgres_database: PostgresDatabaseFactory,
) -> None:
    adapter = make(make_postgres_database(), auto_migrate=True)
    await adapter.open()
    try:
        assert adapter.flavour == "plain"
        assert await adapter.fetch_risk_configs() == []
    finally:
        await adapter.close()
