"""Writes: RAW input, positions updated in place by symbol, batches in few requests,
read-only configuration sheets, worksheet creation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from qts_data.contracts import LedgerEntry, Position, RiskConfig, StrategyParam
from qts_data.errors import BackendError, ContractError, NotSupportedError, QtsDataError
from qts_data_sheets.adapter import SheetsAdapter
from qts_data_sheets.testing import SheetsStandIn

MakeAdapter = Callable[..., Awaitable[SheetsAdapter]]
T0 = datetime(2024, 1, 2, tzinfo=timezone.utc)
WRITES = ("values.append", "values.update", "values.batchUpdate")


def entry(seconds: int = 0, **fields: object) -> LedgerEntry:
    values: dict[str, object] = {"symbol": "AAPL", "side": "BUY", "qty": 1, "price": 100}
    values.update(fields)
    return LedgerEntry(timestamp=T0 + timedelta(seconds=seconds), **values)


async def test_values_are_written_raw_and_stored_verbatim(
    sheets_standin: SheetsStandIn, adapter: SheetsAdapter, spreadsheet: str
) -> None:
    tricky = entry(order_id="001234", strategy_tag="=1+1", broker="+82", fill_id="1e5")
    assert await adapter.append_ledger(tricky)
    await adapter.update_position("005930", "0.00000001", "9876543210.12345678", market="=A1")
    header, row = sheets_standin.cells(spreadsheet, "T_Ledger")
    stored = dict(zip(header, row, strict=False))
    assert stored["order_id"] == "001234"
    assert stored["strategy_tag"] == "=1+1"
    assert stored["broker"] == "+82"
    assert stored["fill_id"] == "1e5"
    assert stored["timestamp"] == "2024-01-02T00:00:00+00:00"
    header, row = sheets_standin.cells(spreadsheet, "Position")
    stored = dict(zip(header, row, strict=False))
    assert stored["symbol"] == "005930"
    assert stored["qty"] == "0.00000001"
    assert stored["avg_price"] == "9876543210.12345678"
    assert stored["market"] == "=A1"
    writes = sheets_standin.requests_for(*WRITES)
    assert writes, "no write reached the stand-in"
    assert {w.value_input_option for w in writes} == {"RAW"}
    [back] = await adapter.fetch_ledger()
    assert back == tricky
    [held] = await adapter.fetch_positions()
    assert held.qty == Decimal("0.00000001")
    assert held.market == "=A1"


async def test_a_position_is_updated_in_place_by_symbol(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter
) -> None:
    headers = ["note", "symbol", "qty", "avg_price", "market", "updated_at", "owner"]
    sid = sheets_standin.create_spreadsheet(
        {
            "Position": [
                headers,
                ["keep", "MSFT", "1", "300", "US", "2024-01-01T00:00:00+00:00", "kim"],
                ["mine", "AAPL", "10", "150", "US", "2024-01-01T00:00:00+00:00", "lee"],
                ["", "TSLA", "5", "200", "", "2024-01-01T00:00:00+00:00"],
            ]
        }
    )
    adapter = await make_sheets_adapter(sid)
    grid_before = sheets_standin.grid(sid, "Position")
    sheets_standin.clear_log()
    await adapter.update_position("AAPL", 12, "151.5", market="NASDAQ")
    rows = sheets_standin.cells(sid, "Position")
    assert len(rows) == 4  # no row added
    assert sheets_standin.grid(sid, "Position") == grid_before
    assert rows[2][:5] == ["mine", "AAPL", "12", "151.5", "NASDAQ"]
    assert rows[2][6] == "lee"  # columns the adapter does not map are left alone
    assert rows[1][:2] == ["keep", "MSFT"]
    assert [r.operation for r in sheets_standin.requests_for()] == [
        "values.get",
        "values.batchUpdate",
    ]
    [update] = sheets_standin.requests_for("values.batchUpdate")
    assert [d["range"] for d in update.body["data"]] == ["'Position'!B3:F3"]
    # A new symbol is appended.
    await adapter.update_position("NVDA", 1, 500)
    rows = sheets_standin.cells(sid, "Position")
    assert len(rows) == 5
    assert rows[4][1:4] == ["NVDA", "1", "500"]
    assert [p.symbol for p in await adapter.fetch_positions()] == ["AAPL", "MSFT", "NVDA", "TSLA"]


async def test_save_positions_writes_a_batch_in_three_requests(
    sheets_standin: SheetsStandIn, adapter: SheetsAdapter, spreadsheet: str
) -> None:
    await adapter.save_positions([Position(symbol=s, qty=1, avg_price=1) for s in ("A", "B", "C")])
    sheets_standin.clear_log()
    batch = [Position(symbol=s, qty=2, avg_price=3) for s in ("B", "C", "D", "E")]
    batch.append(Position(symbol="D", qty=9, avg_price=9))  # the last one of a symbol wins
    assert await adapter.save_positions(batch) == 4
    assert [r.operation for r in sheets_standin.requests_for()] == [
        "values.get",
        "values.batchUpdate",
        "values.append",
    ]
    held = {p.symbol: (p.qty, p.avg_price) for p in await adapter.fetch_positions()}
    one, two, three, nine = (Decimal(n) for n in (1, 2, 3, 9))
    assert held == {
        "A": (one, one),
        "B": (two, three),
        "C": (two, three),
        "D": (nine, nine),
        "E": (two, three),
    }
    assert sheets_standin.data_rows(spreadsheet, "Position") == 5


async def test_append_ledger_batch_uses_one_append_and_skips_known_keys(
    sheets_standin: SheetsStandIn, adapter: SheetsAdapter, spreadsheet: str
) -> None:
    assert await adapter.append_ledger(entry(0, order_id="o-1"))
    sheets_standin.clear_log()
    batch = [
        entry(1, order_id="o-1"),  # already in the sheet
        entry(2, order_id="o-2"),
        entry(3, order_id="o-2"),  # twice in the batch
        entry(4, order_id="o-3", fill_id="1"),
        entry(5),  # no order id: always stored
    ]
    assert await adapter.append_ledger_batch(batch) == 3
    assert [r.operation for r in sheets_standin.requests_for()] == ["values.append"]
    stored = await adapter.fetch_ledger()
    assert [(e.order_id, e.fill_id) for e in stored] == [
        ("o-1", None),
        ("o-2", None),
        ("o-3", "1"),
        (None, None),
    ]
    assert await adapter.append_ledger_batch(batch) == 1  # only the keyless one again


async def test_a_bad_element_of_a_batch_writes_nothing(
    sheets_standin: SheetsStandIn, adapter: SheetsAdapter, spreadsheet: str
) -> None:
    bad: list[object] = [entry(1, order_id="a"), {"symbol": "AAPL"}]
    with pytest.raises(ContractError, match="append_ledger_batch: element 1 is a dict"):
        await adapter.append_ledger_batch(bad)  # type: ignore[arg-type]
    assert sheets_standin.data_rows(spreadsheet, "T_Ledger") == 0


async def test_a_new_adapter_knows_the_keys_already_in_the_sheet(
    make_sheets_adapter: MakeAdapter, spreadsheet: str
) -> None:
    first = await make_sheets_adapter()
    assert await first.append_ledger(entry(order_id="o-1", fill_id="f"))
    second = await make_sheets_adapter()
    assert await second.append_ledger(entry(9, order_id="o-1", fill_id="f")) is False
    assert await second.append_ledger(entry(9, order_id="o-1")) is True


async def test_strategy_and_risk_sheets_are_read_only_by_default(
    sheets_standin: SheetsStandIn, adapter: SheetsAdapter, spreadsheet: str
) -> None:
    sheets_standin.put_rows(
        spreadsheet,
        "Strategy",
        [
            ["momentum", "window", "20", "int", "lookback"],
            ["momentum", "enabled", "TRUE", "bool"],
            ["alpha", "z", "0.5", "decimal"],
        ],
    )
    sheets_standin.put_rows(
        spreadsheet, "Risk_Config", [["max_loss", "1,000,000"], ["cooldown", "30"]]
    )
    params = await adapter.fetch_strategy_params()
    assert [(p.strategy_id, p.param_name, p.typed_value) for p in params] == [
        ("alpha", "z", Decimal("0.5")),
        ("momentum", "enabled", True),
        ("momentum", "window", 20),
    ]
    assert [p.param_name for p in await adapter.fetch_strategy_params("momentum")] == [
        "enabled",
        "window",
    ]
    configs = await adapter.fetch_risk_configs()
    assert [(c.config_key, c.value) for c in configs] == [
        ("cooldown", Decimal(30)),
        ("max_loss", Decimal(1_000_000)),
    ]
    assert adapter.read_only_capabilities == {"strategies", "risk"}
    with pytest.raises(
        NotSupportedError, match=r"save_strategy_param: the worksheet 'Strategy' is read-only"
    ):
        await adapter.save_strategy_param(StrategyParam(strategy_id="s", param_name="p", value="v"))
    with pytest.raises(
        NotSupportedError, match=r"save_risk_config: the worksheet 'Risk_Config' is read-only"
    ):
        await adapter.save_risk_config(RiskConfig(config_key="k", value=1))
    assert sheets_standin.requests_for(*WRITES) == []


async def test_writable_config_upserts_strategy_rows_by_key(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter, spreadsheet: str
) -> None:
    adapter = await make_sheets_adapter(writable_config=True)
    assert adapter.read_only_capabilities == frozenset()
    await adapter.save_strategy_param(StrategyParam(strategy_id="s", param_name="p", value="1"))
    await adapter.save_strategy_param(StrategyParam(strategy_id="s", param_name="p", value="2"))
    await adapter.save_strategy_param(StrategyParam(strategy_id="s", param_name="q", value="3"))
    assert sheets_standin.data_rows(spreadsheet, "Strategy") == 2
    assert [p.value for p in await adapter.fetch_strategy_params()] == ["2", "3"]


async def test_raw_data_reads_configured_and_extra_sheets_only(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter, spreadsheet: str
) -> None:
    sheets_standin.add_sheet(spreadsheet, "Universe", [["symbol", "sector"], ["AAPL", "tech"]])
    adapter = await make_sheets_adapter(raw_sheets=["Universe"])
    assert await adapter.fetch_raw_data("universe") == [{"symbol": "AAPL", "sector": "tech"}]
    assert await adapter.fetch_raw_data("risk-config") == []
    with pytest.raises(QtsDataError) as info:
        await adapter.fetch_raw_data("Orders")
    message = str(info.value)
    assert "unknown sheet 'Orders'" in message
    assert "Universe" in message and "positions" in message and "T_Ledger" in message


async def test_ensure_sheets_adds_missing_worksheets_and_header_rows(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter
) -> None:
    sid = sheets_standin.create_spreadsheet({"Position": [], "Notes": [["free text"]]})
    adapter = await make_sheets_adapter(sid, ensure_sheets=True)
    assert sheets_standin.sheet_titles(sid) == [
        "Position",
        "Notes",
        "T_Ledger",
        "Strategy",
        "Risk_Config",
    ]
    assert sheets_standin.cells(sid, "Position")[0][:3] == ["symbol", "qty", "avg_price"]
    assert sheets_standin.cells(sid, "T_Ledger")[0][0] == "timestamp"
    assert sheets_standin.cells(sid, "Notes") == [["free text"]]
    assert [r.operation for r in sheets_standin.requests_for()] == [
        "spreadsheets.get",
        "spreadsheets.batchUpdate",  # one request adds the three missing worksheets
        "spreadsheets.get",
        "values.batchGet",  # the header rows of the four
        "values.batchUpdate",  # writes the empty ones
    ]
    await adapter.update_position("AAPL", 1, 1)
    assert [p.symbol for p in await adapter.fetch_positions()] == ["AAPL"]


async def test_a_missing_worksheet_is_named(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter
) -> None:
    sid = sheets_standin.create_spreadsheet({"Position": [["symbol", "qty", "avg_price"]]})
    adapter = await make_sheets_adapter(sid)
    with pytest.raises(
        BackendError, match=r"no worksheet 'T_Ledger' for ledger \(worksheets: Position\)"
    ):
        await adapter.fetch_ledger()
