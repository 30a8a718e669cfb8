"""Sign-off you can trust: a row people typed that cannot be read is never a silent loss.

A sheet filled in as people type it (quoted codes, thousands separators,
percentages, Korean text, a blank row) with one unreadable row per worksheet:
``backfill`` copies the rest and exits 1 naming the rows it could not copy;
``verify`` exits 1 naming them as unverifiable. Corrected, both pass. Then a row
missing from the database and a blanked cell each make ``verify`` fail again.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from qts_data.testing import run_psql
from qts_data.testing.secret_search import Shown, run_cli
from qts_data_sheets.testing import SheetsStandIn
from qts_data_sheets.testing.fixtures import create_default_spreadsheet

pytestmark = pytest.mark.slow

POSITIONS = [
    ["'005930", "10", "71,000", "KOSPI", "710,000", "8.84%", "", ""],
    ["'000660", "3", "120,000.5", "KOSPI", "", "12.5%", "-1,000.25", ""],
    [],  # a blank row: nothing to copy, nothing lost
    ["'035420", "ten", "200,000", "KOSPI", "", "", "", ""],  # row 5: qty is not a number
]
LEDGER = [
    ["2026-03-02 09:00:00", "'005930", "BUY", "10", "71,000", "", "1.50", "모멘텀", "o-1", "", "키움"],
    ["2026-03-02 09:05:00", "'000660", "SELL", "1", "120,000", "", "1.234", "", "o-2", "", ""],  # row 3: fee has 2 places
]  # fmt: skip


def _config(tmp_path: Path, standin: SheetsStandIn, spreadsheet: str, dsn: str) -> Path:
    path = tmp_path / "qts.toml"
    path.write_text(
        f"""
[stack]
adapter = "main"

[adapters.legacy]
type = "sheets"
spreadsheet_id = "{spreadsheet}"
api_base_url = "{standin.base_url}"
timezone = "Asia/Seoul"
requests_per_minute = 100000
backoff_base_s = 0.01
backoff_max_s = 0.2

[adapters.db]
type = "timescale"
dsn = "{dsn}"

