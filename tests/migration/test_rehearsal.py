"""A whole Sheets → database migration, rehearsed on the Sheets stand-in and a real PostgreSQL.

SHEETS_ONLY with data → backfill → HYBRID (Sheets primary, then the database
primary) under a stream of writes while the stand-in answers with 429 storms,
500s and requests that land but time out → verify finds nothing once the
outbox drains → DB_ONLY → rollback to SHEETS_ONLY (after copying the
database-only writes back) — and no record is lost or duplicated anywhere.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from qts_data import open_stack
from qts_data.compositions import HybridAdapter
from qts_data.contracts import LedgerEntry
from qts_data.interfaces import Migratable
from qts_data.migration import backfill, verify
from qts_data.stack import Stack
from qts_data_sheets.testing import SheetsStandIn, standin_settings
from qts_data_sheets.testing.fixtures import create_default_spreadsheet

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc)
SYMBOLS = ["005930", "000660", "035420", "051910", "005380"]


def entry(n: int) -> LedgerEntry:
    return LedgerEntry(
        timestamp=T0 + timedelta(seconds=n),
        symbol=SYMBOLS[n % len(SYMBOLS)],
        side="BUY" if n % 3 else "SELL",
        qty=str(1 + n % 7),
        price=str(70000 + n),
        fee="1.50",
        strategy_tag="rehearsal",
        order_id=f"ord-{n:05d}",
        broker="SIM",
    )


def config(
    mode: str, primary: str, sheets: dict[str, Any], dsn: str, outbox: Path
) -> dict[str, Any]:
    return {
        "stack": {"adapter": "main"},
        "adapters": {
            "legacy": {"type": "sheets", **sheets},
            "db": {"type": "timescale", "dsn": dsn},
            "main": {
                "type": "hybrid",
                "sheets": "legacy",
                "db": "db",
                "mode": mode,
                "primary": primary,
                "outbox_path": str(outbox),
                "relay_interval_s": 0.05,
                "relay_max_backoff_s": 0.2,
            },
        },
    }


def hybrid_of(stack: Stack) -> HybridAdapter:
    assert isinstance(stack.adapter, HybridAdapter)
    return stack.adapter


async def write_stream(adapter: HybridAdapter, numbers: range, standin: SheetsStandIn) -> None:
    for n in numbers:
        if n % 25 == 0:
            standin.fail_next(8, 429, retry_after=0.01)  # a 429 storm
        if n % 40 == 10:
            standin.fail_next(2, 500)
        if n % 50 == 20:
            standin.succeed_then_timeout(
                1, match="values.append", hold_s=1.0
            )  # landed, answer lost
        assert await adapter.append_ledger(entry(n))
        await adapter.update_position(SYMBOLS[n % len(SYMBOLS)], str(100 + n), str(70000 + n))


async def ledger_keys(adapter: Any) -> list[str]:
    return [e.idempotency_key for e in await adapter.fetch_ledger()]


async def test_the_whole_migration_loses_and_duplicates_nothing(
    sheets_standin: SheetsStandIn, make_postgres_database: Any, tmp_path: Path
) -> None:
    spreadsheet = create_default_spreadsheet(sheets_standin)
    sheets = standin_settings(
        sheets_standin, spreadsheet, timeout_s=0.5, writable_config=True, max_retries=12
    )
    dsn = make_postgres_database()
    outbox = tmp_path / "outbox.sqlite"

    # Phase 0: the system runs on Sheets only, with history.
    async with open_stack(config("SHEETS_ONLY", "sheets", sheets, dsn, outbox)) as stack:
        adapter = hybrid_of(stack)
        for n in range(150):
            assert await adapter.append_ledger(entry(n))
        for n, symbol in enumerate(SYMBOLS):
            await adapter.update_position(symbol, str(10 + n), "70000")
        assert isinstance(adapter.db, Migratable)
        await adapter.db.migrate()
        # Phase 1: copy Sheets into the database; running it twice changes nothing.
        first = await backfill(adapter.sheets, adapter.db)
        again = await backfill(adapter.sheets, adapter.db)
        assert first.copied["ledger"] == 150 and again.copied["ledger"] == 0
        assert (await verify(adapter.sheets, adapter.db)).ok

    # Phase 2 and 3: dual write, Sheets primary then the database primary, under faults.
    for primary, numbers in (("sheets", range(150, 250)), ("db", range(250, 350))):
        async with open_stack(config("HYBRID", primary, sheets, dsn, outbox)) as stack:
            adapter = hybrid_of(stack)
            # the outbox commits with the database's writes; with Sheets primary it is a file
            assert (
                type(adapter.outbox).__name__
                == {
                    "sheets": "SqliteOutbox",
                    "db": "PostgresOutbox",
                }[primary]
            )
            await write_stream(adapter, numbers, sheets_standin)
            assert await adapter.flush(60), "the outbox did not drain"
            report = await verify(adapter.sheets, adapter.db)
            assert report.ok, "\n".join(map(str, report.mismatches))
            assert report.ledger_checked == numbers.stop

    expected = sorted(f"ord-{n:05d}" for n in range(400))
    # Phase 4-5: the database only; Sheets is left behind...
    async with open_stack(config("DB_ONLY", "db", sheets, dsn, outbox)) as stack:
        adapter = hybrid_of(stack)
        for n in range(350, 400):
            assert await adapter.append_ledger(entry(n))
        assert sorted(await ledger_keys(adapter.db)) == expected
        # ...until a rollback: what only the database has goes back to Sheets first.
        await backfill(adapter.db, adapter.sheets)

    # Rollback: a configuration change to SHEETS_ONLY; every record is there exactly once.
    async with open_stack(config("SHEETS_ONLY", "sheets", sheets, dsn, outbox)) as stack:
        adapter = hybrid_of(stack)
        assert sorted(await ledger_keys(adapter)) == expected
        assert sorted(await ledger_keys(adapter.db)) == expected
        report = await verify(adapter.sheets, adapter.db)
        assert report.ok, "\n".join(map(str, report.mismatches))
    assert (
        sheets_standin.data_rows(spreadsheet, "T_Ledger") == 400
    )  # no duplicated row in the sheet
    await asyncio.sleep(0)
