"""What ``qts-data db status`` and ``qts-data db maintain`` show and do (seeds/002 §7.1).

TimescaleDB: hypertables with their chunks, compression and sizes, continuous
aggregates, and the policy jobs. Plain PostgreSQL: the tables with their sizes
and rows, and the retention rules that ``maintain`` applies.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

from qts_data.contracts import Interval
from qts_data.interfaces import MaintenanceReport, StorageReport
from qts_data_timescale.migrations import Flavour

if TYPE_CHECKING:
    from qts_data_timescale.schema import Conn

#: The tables of the schema, in the order reports list them.
TABLES = (
    "tick_data",
    "ohlcv_1d",
    "ohlcv_bars",
    "t_ledger",
    "execution_logs",
    "positions",
    "strategies",
    "risk_configs",
    "t_ledger_keys",
)
AGGREGATES = ("ohlcv_1m", "daily_pnl", "hourly_execution_metrics")
#: Below this size a table's rows are counted; above it the planner's estimate is shown.
EXACT_COUNT_BYTES = 64 * 1024 * 1024

CANDLE_SERIES = """SELECT symbol, '1d' AS interval, min(time) AS first, max(time) AS last,
       count(*) AS stored FROM ohlcv_1d GROUP BY symbol
UNION ALL
SELECT symbol, bar_interval, min(time), max(time), count(*) FROM ohlcv_bars
GROUP BY symbol, bar_interval
ORDER BY 1, 2 LIMIT 500"""


def _interval_text(value: timedelta) -> str:
    """``7 days`` rather than ``7 days, 0:00:00``."""
    if value.seconds == 0 and value.microseconds == 0:
        return f"{value.days} day" + ("" if value.days == 1 else "s")
    return str(value)


async def _table_sizes(conn: Conn, names: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT c.relname AS name, pg_total_relation_size(c.oid) AS bytes,
                  c.reltuples::bigint AS estimate
           FROM pg_class c
           WHERE c.relname = ANY($1::text[]) AND c.relnamespace = current_schema()::regnamespace""",
        list(names),
    )
    found = {row["name"]: row for row in rows}
    tables = []
    for name in names:
        row = found.get(name)
        if row is None:
            continue
        entry: dict[str, Any] = {"name": name, "bytes": row["bytes"]}
        if row["bytes"] <= EXACT_COUNT_BYTES:
            entry["rows"] = await conn.fetchval(f'SELECT count(*) FROM "{name}"')
        else:
            entry["rows"] = max(row["estimate"], 0)
            entry["rows_estimated"] = True
        tables.append(entry)
    return tables


async def _candle_series(conn: Conn) -> list[dict[str, Any]]:
    series = []
    for row in await conn.fetch(CANDLE_SERIES):
        step = Interval(row["interval"]).delta
        expected = (row["last"] - row["first"]) // step + 1
        series.append(
            {
                "symbol": row["symbol"],
                "interval": row["interval"],
                "first": row["first"].isoformat(),
                "last": row["last"].isoformat(),
                "stored": row["stored"],
                "missing": expected - row["stored"],
            }
        )
    return series


