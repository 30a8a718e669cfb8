"""HYBRID with the database primary: the outbox lives in PostgreSQL, committed with each write.

A process killed while Sheets refuses its writes loses nothing: the next
process delivers what it left; processes sharing the database deliver one at a
time, and no record reaches the sheet twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from test_rehearsal import SYMBOLS, config, entry, hybrid_of, ledger_keys

from qts_data import open_stack
from qts_data.interfaces import Migratable
from qts_data.migration import verify
from qts_data.testing import run_psql
from qts_data_sheets.testing import SheetsStandIn, standin_settings
from qts_data_sheets.testing.fixtures import create_default_spreadsheet
from qts_data_timescale.outbox import PostgresOutbox

#: A trading process: HYBRID with the database primary, writing while Sheets is down.
CHILD = """
import asyncio, json, sys
from qts_data import open_stack
from test_rehearsal import entry

async def main(cfg, count):
    async with open_stack(cfg) as stack:
        for n in range(count):
            assert await stack.adapter.append_ledger(entry(n))
        print("written", flush=True)
        await asyncio.sleep(3600)  # killed here, its outbox undelivered

asyncio.run(main(json.loads(sys.argv[1]), int(sys.argv[2])))
"""


def hybrid_config(sheets: dict[str, Any], dsn: str, tmp_path: Path) -> dict[str, Any]:
    cfg = config("HYBRID", "db", sheets, dsn, tmp_path / "unused-outbox.sqlite")
    cfg["adapters"]["main"]["relay_lease_s"] = 1.0
    return cfg


async def migrated_stack(
    standin: SheetsStandIn, make_database: Any, tmp_path: Path, **sheets_settings: Any
) -> tuple[str, str, dict[str, Any]]:
    """(spreadsheet id, database dsn, HYBRID configuration): a fresh spreadsheet and a
    migrated database, the database primary."""
    spreadsheet = create_default_spreadsheet(standin)
    sheets = standin_settings(standin, spreadsheet, timeout_s=0.5, **sheets_settings)
    dsn = make_database()
    async with open_stack(config("DB_ONLY", "db", sheets, dsn, tmp_path / "o.sqlite")) as stack:
        db = hybrid_of(stack).db
        assert isinstance(db, Migratable)
        await db.migrate()
    return spreadsheet, dsn, hybrid_config(sheets, dsn, tmp_path)


async def test_a_killed_process_leaves_its_writes_in_the_database_outbox_and_the_next_delivers_them(
    sheets_standin: SheetsStandIn, make_postgres_database: Any, tmp_path: Path
) -> None:
    spreadsheet, dsn, cfg = await migrated_stack(
        sheets_standin, make_postgres_database, tmp_path, max_retries=1
    )

    sheets_standin.fail_next(100_000, 503, match="values.append")  # Sheets refuses every append
    child = subprocess.Popen(  # noqa: ASYNC220 - started once, read from a thread
        [sys.executable, "-c", CHILD, json.dumps(cfg), "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
    )
    try:
        assert child.stdout is not None
        line = await asyncio.to_thread(child.stdout.readline)
        assert line.strip() == "written", child.stderr.read() if child.stderr else ""
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert run_psql(dsn, "SELECT count(*) FROM t_ledger") == "30"
    assert run_psql(dsn, "SELECT count(*) FROM qts_outbox WHERE op = 'ledger'") == "30"
    assert sheets_standin.data_rows(spreadsheet, "T_Ledger") == 0

    sheets_standin.reset_faults()  # Sheets is back; a new process starts
    async with open_stack(cfg) as stack:
        adapter = hybrid_of(stack)
        assert isinstance(adapter.outbox, PostgresOutbox)
        assert (await adapter.health_check()).details["outbox"] == "database"
        # the dead process's turn to deliver expires (relay_lease_s), then this one delivers
        assert await adapter.flush(30), "the outbox did not drain"
        assert sorted(await ledger_keys(adapter.sheets)) == [f"ord-{n:05d}" for n in range(30)]
        assert (await verify(adapter.sheets, adapter.db)).ok
    assert run_psql(dsn, "SELECT count(*) FROM qts_outbox") == "0"
    assert sheets_standin.data_rows(spreadsheet, "T_Ledger") == 30


async def test_processes_sharing_the_database_deliver_each_record_once(
    sheets_standin: SheetsStandIn, make_postgres_database: Any, tmp_path: Path
) -> None:
    spreadsheet, dsn, cfg = await migrated_stack(
        sheets_standin, make_postgres_database, tmp_path, max_retries=12
    )
    cfg["adapters"]["main"]["relay_interval_s"] = 0.05

    async with open_stack(cfg) as one, open_stack(cfg) as two:
        first, second = hybrid_of(one), hybrid_of(two)

        async def writer(adapter: Any, numbers: range) -> None:
            for n in numbers:
                if n % 20 == 0:
                    sheets_standin.fail_next(4, 429, retry_after=0.01)
                assert await adapter.append_ledger(entry(n))
                await adapter.update_position(SYMBOLS[n % len(SYMBOLS)], str(n + 1), "70000")

        await asyncio.gather(writer(first, range(60)), writer(second, range(60, 120)))
        assert await first.flush(60) and await second.flush(60)
        delivered = [a.relay.delivered for a in (first, second) if a.relay is not None]
        report = await verify(first.sheets, first.db)
        assert report.ok, "\n".join(map(str, report.mismatches))
    assert sheets_standin.data_rows(spreadsheet, "T_Ledger") == 120
    assert sorted(delivered) == [0, 240]  # one relay held the turn and delivered every record
    assert run_psql(dsn, "SELECT count(*) FROM qts_outbox") == "0"


def toml(cfg: dict[str, Any]) -> str:
    """The configuration as TOML (tables of scalars, as ``config`` makes them)."""
    lines = []
    for section, table in cfg.items():
        if section == "adapters":
            for name, settings in table.items():
                lines.append(f"[adapters.{name}]")
                lines += [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
        else:
            lines.append(f"[{section}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``qts-data ARGS`` in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "qts_data.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_migrate_creates_the_outbox_a_hybrid_stack_needs(
    sheets_standin: SheetsStandIn, make_postgres_database: Any, tmp_path: Path
) -> None:
    spreadsheet = create_default_spreadsheet(sheets_standin)
    sheets = standin_settings(sheets_standin, spreadsheet)
    path = tmp_path / "qts.toml"
    path.write_text(toml(hybrid_config(sheets, make_postgres_database(), tmp_path)))

    before = cli("check", str(path))  # the stack cannot open: its outbox table is missing
    assert before.returncode != 0
    assert "no outbox table" in before.stderr and "run `qts-data migrate`" in before.stderr
    migrated = cli("migrate", str(path))  # migrate opens only the database
    assert migrated.returncode == 0, migrated.stderr
    assert "0004_outbox" in migrated.stdout
    after = cli("check", str(path), "--json")
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["state"] == "HEALTHY", after.stdout
    text = cli("check", str(path)).stdout
    assert "outbox of adapter:main (database): 0 waiting" in text, text


async def test_a_rollback_delivers_what_the_database_outbox_still_holds_before_sheets_takes_writes(
    sheets_standin: SheetsStandIn, make_postgres_database: Any, tmp_path: Path
) -> None:
    spreadsheet, dsn, cfg = await migrated_stack(
        sheets_standin, make_postgres_database, tmp_path, max_retries=1
    )
    sheets_standin.fail_next(100_000, 503, match="values.append")  # Sheets is down in phase 3
    async with open_stack(cfg) as stack:
        for n in range(10):
            assert await hybrid_of(stack).append_ledger(entry(n))
    assert run_psql(dsn, "SELECT count(*) FROM qts_outbox") == "10"

    sheets_standin.reset_faults()  # the rollback: SHEETS_ONLY, the same database configured
    rollback = config("SHEETS_ONLY", "sheets", cfg["adapters"]["legacy"], dsn, tmp_path / "o")
    async with open_stack(rollback) as stack:
        adapter = hybrid_of(stack)
        # delivered while the stack opened, before it took a write
        assert run_psql(dsn, "SELECT count(*) FROM qts_outbox") == "0"
        assert await adapter.append_ledger(entry(10))
        assert sorted(await ledger_keys(adapter)) == [f"ord-{n:05d}" for n in range(11)]
    assert sheets_standin.data_rows(spreadsheet, "T_Ledger") == 11


async def test_moving_to_the_database_primary_first_delivers_what_the_file_outbox_holds(
    sheets_standin: SheetsStandIn, make_postgres_database: Any, tmp_path: Path
) -> None:
    _, dsn, phase3 = await migrated_stack(sheets_standin, make_postgres_database, tmp_path)
    phase2 = config("HYBRID", "sheets", phase3["adapters"]["legacy"], dsn, tmp_path / "o.sqlite")
    # phase 2 ends before its relay delivered anything (it waits an hour to batch)
    phase2["adapters"]["main"].update(relay_interval_s=3600, relay_coalesce_s=3600)
    phase3["adapters"]["main"]["outbox_path"] = str(tmp_path / "o.sqlite")
    async with open_stack(phase2) as stack:
        for n in range(5):
            assert await hybrid_of(stack).append_ledger(entry(n))
    assert run_psql(dsn, "SELECT count(*) FROM t_ledger") == "0"

    async with open_stack(phase3) as stack:
        # in the database before the stack took a write
        assert run_psql(dsn, "SELECT count(*) FROM t_ledger") == "5"
        assert isinstance(hybrid_of(stack).outbox, PostgresOutbox)
        assert await hybrid_of(stack).append_ledger(entry(5))
        assert await hybrid_of(stack).flush(30)
        assert sorted(await ledger_keys(hybrid_of(stack).sheets)) == [
            f"ord-{n:05d}" for n in range(6)
        ]


async def test_an_inspecting_stack_leaves_the_database_outbox_to_the_running_process(
    sheets_standin: SheetsStandIn, make_postgres_database: Any, tmp_path: Path
) -> None:
    _, dsn, cfg = await migrated_stack(
        sheets_standin, make_postgres_database, tmp_path, max_retries=1
    )
    sheets_standin.fail_next(100_000, 503, match="values.append")
    async with open_stack(cfg) as stack:
        for n in range(3):
            assert await hybrid_of(stack).append_ledger(entry(n))
    sheets_standin.reset_faults()
    async with open_stack(cfg, inspect_only=True) as stack:  # qts-data check, verify...
        await asyncio.sleep(0.5)  # a relay would have delivered by now
        assert run_psql(dsn, "SELECT count(*) FROM qts_outbox") == "3"
        assert run_psql(dsn, "SELECT count(*) FROM qts_outbox_lease") == "0"
        assert (await hybrid_of(stack).health_check()).details["outbox_depth"] == 3
    async with open_stack(cfg) as stack:
        assert await hybrid_of(stack).flush(30)
    assert run_psql(dsn, "SELECT count(*) FROM qts_outbox") == "0"


async def test_backfill_to_sheets_delivers_the_database_outbox_before_copying_over_it(
    sheets_standin: SheetsStandIn, make_postgres_database: Any, tmp_path: Path
) -> None:
    _, dsn, cfg = await migrated_stack(
        sheets_standin, make_postgres_database, tmp_path, max_retries=1
    )
    # Sheets takes no writes from the end of phase 3 on
    sheets_standin.fail_next(
        100_000, 503, match=("values.append", "values.update", "values.batchUpdate")
    )
    async with open_stack(cfg) as stack:  # phase 3: the position waits in the outbox
        await hybrid_of(stack).update_position("005930", "1", "70000")
    db_only = config("DB_ONLY", "db", cfg["adapters"]["legacy"], dsn, tmp_path / "o.sqlite")
    async with open_stack(db_only) as stack:  # phase 4: a newer position, in the database only
        await hybrid_of(stack).update_position("005930", "2", "70000")
    assert run_psql(dsn, "SELECT count(*) FROM qts_outbox") == "1"

    sheets_standin.reset_faults()  # rollback: backfill --to-sheets, then SHEETS_ONLY
    path = tmp_path / "db-only.toml"
    path.write_text(toml(db_only))
    copied = await asyncio.to_thread(cli, "backfill", str(path), "--to-sheets")
    assert copied.returncode == 0, copied.stderr
    assert run_psql(dsn, "SELECT count(*) FROM qts_outbox") == "0"
    rollback = config("SHEETS_ONLY", "sheets", cfg["adapters"]["legacy"], dsn, tmp_path / "o")
    async with open_stack(rollback) as stack:
        position = await hybrid_of(stack).fetch_position("005930")
        assert position is not None and position.qty == 2  # the newer value, not the older