[adapters.main]
type = "hybrid"
sheets = "legacy"
db = "db"
mode = "SHEETS_ONLY"
primary = "sheets"
outbox_path = "{tmp_path / "outbox.sqlite"}"
""",
        "utf-8",
    )
    return path


def _cli(*args: str) -> Shown:
    return run_cli(list(args))


def _verify(config: Path) -> tuple[int, dict[str, Any]]:
    shown = _cli("verify", "--json", str(config))
    return shown.exit_code, json.loads(shown.stdout)


def test_unreadable_rows_fail_backfill_and_verify_until_corrected(
    sheets_standin: SheetsStandIn, make_postgres_database: Any, tmp_path: Path
) -> None:
    spreadsheet = create_default_spreadsheet(sheets_standin, time_zone="Asia/Seoul")
    sheets_standin.put_rows(spreadsheet, "Position", POSITIONS)
    sheets_standin.put_rows(spreadsheet, "T_Ledger", LEDGER)
    dsn = make_postgres_database()
    config = _config(tmp_path, sheets_standin, spreadsheet, dsn)
    assert _cli("migrate", str(config)).exit_code == 0

    copied = _cli("backfill", str(config))
    assert copied.exit_code == 1, copied.text()
    assert "backfill into the database: positions 2, ledger 1" in copied.stdout
    assert (
        "not copied: sheet 'Position' row 5: column 'qty': 'ten' is not a number" in copied.stdout
    )
    assert "not copied: sheet 'T_Ledger' row 3: LedgerEntry.fee:" in copied.stdout
    assert "qts-data: error: 2 row(s) of the source could not be read" in copied.stderr
    # What could be read arrived as people meant it.
    held = run_psql(
        dsn, "SELECT symbol, qty, avg_price, exposure_pct FROM positions ORDER BY symbol"
    )
    assert held.split() == [
        "000660|3.00000000|120000.50000000|0.1250",
        "005930|10.00000000|71000.00000000|0.0884",
    ]
    assert run_psql(dsn, "SELECT strategy_tag, broker FROM t_ledger").strip() == "모멘텀|키움"

    code, report = _verify(config)
    assert code == 1
    assert report["counts"]["unverifiable"] == 2
    assert report["unverifiable"][0].startswith("sheet 'Position' row 5: column 'qty'")
    assert report["mismatches"] == []

    # A person corrects both rows: backfill copies them, verify signs off.
    sheets_standin.put_rows(spreadsheet, "Position", [["'035420", "10"]], start_row=4)
    sheets_standin.put_rows(spreadsheet, "T_Ledger", [["2026-03-02 09:05:00", "'000660", "SELL", "1", "120,000", "", "1.23"]], start_row=2)  # fmt: skip
    again = _cli("backfill", str(config))
    assert again.exit_code == 0, again.text()
    code, report = _verify(config)
    assert (code, report["ok"], report["counts"]["unverifiable"]) == (0, True, 0)
    assert (report["positions_checked"], report["ledger_checked"]) == (3, 2)

    # A row missing from the database is a mismatch...
    run_psql(dsn, "DELETE FROM positions WHERE symbol = '000660'")
    code, report = _verify(config)
    assert code == 1
    assert report["counts"]["only_in_sheets"] == 1
    assert report["mismatches"] == [
        {"kind": "position", "key": "000660", "problem": "missing in the database"}
    ]
    # ...and so is a cell a person blanked (the row cannot be read).
    _cli("backfill", str(config))
    sheets_standin.put_rows(spreadsheet, "Position", [["'005930", ""]], start_row=1)
    code, report = _verify(config)
    assert code == 1
    assert report["counts"]["unverifiable"] == 1
    assert report["unverifiable"][0].startswith("sheet 'Position' row 2: Position.qty")


WRITES = ("values.batchUpdate", "values.append", "values.update")


def test_backfill_writes_only_what_differs_in_batches(
    sheets_standin: SheetsStandIn, make_postgres_database: Any, tmp_path: Path
) -> None:
    spreadsheet = create_default_spreadsheet(sheets_standin, time_zone="Asia/Seoul")
    sheets_standin.put_rows(spreadsheet, "Position", POSITIONS[:2])
    sheets_standin.put_rows(spreadsheet, "T_Ledger", LEDGER[:1])
    dsn = make_postgres_database()
    config = _config(tmp_path, sheets_standin, spreadsheet, dsn)
    assert _cli("migrate", str(config)).exit_code == 0
    assert _cli("backfill", str(config)).exit_code == 0
    run_psql(dsn, "UPDATE positions SET qty = 7 WHERE symbol = '005930'")
    for n in range(2, 60):  # entries only the database has, as after DB_ONLY
        run_psql(
            dsn,
            "INSERT INTO t_ledger (timestamp, symbol, side, qty, price, amount, order_id) VALUES "
            f"('2026-03-02T01:00:00Z'::timestamptz + interval '{n} seconds', '005930', 'BUY', 1, 70000, 70000, 'o-{n}')",
        )

    sheets_standin.clear_log()
    back = _cli("backfill", "--to-sheets", str(config))
    assert back.exit_code == 0, back.text()
    assert "backfill into Sheets: positions 1, ledger 58" in back.stdout  # only what differs
    assert "(ledger entries already in Sheets: 1)" in back.stdout
    # One batch update for the changed position and one append for 58 entries, not a
    # request per row.
    assert [r.operation for r in sheets_standin.requests_for(*WRITES)] == [
        "values.batchUpdate",
        "values.append",
    ]
    assert Decimal(sheets_standin.cells(spreadsheet, "Position")[1][1]) == 7
    assert sheets_standin.data_rows(spreadsheet, "T_Ledger") == 59

    sheets_standin.clear_log()
    again = _cli("backfill", "--to-sheets", str(config))
    assert again.exit_code == 0, again.text()
    assert "backfill into Sheets: positions 0, ledger 0" in again.stdout
    assert sheets_standin.requests_for(*WRITES) == []  # nothing to copy, nothing written
    code, report = _verify(config)
    assert (code, report["ok"]) == (0, True), report
