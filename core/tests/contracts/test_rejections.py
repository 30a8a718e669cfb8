"""Bad input gets a clear error naming the contract, the field and the problem."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from qts_data.contracts import (
    OHLCV,
    ExecutionLog,
    LedgerEntry,
    Position,
    RiskConfig,
    StrategyParam,
    TickData,
)
from qts_data.errors import ContractError

T = datetime(2024, 5, 2, 0, 30, 15, 123456, tzinfo=timezone.utc)
TICK = {"time": T, "symbol": "005930", "price": "71000", "volume": 10}
CANDLE = {
    "time": T,
    "symbol": "005930",
    "open": 10,
    "high": 12,
    "low": 9,
    "close": 11,
    "volume": 100,
}
LEDGER = {"timestamp": T, "symbol": "005930", "side": "BUY", "qty": "1", "price": "71000"}
POSITION = {"symbol": "005930", "qty": "10", "avg_price": "71000"}

CASES: list[tuple[str, type[Any], dict[str, Any], str]] = [
    (
        "naive datetime",
        TickData,
        {**TICK, "time": datetime(2024, 5, 2)},
        "TickData.time: Input should have timezone info",
    ),
    (
        "naive datetime string",
        LedgerEntry,
        {**LEDGER, "timestamp": "2024-05-02T00:00:00"},
        "LedgerEntry.timestamp: Input should have timezone info",
    ),
    (
        "NaN price",
        TickData,
        {**TICK, "price": float("nan")},
        "TickData.price: Input should be a finite number",
    ),
    (
        "NaN string",
        Position,
        {**POSITION, "avg_price": "NaN"},
        "Position.avg_price: Input should be a finite number",
    ),
    (
        "infinite price",
        OHLCV,
        {**CANDLE, "high": float("inf")},
        "OHLCV.high: Input should be a finite number",
    ),
    (
        "Decimal infinity",
        Position,
        {**POSITION, "qty": Decimal("Infinity")},
        "Position.qty: Input should be a finite number",
    ),
    (
        "negative quantity",
        Position,
        {**POSITION, "qty": "-1"},
        "Position.qty: Input should be greater than or equal to 0",
    ),
    (
        "negative fill",
        LedgerEntry,
        {**LEDGER, "qty": "-5"},
        "LedgerEntry.qty: Input should be greater than 0",
    ),
    (
        "zero fill",
        LedgerEntry,
        {**LEDGER, "qty": "0"},
        "LedgerEntry.qty: Input should be greater than 0",
    ),
    (
        "negative volume",
        TickData,
        {**TICK, "volume": -1},
        "TickData.volume: Input should be greater than or equal to 0",
    ),
    (
        "unknown side",
        LedgerEntry,
        {**LEDGER, "side": "HOLD"},
        "LedgerEntry.side: Input should be 'BUY' or 'SELL'",
    ),
    (
        "lowercase side",
        LedgerEntry,
        {**LEDGER, "side": "buy"},
        "LedgerEntry.side: Input should be 'BUY' or 'SELL'",
    ),
    (
        "high below low",
        OHLCV,
        {**CANDLE, "high": 8, "low": 9, "open": 8, "close": 8},
        "OHLCV: high 8 is below low 9",
    ),
    (
        "open above high",
        OHLCV,
        {**CANDLE, "open": 13},
        "OHLCV: open 13 is outside [low 9, high 12]",
    ),
    (
        "close below low",
        OHLCV,
        {**CANDLE, "close": 8},
        "OHLCV: close 8 is outside [low 9, high 12]",
    ),
    (
        "empty symbol",
        Position,
        {**POSITION, "symbol": ""},
        "Position.symbol: String should have at least 1 character",
    ),
    (
        "blank symbol",
        TickData,
        {**TICK, "symbol": "   "},
        "TickData.symbol: String should have at least 1 character",
    ),
    (
        "SQL in symbol",
        TickData,
        {**TICK, "symbol": "X'; DROP TABLE t--"},
        "TickData.symbol: String should match pattern",
    ),
    (
        "overlong symbol",
        Position,
        {**POSITION, "symbol": "A" * 21},
        "Position.symbol: String should have at most 20 characters",
    ),
    (
        "too many decimal places",
        TickData,
        {**TICK, "price": "1.123456789"},
        "TickData.price: Decimal input should have no more than 8 decimal places",
    ),
    (
        "float noise",
        Position,
        {**POSITION, "qty": 0.1 + 0.2},
        "Position.qty: Decimal input should have no more than 8 decimal places",
    ),
    (
        "huge number",
        TickData,
        {**TICK, "price": "1e30"},
        "TickData.price: Decimal input should have no more than 18 digits",
    ),
    (
        "amount with fractions of a cent",
        LedgerEntry,
        {**LEDGER, "amount": "1.001"},
        "LedgerEntry.amount: Decimal input should have no more than 2 decimal places",
    ),
    (
        "text as number",
        Position,
        {**POSITION, "qty": "ten"},
        "Position.qty: Input should be a valid decimal",
    ),
    (
        "bool as price",
        TickData,
        {**TICK, "price": True},
        "TickData.price: Decimal input should be an integer, float, string or Decimal",
    ),
    (
        "missing field",
        OHLCV,
        {k: v for k, v in CANDLE.items() if k != "close"},
        "OHLCV.close: Field required",
    ),
    (
        "unknown field",
        Position,
        {**POSITION, "colour": "red"},
        "Position.colour: Extra inputs are not permitted",
    ),
    (
        "strategy value of the wrong type",
        StrategyParam,
        {"strategy_id": "s1", "param_name": "window", "value": "ten", "value_type": "int"},
        "StrategyParam: value 'ten' is not a valid int",
    ),
    (
        "unknown value type",
        StrategyParam,
        {"strategy_id": "s1", "param_name": "w", "value": "1", "value_type": "complex"},
        "StrategyParam.value_type: Input should be",
    ),
    (
        "risk value not a number",
        RiskConfig,
        {"config_key": "max", "value": "lots"},
        "RiskConfig.value: Input should be a valid decimal",
    ),
    (
        "negative latency",
        ExecutionLog,
        {
            "time": T,
            "order_id": "o1",
            "symbol": "005930",
            "stage": "SEND",
            "latency_ms": "-1",
            "success": True,
        },
        "ExecutionLog.latency_ms: Input should be greater than or equal to 0",
    ),
    (
        "empty order id",
        ExecutionLog,
        {"time": T, "order_id": "", "symbol": "005930", "stage": "SEND", "success": True},
        "ExecutionLog.order_id: String should have at least 1 character",
    ),
]


@pytest.mark.parametrize(
    ("contract", "data", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_rejected_with_a_message_naming_field_and_problem(
    contract: type[Any], data: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ContractError) as info:
        contract(**data)
    assert expected in str(info.value)
    assert "\n" not in str(info.value), "errors are one line"


@pytest.mark.parametrize(
    ("contract", "data", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_parse_names_where_the_bad_data_came_from(
    contract: type[Any], data: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ContractError, match=r"^sheet 'ledger' row 7: "):
        contract.parse(data, where="sheet 'ledger' row 7")


def test_contracts_are_immutable() -> None:
    position = Position(**POSITION)
    with pytest.raises(Exception, match="frozen"):
        position.qty = Decimal(5)  # type: ignore[misc]


def test_contract_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        Position(**{**POSITION, "qty": "-1"})


def test_times_in_other_zones_are_normalised_to_utc() -> None:
    tick = TickData(**{**TICK, "time": "2024-05-02T09:30:15.123456+09:00"})
    assert tick.time == T
    assert tick.time.tzinfo is timezone.utc


def test_ledger_amount_defaults_to_qty_times_price_rounded_half_even() -> None:
    entry = LedgerEntry(**{**LEDGER, "qty": "3", "price": "0.125"})
    assert entry.amount == Decimal("0.38")  # 0.375 -> 0.38 (half-even rounds to the even cent)
    entry = LedgerEntry(**{**LEDGER, "qty": "1", "price": "0.125"})
    assert entry.amount == Decimal("0.12")


def test_ledger_idempotency_key() -> None:
    assert LedgerEntry(**LEDGER).idempotency_key is None
    assert LedgerEntry(**LEDGER, order_id="A1").idempotency_key == "A1"
    assert LedgerEntry(**LEDGER, order_id="A1", fill_id="2").idempotency_key == "A1#2"


def test_tick_dedup_key_distinguishes_trades_in_the_same_microsecond() -> None:
    a = TickData(**TICK, trade_id="1")
    b = TickData(**TICK, trade_id="2")
    assert a.dedup_key != b.dedup_key
    assert TickData(**TICK).dedup_key == TickData(**TICK).dedup_key


def test_strategy_param_typed_values() -> None:
    def param(value: str, kind: str) -> StrategyParam:
        return StrategyParam(strategy_id="s", param_name="p", value=value, value_type=kind)

    assert param("20", "int").typed_value == 20
    assert param("0.5", "decimal").typed_value == Decimal("0.5")
    assert param("yes", "bool").typed_value is True
    assert param('{"a": [1]}', "json").typed_value == {"a": [1]}
    assert param("x", "string").typed_value == "x"
