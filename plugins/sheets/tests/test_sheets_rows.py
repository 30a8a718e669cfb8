"""Reading rows: bad rows are reported with sheet and row number, good rows are still returned,
and cells typed by a person (numbers, dates, percentages) read as they mean."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from qts_data.contracts import HealthState
from qts_data_sheets.adapter import SheetsAdapter
from qts_data_sheets.testing import DateTimeValue, SheetsStandIn

MakeAdapter = Callable[..., Awaitable[SheetsAdapter]]
KST = timezone(timedelta(hours=9))
POSITION = ["symbol", "qty", "avg_price", "market", "updated_at"]


async def test_bad_rows_are_reported_by_sheet_and_row_and_good_rows_returned(
    sheets_standin: SheetsStandIn,
    make_sheets_adapter: MakeAdapter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sid = sheets_standin.create_spreadsheet(
        {
            "Position": [
                POSITION,
                ["AAPL", "10", "150.5"],  # row 2: good
                ["MSFT", "ten", "300"],  # row 3: qty is not a number
                [],  # row 4: empty, skipped silently (nothing to lose)
                ["TSLA", "1", "200", "", "yesterday"],  # row 5: bad date
                ["GOOG", "-5", "100"],  # row 6: negative quantity
                ["005930", "3", "71000"],  # row 7: good
            ]
        }
    )
    adapter = await make_sheets_adapter(sid)
    with caplog.at_level(logging.WARNING, logger="qts_data.sheets"):
        positions = await adapter.fetch_positions()
    assert [p.symbol for p in positions] == ["005930", "AAPL"]
    errors = adapter.last_read_errors
    assert len(errors) == 3
    assert errors[0].startswith("sheet 'Position' row 3: column 'qty': 'ten' is not a number")
    assert errors[1].startswith("sheet 'Position' row 5: Position.updated_at:")
    assert errors[2].startswith("sheet 'Position' row 6: Position.qty:")
    assert adapter.read_errors["Position"] == errors
    logged = [r.getMessage() for r in caplog.records if r.name == "qts_data.sheets"]
    assert all(any(e in line for line in logged) for e in errors)
    health = await adapter.health_check()
    assert health.state is HealthState.DEGRADED
    assert health.details["last_read_errors"] == 3
    assert health.details["read_errors_total"] == 3


async def test_a_clean_read_clears_the_last_errors(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter
) -> None:
    sid = sheets_standin.create_spreadsheet(
        {
            "Position": [POSITION, ["AAPL", "x", "1"]],
            "T_Ledger": [["timestamp", "symbol", "side", "qty", "price"]],
        }
    )
    adapter = await make_sheets_adapter(sid)
    assert await adapter.fetch_positions() == []
    assert len(adapter.last_read_errors) == 1
    assert await adapter.fetch_ledger() == []
    assert adapter.last_read_errors == []
    assert len(adapter.read_errors["Position"]) == 1  # kept per sheet
    assert adapter.read_errors_total == 1


async def test_a_repeated_key_is_reported_and_the_first_row_wins(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter
) -> None:
    sid = sheets_standin.create_spreadsheet(
        {"Position": [POSITION, ["AAPL", "1", "10"], ["MSFT", "2", "20"], ["AAPL", "3", "30"]]}
    )
    adapter = await make_sheets_adapter(sid)
    positions = await adapter.fetch_positions()
    assert [(p.symbol, p.qty) for p in positions] == [("AAPL", Decimal(1)), ("MSFT", Decimal(2))]
    assert adapter.last_read_errors == [
        "sheet 'Position' row 4: duplicate symbol 'AAPL' (first at row 2); this row is ignored"
    ]


async def test_ledger_rows_with_bad_values_are_reported_with_their_rows(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter
) -> None:
    headers = ["timestamp", "symbol", "side", "qty", "price", "order_id"]
    sid = sheets_standin.create_spreadsheet(
        {
            "T_Ledger": [
                headers,
                ["2024-01-02T00:00:00+00:00", "AAPL", "BUY", "1", "100", "o-1"],
                ["2024-01-02T00:00:01+00:00", "AAPL", "HOLD", "1", "100", "o-2"],
                ["2024-13-45 25:00", "AAPL", "BUY", "1", "100", "o-3"],
                ["2024-01-02T00:00:03+00:00", "AAPL", "SELL", "1", "1e400", "o-4"],
                ["2024-01-02T00:00:04+00:00", "AAPL", "SELL", "2", "101", "o-5"],
            ]
        }
    )
    adapter = await make_sheets_adapter(sid)
    entries = await adapter.fetch_ledger()
    assert [e.order_id for e in entries] == ["o-1", "o-5"]
    rows = [e.split(":")[0] for e in adapter.last_read_errors]
    assert rows == ["sheet 'T_Ledger' row 3", "sheet 'T_Ledger' row 4", "sheet 'T_Ledger' row 5"]
    assert "LedgerEntry.side" in adapter.last_read_errors[0]
    assert "LedgerEntry.timestamp" in adapter.last_read_errors[1]
    assert "LedgerEntry.price" in adapter.last_read_errors[2]


async def test_cells_typed_by_a_person_read_as_they_mean(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter
) -> None:
    """Numbers come as numbers, dates as serials in the sheet's zone, percentages as fractions."""
    headers = ["symbol", "qty", "avg_price", "exposure_pct", "exposure_value", "updated_at"]
    sid = sheets_standin.create_spreadsheet({"Position": [headers]}, time_zone="Asia/Seoul")
    sheets_standin.put_rows(
        sid,
        "Position",
        [["5930", "1,234.5", "71000", "12.5%", "-1,000.25", "2024-01-02 09:30:00"]],
        user_entered=True,
    )
    stored = sheets_standin.cells(sid, "Position")[1]
    assert stored[:5] == [5930, 1234.5, 71000, 0.125, -1000.25]
    assert isinstance(stored[5], DateTimeValue)
    adapter = await make_sheets_adapter(sid)
    [held] = await adapter.fetch_positions()
    assert held.symbol == "5930"  # a number in a text column is read as its text
    assert held.qty == Decimal("1234.5")
    assert held.avg_price == Decimal("71000")
    assert held.exposure_pct == Decimal("0.125")
    assert held.exposure_value == Decimal("-1000.25")
    assert held.updated_at == datetime(2024, 1, 2, 9, 30, tzinfo=KST)


