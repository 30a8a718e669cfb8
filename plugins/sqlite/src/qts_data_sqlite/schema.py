"""The schema and its versioned migrations; the version is ``PRAGMA user_version``.

Each migration runs in one ``BEGIN IMMEDIATE`` transaction together with the
``user_version`` it sets, so a failed migration leaves the previous version
whole, and two processes opening a new file at once migrate it once (the
second re-reads the version after taking the write lock and finds it done).

Column types follow :mod:`qts_data_sqlite.codec`: Decimals as TEXT with every
digit, times as INTEGER microseconds since the epoch (UTC). Rows with an
``id`` keep their insertion order among equal times, as the memory adapter does.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from qts_data.errors import BackendError
from qts_data.interfaces import MigrationReport
from qts_data_sqlite.worker import transaction

__all__ = ["LATEST", "MIGRATIONS", "TABLES", "Migration", "migrate", "schema_version"]


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


_V1 = (
    """CREATE TABLE positions (
    symbol          TEXT PRIMARY KEY NOT NULL,
    qty             TEXT NOT NULL,
    avg_price       TEXT NOT NULL,
    market          TEXT,
    exposure_value  TEXT,
    exposure_pct    TEXT,
    unrealized_pnl  TEXT,
    updated_at      INTEGER NOT NULL
) WITHOUT ROWID""",
    """CREATE TABLE ledger (
    id               INTEGER PRIMARY KEY,
    timestamp        INTEGER NOT NULL,
    symbol           TEXT NOT NULL,
    side             TEXT NOT NULL CHECK (side IN ('BUY', 'SELL')),
    qty              TEXT NOT NULL,
    price            TEXT NOT NULL,
    amount           TEXT NOT NULL,
    fee              TEXT NOT NULL,
    strategy_tag     TEXT,
    order_id         TEXT,
    fill_id          TEXT,
    broker           TEXT,
    idempotency_key  TEXT UNIQUE  -- order_id or order_id#fill_id; NULL (never equal) without an order id
)""",
    "CREATE INDEX ledger_by_time ON ledger (timestamp)",
    "CREATE INDEX ledger_by_symbol ON ledger (symbol, timestamp)",
    """CREATE TABLE ticks (
    id        INTEGER PRIMARY KEY,
    time      INTEGER NOT NULL,
    symbol    TEXT NOT NULL,
    price     TEXT NOT NULL,
    volume    INTEGER NOT NULL CHECK (volume >= 0),
    bid       TEXT,
    ask       TEXT,
    source    TEXT,
    trade_id  TEXT,
    dedup     TEXT NOT NULL  -- 'T' || trade_id, or 'A' || the other fields (codec.tick_dedup)
)""",
    # The dedup key (symbol, time, dedup) is also the index of range scans by symbol.
    "CREATE UNIQUE INDEX ticks_by_key ON ticks (symbol, time, dedup)",
    """CREATE TABLE candles (
    symbol     TEXT NOT NULL,
    timeframe  TEXT NOT NULL CHECK (timeframe IN ('1m', '5m', '15m', '1h', '1d')),
    time       INTEGER NOT NULL,  -- the bucket start
    open       TEXT NOT NULL,
    high       TEXT NOT NULL,
    low        TEXT NOT NULL,
    close      TEXT NOT NULL,
    volume     INTEGER NOT NULL CHECK (volume >= 0),
    PRIMARY KEY (symbol, timeframe, time)
) WITHOUT ROWID""",
    """CREATE TABLE execution_logs (
    id          INTEGER PRIMARY KEY,
    time        INTEGER NOT NULL,
    order_id    TEXT NOT NULL,
    symbol      TEXT NOT NULL,
    stage       TEXT NOT NULL,
    latency_ms  TEXT,
    success     INTEGER NOT NULL CHECK (success IN (0, 1)),
    error_code  TEXT
)""",
    "CREATE INDEX execution_logs_by_time ON execution_logs (time)",
    "CREATE INDEX execution_logs_by_order ON execution_logs (order_id, time)",
    """CREATE TABLE strategies (
    strategy_id  TEXT NOT NULL,
    param_name   TEXT NOT NULL,
    value        TEXT NOT NULL,
    value_type   TEXT NOT NULL,
    description  TEXT,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (strategy_id, param_name)
) WITHOUT ROWID""",
    """CREATE TABLE risk_configs (
    config_key   TEXT PRIMARY KEY NOT NULL,
    value        TEXT NOT NULL,
    description  TEXT,
    updated_at   INTEGER NOT NULL
) WITHOUT ROWID""",
)

#: Every migration, oldest first. Append; never edit one that has shipped.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "0001_initial: positions, ledger, ticks, candles, execution_logs, strategies, risk_configs",
        _V1,
    ),
)
LATEST = MIGRATIONS[-1].version

#: The tables of the schema, in the order reports list them.
TABLES = (
    "positions",
    "ledger",
    "ticks",
    "candles",
    "execution_logs",
    "strategies",
    "risk_configs",
)


def schema_version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def _check_known(version: int, path: str) -> None:
    if version > LATEST:
        raise BackendError(
            f"sqlite database {path}: schema version {version} is newer than this "
            f"qts-data-sqlite knows (up to {LATEST}); upgrade the plugin"
        )


def migrate(conn: sqlite3.Connection, path: str, *, dry_run: bool = False) -> MigrationReport:
    """Apply the pending migrations (or, with ``dry_run``, list them). Runs on the connection's thread."""
    start = schema_version(conn)
    _check_known(start, path)
    report = MigrationReport(from_version=start, to_version=start)
    for migration in MIGRATIONS:
        if migration.version <= start:
            continue
        if dry_run:
            report.applied.append(migration.name)
            report.statements.extend(migration.statements)
            report.to_version = migration.version
            continue
        with transaction(conn):
            current = schema_version(conn)  # another process may have migrated meanwhile
            _check_known(current, path)
            if current < migration.version:
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {int(migration.version)}")
                report.applied.append(migration.name)
                report.statements.extend(migration.statements)
            else:
                report.notes.append(f"{migration.name}: already applied by another connection")
        report.to_version = max(report.to_version, migration.version)
    if dry_run and not report.applied:
        report.notes.append(f"schema is at version {start}, the newest: nothing to do")
    return report
