"""Keeping the file healthy: statistics, fragmentation, sizes (seeds/001 §4: VACUUM, ANALYZE).

The free-page fraction ``freelist_count / page_count`` is the share of the file
that deleted rows left unused. SQLite reuses free pages for new rows, but
never gives them back to the file system; ``VACUUM`` rebuilds the file
without them (and defragments tables and indexes). It needs free disk space of
about the file's size and holds the write lock while it runs, so ``maintain``
runs it only when the fraction passes the threshold (seeds/001: 15 %).
``ANALYZE`` refreshes the statistics the query planner chooses indexes by.
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

from qts_data.interfaces import MaintenanceReport, StorageReport
from qts_data_sqlite.schema import TABLES, schema_version

MEMORY = ":memory:"


def _pragma(conn: sqlite3.Connection, name: str) -> Any:
    return conn.execute(f"PRAGMA {name}").fetchone()[0]


def file_sizes(path: str) -> dict[str, int | None]:
    """Bytes of the database file and of its write-ahead log (None for an in-memory database)."""
    if path == MEMORY:
        return {"file_bytes": None, "wal_bytes": None}

    def size(name: str) -> int:
        try:
            return os.path.getsize(name)
        except OSError:
            return 0

    return {"file_bytes": size(path), "wal_bytes": size(path + "-wal")}


def page_stats(conn: sqlite3.Connection, path: str) -> dict[str, Any]:
    """Page size and counts, the free-page fraction, and the file sizes."""
    page_size = int(_pragma(conn, "page_size"))
    page_count = int(_pragma(conn, "page_count"))
    freelist = int(_pragma(conn, "freelist_count"))
    return {
        "page_size": page_size,
        "page_count": page_count,
        "freelist_count": freelist,
        "free_fraction": freelist / page_count if page_count else 0.0,
        "database_bytes": page_size * page_count,
        **file_sizes(path),
    }


def maintain(
    conn: sqlite3.Connection, path: str, threshold: float, vacuum: bool | None = None
) -> MaintenanceReport:
    """ANALYZE always; VACUUM when the free-page fraction is above ``threshold`` (or as ``vacuum`` forces).

    In WAL mode a checkpoint (TRUNCATE) follows, so the rebuilt file and an
    empty log are what is left on disk.
    """
    report = MaintenanceReport()
    timings: dict[str, float] = {}
    before = page_stats(conn, path)

    started = time.perf_counter()
    conn.execute("ANALYZE")
    timings["ANALYZE"] = round((time.perf_counter() - started) * 1000, 3)
    report.actions.append("ANALYZE")

    fraction = before["free_fraction"]
    shown = f"free pages {fraction:.1%} ({before['freelist_count']} of {before['page_count']})"
    if vacuum is None:
        run_vacuum = fraction > threshold
        reason = f"{shown} {'>' if run_vacuum else '<='} threshold {threshold:.1%}"
    else:
        run_vacuum = vacuum
        reason = f"{'forced' if vacuum else 'disabled'} by the caller; {shown}"
    if run_vacuum:
        started = time.perf_counter()
        conn.execute("VACUUM")
        timings["VACUUM"] = round((time.perf_counter() - started) * 1000, 3)
        report.actions.append("VACUUM")
    journal_mode = str(_pragma(conn, "journal_mode")).lower()
    if journal_mode == "wal":
        started = time.perf_counter()
        busy, _log, _done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        timings["wal_checkpoint"] = round((time.perf_counter() - started) * 1000, 3)
        report.actions.append(
            "wal_checkpoint(TRUNCATE)"
            if not busy
            else "wal_checkpoint(TRUNCATE) incomplete: readers active"
        )
    after = page_stats(conn, path)
    report.details = {
        "path": path,
        "vacuum": "ran" if run_vacuum else "skipped",
        "vacuum_reason": reason,
        "vacuum_threshold": threshold,
        "before": before,
        "after": after,
        "reclaimed_bytes": (before["database_bytes"] - after["database_bytes"]),
        "duration_ms": timings,
    }
    return report


def storage_report(conn: sqlite3.Connection, path: str, threshold: float) -> StorageReport:
    """Rows and bytes per table (indexes included, via ``dbstat`` when SQLite has it), file and WAL sizes."""
    owner: dict[str, str] = dict(
        conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')")
    )
    table_bytes: dict[str, int] = {}
    index_bytes: dict[str, int] = {}
    indexes: dict[str, list[str]] = {}
    sizes_note = "dbstat"
    try:
        for name, size in conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
            table = owner.get(name, name)
            if name == table:
                table_bytes[table] = table_bytes.get(table, 0) + int(size)
            else:
                index_bytes[table] = index_bytes.get(table, 0) + int(size)
    except sqlite3.OperationalError:
        sizes_note = (
            "unavailable: this SQLite lacks the dbstat table, so bytes per table are unknown"
        )
    for name, table in owner.items():
        if name != table and not name.startswith("sqlite_autoindex"):
            indexes.setdefault(table, []).append(name)
    tables: list[dict[str, Any]] = []
    for table in TABLES:
        # The names are the schema's own (TABLES), never input.
        rows = int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        known = sizes_note == "dbstat"
        tables.append(
            {
                "name": table,
                "rows": rows,
                "bytes": (table_bytes.get(table, 0) + index_bytes.get(table, 0)) if known else None,
                "table_bytes": table_bytes.get(table, 0) if known else None,
                "index_bytes": index_bytes.get(table, 0) if known else None,
                "indexes": sorted(indexes.get(table, [])),
            }
        )
    stats = page_stats(conn, path)
    details: dict[str, Any] = {
        "path": path,
        "journal_mode": str(_pragma(conn, "journal_mode")).lower(),
        "schema_version": schema_version(conn),
        "sqlite_version": sqlite3.sqlite_version,
        "vacuum_threshold": threshold,
        "vacuum_due": stats["free_fraction"] > threshold,
        "sizes": sizes_note,
        **stats,
    }
    return StorageReport(backend="sqlite", tables=tables, details=details)


def health_probe(conn: sqlite3.Connection, path: str, quick_check: bool) -> dict[str, Any]:
    """``SELECT 1`` plus the facts a health report shows; ``PRAGMA quick_check`` when asked."""
    conn.execute("SELECT 1").fetchone()
    details: dict[str, Any] = {
        "path": path,
        "journal_mode": str(_pragma(conn, "journal_mode")).lower(),
        "schema_version": schema_version(conn),
        **page_stats(conn, path),
    }
    if quick_check:
        problems = [row[0] for row in conn.execute("PRAGMA quick_check")]
        details["quick_check"] = "ok" if problems == ["ok"] else problems[:10]
    return details