async def test_the_timezone_setting_overrides_the_spreadsheet_s(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter
) -> None:
    sid = sheets_standin.create_spreadsheet(
        {"Position": [POSITION, ["AAPL", "1", "1", "", "2024-01-02 09:00:00"]]},
        time_zone="Asia/Seoul",
    )
    local = await make_sheets_adapter(sid)
    [held] = await local.fetch_positions()
    assert held.updated_at == datetime(2024, 1, 2, 0, 0, tzinfo=timezone.utc)
    new_york = await make_sheets_adapter(sid, timezone="America/New_York")
    [held] = await new_york.fetch_positions()
    assert held.updated_at == datetime(2024, 1, 2, 14, 0, tzinfo=timezone.utc)


async def test_raw_rows_are_the_displayed_text_of_every_column(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter
) -> None:
    sid = sheets_standin.create_spreadsheet(
        {"Position": [["symbol", "qty", "", "qty"], ["AAPL", 1.5, "x", True, "extra"]]}
    )
    adapter = await make_sheets_adapter(sid)
    rows = await adapter.fetch_raw_data("Position")
    assert rows == [
        {
            "symbol": "AAPL",
            "qty": "1.5",
            "column C": "x",
            "qty (column D)": "TRUE",
            "column E": "extra",
        }
    ]


async def test_krx_codes_typed_as_numbers_read_with_their_zeros_and_are_updated_in_place(
    sheets_standin: SheetsStandIn,
    make_sheets_adapter: MakeAdapter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sid = sheets_standin.create_spreadsheet({"Position": [POSITION]})
    # As a person types them: the cells become the numbers 5930 and 660.
    sheets_standin.put_rows(
        sid, "Position", [["005930", "3", "71000"], ["000660", "2", "120000"]], user_entered=True
    )
    assert [row[0] for row in sheets_standin.cells(sid, "Position")[1:]] == [5930, 660]
    adapter = await make_sheets_adapter(sid, symbol_format="krx", ensure_sheets=True)
    with caplog.at_level(logging.WARNING, logger="qts_data.sheets"):
        positions = await adapter.fetch_positions()
    assert [p.symbol for p in positions] == ["000660", "005930"]
    assert adapter.last_read_warnings == [
        "sheet 'Position' cell A2 (symbol): the number 5930 is in a symbol column; read as "
        "'005930'. Type codes as text (a leading ') to keep their zeros",
        "sheet 'Position' cell A3 (symbol): the number 660 is in a symbol column; read as "
        "'000660'. Type codes as text (a leading ') to keep their zeros",
    ]
    assert any("cell A2 (symbol)" in r.getMessage() for r in caplog.records)
    health = await adapter.health_check()
    assert health.state is HealthState.HEALTHY  # restored, and said
    assert health.details["last_read_warnings"] == 2

    held = positions[1]
    await adapter.save_position(held.model_copy(update={"qty": Decimal("4")}))
    rows = sheets_standin.cells(sid, "Position")
    assert len(rows) == 3  # row 2 was updated, no row appended
    assert [p.qty for p in await adapter.fetch_positions()] == [Decimal("2"), Decimal("4")]
    assert rows[1][0] == "005930"  # written back as text


async def test_a_number_in_a_symbol_column_is_said_and_degrades_health_as_text(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter
) -> None:
    sid = sheets_standin.create_spreadsheet({"Position": [POSITION]})
    sheets_standin.put_rows(sid, "Position", [["005930", "3", "71000"]], user_entered=True)
    adapter = await make_sheets_adapter(sid, ensure_sheets=True)
    [held] = await adapter.fetch_positions()
    assert held.symbol == "5930"
    [warning] = adapter.last_read_warnings
    assert warning.startswith("sheet 'Position' cell A2 (symbol): the number 5930")
    assert 'set symbol_format = "krx"' in warning
    health = await adapter.health_check()
    assert health.state is HealthState.DEGRADED
    assert "number(s) in symbol columns" in health.message


@pytest.mark.parametrize("typed", ["71.000,5", "1,0", "1,2,3", "1_000", "1,00,000", "12 5"])
async def test_numbers_outside_the_convention_are_bad_rows_naming_sheet_row_and_column(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter, typed: str
) -> None:
    sid = sheets_standin.create_spreadsheet({"Position": [POSITION]})
    sheets_standin.put_rows(
        sid,
        "Position",
        [["AAPL", "1,234", "1,234,500.25"], ["MSFT", typed, "1"]],
        user_entered=True,
    )
    adapter = await make_sheets_adapter(sid)
    [good] = await adapter.fetch_positions()
    assert (good.qty, good.avg_price) == (Decimal("1234"), Decimal("1234500.25"))
    assert adapter.last_read_errors == [
        f"sheet 'Position' row 3: column 'qty': {typed!r} is not a number "
        "(',' only between groups of three digits, '.' as the decimal point)"
    ]
