"""Header rows: a missing, renamed or repeated header is an error naming the sheet and the header."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

import pytest

from qts_data.contracts import LedgerEntry, Position
from qts_data.errors import ContractError
from qts_data_sheets.adapter import SheetsAdapter
from qts_data_sheets.mapping import HeaderError
from qts_data_sheets.testing import SheetsStandIn

MakeAdapter = Callable[..., Awaitable[SheetsAdapter]]

POSITION_HEADERS = [
    "symbol",
    "qty",
    "avg_price",
    "market",
    "exposure_value",
    "exposure_pct",
    "unrealized_pnl",
    "updated_at",
]


async def test_a_renamed_header_names_the_sheet_and_the_header(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter
) -> None:
    headers = ["symbol", "qty", "avg price", "market"]
    sid = sheets_standin.create_spreadsheet({"Position": [headers, ["AAPL", "1", "2"]]})
    adapter = await make_sheets_adapter(sid)
    with pytest.raises(HeaderError) as info:
        await adapter.fetch_positions()
    message = str(info.value)
    assert "sheet 'Position'" in message
    assert "missing header 'avg_price'" in message
    assert "renamed to 'avg price'?" in message
    assert isinstance(info.value, ContractError)


async def test_every_missing_required_header_is_listed(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter
) -> None:
    sid = sheets_standin.create_spreadsheet({"T_Ledger": [["timestamp", "symbol", "note"]]})
    adapter = await make_sheets_adapter(sid)
    with pytest.raises(HeaderError) as info:
        await adapter.fetch_ledger()
    message = str(info.value)
    assert "sheet 'T_Ledger': missing header 'side'" in message
    assert "also missing: 'qty', 'price'" in message
    assert "'note'" in message  # what the header row does have


async def test_a_repeated_header_is_an_error(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter
) -> None:
    sid = sheets_standin.create_spreadsheet({"Position": [["symbol", "qty", "avg_price", "qty"]]})
    adapter = await make_sheets_adapter(sid)
    with pytest.raises(
        HeaderError,
        match=r"sheet 'Position': header 'qty' appears more than once \(columns B and D\)",
    ):
        await adapter.fetch_positions()


async def test_an_empty_header_row_is_an_error(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter
) -> None:
    sid = sheets_standin.create_spreadsheet({"Position": []})
    adapter = await make_sheets_adapter(sid)
    with pytest.raises(
        HeaderError, match=r"sheet 'Position' has no header row .*symbol, qty, avg_price"
    ):
        await adapter.fetch_positions()


async def test_configured_headers_map_fields_to_the_sheet_s_own_names(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter
) -> None:
    korean = {"symbol": "종목코드", "qty": "수량", "avg_price": "평균단가"}
    sid = sheets_standin.create_spreadsheet(
        {"포지션": [["종목코드", "수량", "평균단가", "updated_at"], ["005930", "10", "71000.5"]]}
    )
    adapter = await make_sheets_adapter(
        sid, worksheets={"positions": "포지션"}, headers={"positions": korean}
    )
    [held] = await adapter.fetch_positions()
    assert (held.symbol, str(held.qty), str(held.avg_price)) == ("005930", "10", "71000.5")
    await adapter.update_position("000660", 2, 150000)
    rows = sheets_standin.cells(sid, "포지션")
    assert rows[0] == ["종목코드", "수량", "평균단가", "updated_at"]
    assert rows[2][:3] == ["000660", "2", "150000"]


async def test_optional_headers_may_be_missing_for_reads(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter
) -> None:
    sid = sheets_standin.create_spreadsheet(
        {"Position": [["symbol", "qty", "avg_price"], ["AAPL", "3", "10"]]}
    )
    adapter = await make_sheets_adapter(sid)
    [held] = await adapter.fetch_positions()
    assert held.market is None
    assert adapter.last_read_errors == []


async def test_a_value_without_a_column_is_refused_and_nothing_is_written(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter
) -> None:
    sid = sheets_standin.create_spreadsheet(
        {"Position": [["symbol", "qty", "avg_price", "updated_at"]]}
    )
    adapter = await make_sheets_adapter(sid)
    before = len(sheets_standin.requests_for("values.append", "values.batchUpdate"))
    with pytest.raises(HeaderError, match=r"sheet 'Position': no header 'market' to write"):
        await adapter.save_position(Position(symbol="AAPL", qty=1, avg_price=1, market="US"))
    assert len(sheets_standin.requests_for("values.append", "values.batchUpdate")) == before
    assert sheets_standin.data_rows(sid, "Position") == 0
    # Without a market the same position fits the sheet.
    await adapter.save_position(Position(symbol="AAPL", qty=1, avg_price=1))
    assert sheets_standin.data_rows(sid, "Position") == 1


async def test_a_ledger_entry_whose_order_id_has_no_column_is_refused(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter
) -> None:
    headers = ["timestamp", "symbol", "side", "qty", "price", "amount", "fee"]
    sid = sheets_standin.create_spreadsheet({"T_Ledger": [headers]})
    adapter = await make_sheets_adapter(sid)
    entry = LedgerEntry(
        timestamp=datetime(2024, 1, 2, tzinfo=timezone.utc),
        symbol="AAPL",
        side="BUY",
        qty=1,
        price=1,
        order_id="o-1",
    )
    with pytest.raises(HeaderError, match="no header 'order_id'"):
        await adapter.append_ledger(entry)
    assert sheets_standin.data_rows(sid, "T_Ledger") == 0


async def test_a_header_moved_while_running_is_seen_before_the_next_append(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter, spreadsheet: str
) -> None:
    """A column inserted by hand is noticed (``layout_ttl_s``), not written into blindly."""
    adapter = await make_sheets_adapter(layout_ttl_s=0)
    when = datetime(2024, 1, 2, tzinfo=timezone.utc)
    first = LedgerEntry(timestamp=when, symbol="A", side="BUY", qty=1, price=1, order_id="o-1")
    assert await adapter.append_ledger(first)
    rows = sheets_standin.cells(spreadsheet, "T_Ledger")
    moved = [["note", *rows[0]], *[[None, *r] for r in rows[1:]]]
    sheets_standin.put_rows(spreadsheet, "T_Ledger", moved, user_entered=False, start_row=0)
    second = LedgerEntry(timestamp=when, symbol="B", side="SELL", qty=2, price=3, order_id="o-2")
    assert await adapter.append_ledger(second)
    assert [e.order_id for e in await adapter.fetch_ledger()] == ["o-1", "o-2"]
    assert sheets_standin.cells(spreadsheet, "T_Ledger")[2][:3] == [None, when.isoformat(), "B"]
