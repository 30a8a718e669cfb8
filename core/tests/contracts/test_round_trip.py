"""JSON, database-row and Sheets-row forms round-trip every contract exactly."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qts_data.contracts import (
    OHLCV,
    Contract,
    ExecutionLog,
    HealthState,
    HealthStatus,
    LedgerEntry,
    Position,
    RiskConfig,
    StrategyParam,
    TickData,
)
from qts_data.errors import ContractError

KST = timezone(timedelta(hours=9))
T = datetime(2024, 5, 2, 0, 30, 15, 123456, tzinfo=timezone.utc)

utc_times = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(timezone.utc)
)
prices = st.decimals(
    min_value=0, max_value=Decimal("9999999999.99999999"), places=8, allow_nan=False
)
symbols = st.from_regex(r"[A-Z0-9][A-Z0-9.\-/]{0,19}", fullmatch=True)

EXAMPLES: list[Contract] = [
    Position(
        symbol="005930",
        qty="10.50000000",
        avg_price="71000.12345678",
        market="KRX",
        exposure_value="745501.30",
        exposure_pct="0.1234",
        unrealized_pnl="-1234.56",
        updated_at=T,
    ),
    LedgerEntry(
        timestamp=T,
        symbol="KRW-BTC",
        side="SELL",
        qty="0.00012345",
        price="95000000",
        fee="1.75",
        strategy_tag="scalp",
        order_id="ord-1",
        fill_id="2",
        broker="UPBIT",
    ),
    TickData(
        time=T,
        symbol="000660",
        price="182000.5",
        volume=12,
        bid="182000",
        ask="182001",
        source="KRX",
        trade_id="t-99",
    ),
    OHLCV(
        time=T,
        symbol="035420",
        open="1.10",
        high="2.00000001",
        low="1.0",
        close="1.5",
        volume=2**62,
    ),
    ExecutionLog(
        time=T,
        order_id="ord-1",
        symbol="005930",
        stage="PRECHECK",
        latency_ms="1.250",
        success=False,
        error_code="E42",
    ),
    StrategyParam(
        strategy_id="mean-revert", param_name="window", value="20", value_type="int", updated_at=T
    ),
    RiskConfig(
        config_key="max_position_krw", value="50000000.00000001", description="limit", updated_at=T
    ),
    HealthStatus(
        component="db",
        state=HealthState.DEGRADED,
        latency_ms=1.5,
        message="slow",
        details={"pool": {"used": 9, "size": 10}},
        checked_at=T,
    ),
]


@pytest.mark.parametrize("contract", EXAMPLES, ids=lambda c: type(c).__name__)
def test_json_round_trip_is_exact(contract: Contract) -> None:
    back = type(contract).from_json(contract.to_json())
    assert back == contract
    for name in type(contract).model_fields:
        assert str(getattr(back, name)) == str(getattr(contract, name)), (
            name
        )  # digits, not just value


@given(time=utc_times, price=prices, volume=st.integers(0, 2**63 - 1), symbol=symbols)
def test_tick_json_round_trip_keeps_digits_and_microseconds(
    time: datetime, price: Decimal, volume: int, symbol: str
) -> None:
    tick = TickData(time=time, symbol=symbol, price=price, volume=volume)
    back = TickData.from_json(tick.to_json())
    assert back.time == time
    assert back.time.microsecond == time.microsecond
    assert str(back.price) == str(price)


def test_decimal_digits_survive_json_as_strings() -> None:
    text = Position(symbol="A", qty="1.10", avg_price="0.00000001").to_json()
    assert '"qty":"1.10"' in text
    assert '"avg_price":"0.00000001"' in text


def test_from_json_reports_bad_json_as_contract_error() -> None:
    with pytest.raises(ContractError, match=r"^JSON: Position.qty"):
        Position.from_json('{"symbol": "A", "qty": "-1", "avg_price": "1"}')


@pytest.mark.parametrize(
    "contract", [c for c in EXAMPLES if c.db_columns], ids=lambda c: type(c).__name__
)
def test_database_row_round_trip(contract: Contract) -> None:
    row = dict(zip(contract.db_columns, contract.to_db_row(), strict=True))
    assert type(contract).from_db_row(row) == contract
    assert type(contract).from_db_row(row, trusted=True) == contract


def test_database_row_is_validated_unless_trusted() -> None:
    row: dict[str, Any] = {
        "symbol": "A",
        "qty": Decimal(-1),
        "avg_price": Decimal(1),
        "updated_at": T,
    }
    with pytest.raises(ContractError, match=r"^database row: Position.qty"):
        Position.from_db_row(row)


@pytest.mark.parametrize(
    "contract",
    [c for c in EXAMPLES if not isinstance(c, HealthStatus)],
    ids=lambda c: type(c).__name__,
)
def test_sheets_row_round_trip(contract: Contract) -> None:
    row = contract.to_sheets_row()
    assert all(isinstance(v, str) for v in row.values())
    assert type(contract).from_sheets_row(row) == contract


def test_sheets_row_with_formatted_numbers_and_local_times() -> None:
    row = {
        "symbol": "005930",
        "qty": "1,000",
        "avg_price": 71000.5,
        "market": "",
        "updated_at": "2024-05-02 09:30:15",
    }
    position = Position.from_sheets_row(row, tz=KST)
    assert position.qty == Decimal(1000)
    assert position.avg_price == Decimal("71000.5")
    assert position.market is None
    assert position.updated_at == datetime(2024, 5, 2, 0, 30, 15, tzinfo=timezone.utc)


def test_sheets_header_mapping() -> None:
    headers = {"symbol": "종목코드", "qty": "수량", "avg_price": "평균단가"}
    position = Position(symbol="005930", qty="3", avg_price="70000", updated_at=T)
    row = position.to_sheets_row(headers)
    assert row["종목코드"] == "005930"
    assert row["수량"] == "3"
    assert Position.from_sheets_row(row, headers=headers) == position
    with pytest.raises(ContractError, match="unknown field"):
        Position.headers({"sym": "x"})


def test_bad_sheet_cell_is_reported_with_where() -> None:
    with pytest.raises(
        ContractError,
        match=r"^sheet 'Position' row 4: column 'qty': 'abc' is not a number \(',' only between",
    ):
        Position.from_sheets_row(
            {"symbol": "A", "qty": "abc", "avg_price": "1"}, where="sheet 'Position' row 4"
        )


@pytest.mark.parametrize(
    ("cell", "field", "expected"),
    [
        (8.84 / 100, "exposure_pct", "0.0884"),  # 0.08839999999999999, as a person meant it
        (0.1 + 0.2, "unrealized_pnl", "0.30"),  # 0.30000000000000004, rounded half-even
        (70000.12, "avg_price", "70000.12"),
        (1e-8, "qty", "1E-8"),
    ],
)
def test_floats_from_cells_read_at_the_field_s_scale(
    cell: float, field: str, expected: str
) -> None:
    row = {"symbol": "A", "qty": 1, "avg_price": 2, field: cell}
    assert str(getattr(Position.from_sheets_row(row), field)) == expected


def test_a_float_with_more_digits_than_the_field_holds_is_refused_naming_it() -> None:
    with pytest.raises(ContractError, match=r"^sheet 'Position' row 3: Position\.exposure_pct: "):
        Position.from_sheets_row(
            {"symbol": "A", "qty": 1, "avg_price": 2, "exposure_pct": 1 / 3},
            where="sheet 'Position' row 3",
        )
