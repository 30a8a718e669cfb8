"""Applying the versioned schema: flavour detection, locking, bookkeeping, dry runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import asyncpg

from qts_data.errors import BackendError
from qts_data.interfaces import MigrationReport
from qts_data_timescale.migrations import Flavour, Migration, latest_version, migrations

if TYPE_CHECKING:
    from typing import TypeAlias

    from asyncpg.pool import PoolConnectionProxy

    #: A connection of its own or one lent by a pool.
    Conn: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]

__all__ = ["SchemaState", "apply_migrations", "read_schema_state"]

VERSION_TABLE = "qts_schema_version"
VERSION_TABLE_DDL = f"""CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    flavour TEXT NOT NULL CHECK (flavour IN ('timescale', 'plain')),
    checksum TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)"""
#: pg_advisory_xact_lock key held while migrating ("qtsd"), so that two
#: migrators started at once apply each version once.
LOCK_KEY = 0x71747364
RECORD_SQL = (
    f"INSERT INTO {VERSION_TABLE} (version, name, flavour, checksum) VALUES ($1, $2, $3, $4)"
)


@dataclass
class SchemaState:
    """What the database holds: schema version and flavour, and the TimescaleDB extension."""

    version: int = 0
    flavour: Flavour | None = None
    checksums: dict[int, str] = field(default_factory=dict)
    extension_version: str | None = None  # installed in this database
    extension_available: bool = False  # installable (pg_available_extensions)
    server_version: str = ""

    @property
    def latest(self) -> int:
        return latest_version()

    @property
    def up_to_date(self) -> bool:
        return self.version >= self.latest


async def read_schema_state(conn: Conn) -> SchemaState:
    """The schema state, read without writing anything."""
    state = SchemaState()
    row = await conn.fetchrow(
        """SELECT current_setting('server_version') AS server_version,
                  (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS installed,
                  EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') AS available,
                  to_regclass($1) IS NOT NULL AS has_versions""",
        VERSION_TABLE,
    )
    assert row is not None
    state.server_version = row["server_version"]
    state.extension_version = row["installed"]
    state.extension_available = bool(row["available"]) or row["installed"] is not None
    if row["has_versions"]:
        for version in await conn.fetch(
            f"SELECT version, flavour, checksum FROM {VERSION_TABLE} ORDER BY version"
        ):
            state.version = max(state.version, version["version"])
            state.flavour = version["flavour"]
            state.checksums[version["version"]] = version["checksum"]
    return state


async def _choose_flavour(
    conn: Conn, mode: str, state: SchemaState, dry_run: bool, notes: list[str]
) -> Flavour:
    if state.flavour is not None:
        if mode == "off" and state.flavour == "timescale":
            raise BackendError(
                'the schema was created for TimescaleDB; timescaledb = "off" cannot turn it into '
                "plain PostgreSQL (use a new database)"
            )
        if mode == "require" and state.flavour == "plain":
            raise BackendError(
                'the schema was created for plain PostgreSQL; timescaledb = "require" cannot '
                "convert it (use a new database)"
            )
        return state.flavour
    if mode == "off":
        notes.append("timescaledb = off: using plain PostgreSQL")
        return "plain"
    if state.extension_version is not None:
        notes.append(f"TimescaleDB {state.extension_version} present: using hypertables")
        return "timescale"
    if state.extension_available:
        if dry_run:
            notes.append(
                "TimescaleDB is installable: the migration would CREATE EXTENSION timescaledb"
            )
            return "timescale"
        try:
            async with conn.transaction():
                await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            version = await conn.fetchval(
                "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
            )
        except asyncpg.PostgresError as exc:
            if mode == "require":
                raise BackendError(
                    f'timescaledb = "require" but CREATE EXTENSION failed: {exc}'
                ) from None
            notes.append(f"TimescaleDB could not be enabled ({exc}): using plain PostgreSQL")
            return "plain"
        state.extension_version = version
        notes.append(f"TimescaleDB {version} enabled: using hypertables")
        return "timescale"
    if mode == "require":
        raise BackendError(
            'timescaledb = "require" but the server has no TimescaleDB extension '
            "(pg_available_extensions does not list it)"
        )
    notes.append("TimescaleDB absent: using plain PostgreSQL")
    return "plain"


def _script(migration: Migration) -> str:
    record = (
        f"INSERT INTO {VERSION_TABLE} (version, name, flavour, checksum) VALUES "
        f"({migration.version}, '{migration.name}', '{migration.flavour}', '{migration.checksum}');"
    )
    return f"-- {migration.label} ({migration.flavour})\nBEGIN;\n{migration.sql}{record}\nCOMMIT;\n"


async def apply_migrations(
    conn: Conn, mode: str, *, dry_run: bool = False, target: int | None = None
) -> tuple[MigrationReport, Flavour]:
    """Bring the schema to ``target`` (default: the newest version); return the report and flavour.

    Each version runs in its own transaction under an advisory lock and is
    recorded in ``qts_schema_version``; versions already recorded are skipped,
    so running it again changes nothing. With ``dry_run`` nothing is written
    and the report holds the SQL that would run.
    """
    state = await read_schema_state(conn)
    notes: list[str] = []
    flavour = await _choose_flavour(conn, mode, state, dry_run, notes)
    goal = latest_version() if target is None else target
    if not 0 <= goal <= latest_version():
        raise BackendError(f"no schema version {goal}: versions are 1 to {latest_version()}")
    known = {m.version: m for m in migrations(flavour)}
    for version, checksum in state.checksums.items():
        current = known.get(version)
        if current is not None and current.checksum != checksum:
            notes.append(
                f"{current.label} was applied from other SQL (checksum {checksum}, now "
                f"{current.checksum}); it is not applied again"
            )
    if state.version > goal:
        notes.append(f"the schema is at version {state.version}, newer than {goal}: nothing to do")
    pending = [m for m in migrations(flavour) if state.version < m.version <= goal]
    report = MigrationReport(from_version=state.version, to_version=max(state.version, goal))
    report.notes = notes
    if dry_run:
        if pending and state.version == 0:
            report.statements.append(VERSION_TABLE_DDL + ";")
        report.statements.extend(_script(m) for m in pending)
        report.applied = [m.label for m in pending]
        return report, flavour
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
        await conn.execute(VERSION_TABLE_DDL)
    for migration in pending:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
            done = await conn.fetchval(
                f"SELECT count(*) FROM {VERSION_TABLE} WHERE version = $1", migration.version
            )
            if done:
                notes.append(f"{migration.label} was applied meanwhile by another migrator")
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                RECORD_SQL, migration.version, migration.name, flavour, migration.checksum
            )
        report.applied.append(migration.label)
    return report, flavour
