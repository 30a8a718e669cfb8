"""The plugin as installed: discovery, settings and their errors, masked secrets, lazy asyncpg,
and the `qts-data` data commands on a real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from qts_data.testing import PostgresDatabaseFactory
from qts_data_timescale.rows import trusted_builder
from qts_data_timescale.settings import TimescaleSettings

SECRET = "s3cr3t-Passw0rd"


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QTS_DATA")}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "qts_data.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def test_importing_the_plugin_does_not_import_asyncpg() -> None:
    probe = (
        "import sys, qts_data_timescale\n"
        "from qts_data.plugins.manager import get_plugin_host\n"
        "get_plugin_host().load()\n"
        "print('asyncpg' in sys.modules, 'qts_data_timescale.adapter' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_the_plugin_registers_the_timescale_adapter() -> None:
    result = cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugin = {p["name"]: p for p in json.loads(result.stdout)}["timescale"]
    assert plugin["status"] == "loaded"
    assert plugin["distribution"] == "qts-data-timescale"
    assert {(c["kind"], c["name"]) for c in plugin["components"]} == {("adapter", "timescale")}


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"dsn": "mysql://x@y/z"}, "dsn: the scheme mysql:// is not supported"),
        ({"dsn": "postgresql://u@h:notaport/db"}, "dsn: the port is not a number"),
        (
            {"dsn": "postgresql://u@h/db", "host": "other"},
            "give either dsn or host/port/database/user",
        ),
        ({"pool_min_size": 9, "pool_max_size": 2}, "pool_min_size (9) exceeds pool_max_size (2)"),
        ({"sslmode": "maybe"}, "sslmode"),
        ({"pool_size": 3}, "pool_size"),
    ],
)
def test_bad_settings_name_the_problem(settings: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        TimescaleSettings.model_validate(settings)
    assert fragment in str(info.value)


def test_connection_arguments() -> None:
    fields = TimescaleSettings(host="db", port=6432, database="qts", user="app", password=SECRET)
    kwargs = fields.connect_kwargs()
    assert (kwargs["host"], kwargs["port"], kwargs["database"], kwargs["user"]) == (
        "db",
        6432,
        "qts",
        "app",
    )
    assert kwargs["password"] == SECRET
    assert fields.address() == "db:6432/qts"
    bouncer = TimescaleSettings(
        dsn=f"postgresql://app:{SECRET}@db:6432/qts", pgbouncer=True, sslmode="require"
    )
    kwargs = bouncer.connect_kwargs()
    assert kwargs["statement_cache_size"] == 0
    assert kwargs["ssl"] == "require"
    assert SECRET not in bouncer.address() and SECRET not in repr(bouncer)
    replica = TimescaleSettings(dsn="postgresql://a@p/qts", read_dsn="postgresql://a@r:5433/qts")
    assert replica.connect_kwargs(replica=True)["dsn"] == "postgresql://a@r:5433/qts"
    assert replica.address(replica=True) == "r:5433/qts"


def test_trusted_rows_equal_validated_contracts() -> None:
    from datetime import datetime, timezone
    from decimal import Decimal

    from qts_data.contracts import LedgerEntry, Position

    row = (
        datetime(2024, 1, 2, tzinfo=timezone.utc),
        "BTC",
        "BUY",
        Decimal("1.5"),
        Decimal("10"),
        Decimal("15.00"),
        Decimal("0"),
        None,
        "o-1",
        None,
        None,
    )
    built = trusted_builder(LedgerEntry)(row)
    assert built == LedgerEntry(**dict(zip(LedgerEntry.db_columns, row, strict=True)))
    assert (
        built.model_dump()
        == LedgerEntry.from_db_row(dict(zip(LedgerEntry.db_columns, row, strict=True))).model_dump()
    )
    assert built.idempotency_key == "o-1"
    with pytest.raises(ValueError, match="not its fields"):
        trusted_builder(Position, ("qty", "symbol"))


# -- the data commands on PostgreSQL ---------------------------------------------------------------


@pytest.fixture
def config(make_postgres_database: PostgresDatabaseFactory, tmp_path: Path) -> Path:
    """A stack whose store is a fresh database; the DSN carries a password (trust auth ignores it).

    Only this plugin is installed where these tests run, so no cache fronts the store
    here (the commands finding a store behind ``cached`` are tested with the memory plugin)."""
    dsn = make_postgres_database().replace(
        "postgresql://postgres@", f"postgresql://postgres:{SECRET}@"
    )
    path = tmp_path / "qts.toml"
    path.write_text(
        f'[stack]\nadapter = "store"\n[adapters.store]\ntype = "timescale"\ndsn = "{dsn}"\n'
        "pool_min_size = 1\n"
    )
    return path


def test_migrate_ingest_query_and_db_commands(config: Path, tmp_path: Path) -> None:
    dry = cli("migrate", str(config), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "CREATE TABLE tick_data" in dry.stdout and "-- TimescaleDB absent" in dry.stdout
    migrated = cli("migrate", str(config))
    assert migrated.returncode == 0, migrated.stderr
    assert "adapters.store: schema version 0 -> 4" in migrated.stdout
    assert "nothing to apply" in cli("migrate", str(config)).stdout

    ticks = tmp_path / "ticks.csv"
    ticks.write_text(
        "time,symbol,price,volume,bid,ask,source,trade_id\n"
        + "".join(
            f"2024-01-02T00:{i // 60:02d}:{i % 60:02d}Z,BTC,{100 + i % 10},{1 + i % 3},,,upbit,t{i}\n"
            for i in range(600)
        )
        + "2024-01-03T09:00:00+09:00,BTC,90,5,,,,\n"
    )
    loaded = cli("ingest", "ticks", str(ticks), str(config), "--batch-size", "128")
    assert loaded.returncode == 0, loaded.stderr
    assert "adapters.store: received 601, inserted 601, duplicates 0" in loaded.stdout
    again = json.loads(cli("ingest", "ticks", str(ticks), str(config), "--json").stdout)
    assert (again["received"], again["inserted"], again["duplicates"]) == (601, 0, 601)

    query = ["query", "ohlcv", "BTC", str(config), "--from", "2024-01-02", "--to", "2024-01-04"]
    daily = cli(*query, "--interval", "1d", "--format", "csv")
    assert daily.stdout.splitlines() == [
        "time,open,high,low,close,volume",
        "2024-01-02T00:00:00+00:00,100.00000000,109.00000000,100.00000000,109.00000000,1200",
        "2024-01-03T00:00:00+00:00,90.00000000,90.00000000,90.00000000,90.00000000,5",
    ]
    minutes = json.loads(cli(*query, "--interval", "1m", "--format", "json").stdout)
    assert len(minutes) == 11
    assert minutes[0]["volume"] == sum(1 + i % 3 for i in range(60))

    status = cli("db", "status", str(config), "--json")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["adapter"] == "store"
    assert {t["name"]: t.get("rows") for t in data["tables"]}["tick_data"] == 601
    assert SECRET not in status.stdout
    gaps = cli(
        "db",
        "gaps",
        "BTC",
        str(config),
        "--interval",
        "1d",
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-03",
    )
    assert gaps.stdout.splitlines()[:2] == [
        "2024-01-01T00:00:00+00:00",
        "2024-01-02T00:00:00+00:00",
    ]
    maintained = cli("db", "maintain", str(config))
    assert maintained.returncode == 0, maintained.stderr
    assert "retention: deleted 601 rows older than 7 days from tick_data" in maintained.stdout
    checked = cli("check", str(config), "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert SECRET not in checked.stdout
    assert "postgresql://postgres:***@" in checked.stdout


def test_a_wrong_server_is_one_masked_line(tmp_path: Path) -> None:
    path = tmp_path / "qts.toml"
    path.write_text(
        '[stack]\nadapter = "db"\n[adapters.db]\ntype = "timescale"\n'
        f'dsn = "postgresql://qts:{SECRET}@127.0.0.1:1/qts"\nconnect_timeout_s = 2\n'
    )
    result = cli("migrate", str(path))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qts-data: error: ")
    assert "adapters.db (timescale) failed to open" in lines[0]
    assert SECRET not in result.stderr


def test_candles_built_from_text_prices_are_exact_and_independent() -> None:
    from datetime import datetime, timezone
    from decimal import Decimal

    from qts_data.contracts import OHLCV
    from qts_data_timescale.rows import candles

    when = datetime(2024, 1, 2, tzinfo=timezone.utc)
    first, second = candles(
        [(when, "1.10000000", "2.5", "0.00000001", "2", 7), (when, "1", "1", "1", "1", 1)], "BTC"
    )
    assert first == OHLCV(
        time=when, symbol="BTC", open="1.1", high="2.5", low="0.00000001", close=2, volume=7
    )
    assert first.open == Decimal("1.1") and isinstance(first.open, Decimal)
    changed = first.model_copy(update={"volume": 9})
    assert changed.volume == 9 and first.volume == 7
    assert second.model_fields_set == set(OHLCV.model_fields)