async def storage_report(conn: Conn, flavour: Flavour, details: dict[str, Any]) -> StorageReport:
    """Tables (or hypertables) with sizes, and ``details`` completed with backend facts."""
    report = StorageReport(backend="timescaledb" if flavour == "timescale" else "postgresql")
    report.details.update(details)
    if flavour == "timescale":
        hypertables = {
            row["name"]: row
            for row in await conn.fetch(
                """SELECT h.hypertable_name AS name, h.num_chunks AS chunks,
                          h.compression_enabled AS compression,
                          hypertable_size(format('%I.%I', h.hypertable_schema, h.hypertable_name)::regclass) AS bytes,
                          approximate_row_count(format('%I.%I', h.hypertable_schema, h.hypertable_name)::regclass) AS rows
                   FROM timescaledb_information.hypertables h
                   WHERE h.hypertable_schema = current_schema()"""
            )
        }
        plain = tuple(name for name in TABLES if name not in hypertables)
        sizes = {t["name"]: t for t in await _table_sizes(conn, plain)}
        for name in TABLES:
            if name in hypertables:
                row = hypertables[name]
                entry: dict[str, Any] = {
                    "name": name,
                    "kind": "hypertable",
                    "rows": row["rows"],
                    "rows_estimated": True,
                    "bytes": row["bytes"],
                    "chunks": row["chunks"],
                    "compression": "enabled" if row["compression"] else "off",
                }
                if row["compression"]:
                    stats = await conn.fetchrow(
                        """SELECT sum(number_compressed_chunks)::bigint AS compressed,
                                  sum(before_compression_total_bytes)::bigint AS before,
                                  sum(after_compression_total_bytes)::bigint AS after
                           FROM hypertable_compression_stats($1::regclass)""",
                        name,
                    )
                    if stats is not None and stats["compressed"]:
                        entry["compressed_chunks"] = stats["compressed"]
                        entry["compressed_bytes_before"] = stats["before"]
                        entry["compressed_bytes_after"] = stats["after"]
                report.tables.append(entry)
            elif name in sizes:
                report.tables.append({**sizes[name], "kind": "table"})
        for row in await conn.fetch(
            """SELECT view_name AS name, materialized_only,
                      hypertable_size(format('%I.%I', materialization_hypertable_schema,
                                             materialization_hypertable_name)::regclass) AS bytes
               FROM timescaledb_information.continuous_aggregates
               WHERE view_schema = current_schema() ORDER BY view_name"""
        ):
            report.tables.append(
                {
                    "name": row["name"],
                    "kind": "continuous aggregate",
                    "bytes": row["bytes"],
                    "real_time": not row["materialized_only"],
                }
            )
        report.details["policies"] = [
            {
                "job": row["job_id"],
                "kind": row["proc_name"],
                "relation": row["hypertable_name"],
                "every": str(row["schedule_interval"]),
                "config": row["config"],
            }
            for row in await conn.fetch(
                """SELECT j.job_id, j.proc_name, coalesce(ca.view_name, j.hypertable_name) AS hypertable_name,
                          j.schedule_interval, j.config::text AS config
                   FROM timescaledb_information.jobs j
                   LEFT JOIN timescaledb_information.continuous_aggregates ca
                     ON ca.materialization_hypertable_name = j.hypertable_name
                   WHERE j.hypertable_name IS NOT NULL ORDER BY j.job_id"""
            )
        ]
    else:
        for entry in await _table_sizes(conn, TABLES):
            report.tables.append({**entry, "kind": "table"})
        for name in AGGREGATES:
            report.tables.append({"name": name, "kind": "view (computed by query)"})
        report.details["policies"] = [
            {
                "kind": "retention (qts-data db maintain)",
                "relation": row["relation"],
                "keep": _interval_text(row["keep"]),
            }
            for row in await conn.fetch(
                "SELECT relation, keep FROM qts_retention_policies ORDER BY relation"
            )
        ]
    report.details["candle_series"] = await _candle_series(conn)
    return report


async def maintain(pool: asyncpg.Pool, flavour: Flavour) -> MaintenanceReport:
    """Apply the retention rules and policies now, then refresh the planner's statistics."""
    report = MaintenanceReport()
    async with pool.acquire() as conn:
        if flavour == "timescale":
            jobs = await conn.fetch(
                """SELECT job_id, proc_name, hypertable_name FROM timescaledb_information.jobs
                   WHERE hypertable_name IS NOT NULL ORDER BY job_id"""
            )
            for job in jobs:
                await conn.execute(f"CALL run_job({int(job['job_id'])})")
                report.actions.append(f"ran {job['proc_name']} on {job['hypertable_name']}")
            report.details["jobs_run"] = len(jobs)
        else:
            deleted: dict[str, int] = {}
            for rule in await conn.fetch(
                "SELECT relation, time_column, keep FROM qts_retention_policies ORDER BY relation"
            ):
                keep: timedelta = rule["keep"]
                status = await conn.execute(
                    f'DELETE FROM "{rule["relation"]}" WHERE "{rule["time_column"]}" < now() - $1::interval',
                    keep,
                )
                count = int(status.rsplit(" ", 1)[1])
                deleted[rule["relation"]] = count
                report.actions.append(
                    f"retention: deleted {count} rows older than {_interval_text(keep)} "
                    f"from {rule['relation']}"
                )
            report.details["deleted"] = deleted
        # VACUUM cannot run in a transaction: these are statements of their own.
        upkeep = "ANALYZE" if flavour == "timescale" else "VACUUM (ANALYZE)"
        for name in TABLES:
            await conn.execute(f'{upkeep} "{name}"')
        report.actions.append(f"{upkeep} of {len(TABLES)} tables")
    return report
