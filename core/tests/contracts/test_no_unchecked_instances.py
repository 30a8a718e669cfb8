"""No invalid contract can be made: changed copies and constructions are validated, text
holds no control characters, -0 is 0 (issue: hostile input is never stored)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from qts_data.contracts import OHLCV, ExecutionLog, LedgerEntry, Position, StrategyParam, TickData
from qts_data.errors import ContractError

T = datetime(2024, 5, 2, tzinfo=timezone.utc)
POSITION = Position(symbol="005930", qty=Decimal("10"), avg_price=Decimal("71000"))
LEDGER = LedgerEntry(timestamp=T, symbol="005930", side="BUY", qty=Decimal(1), price=Decimal(5))
CANDLE = OHLCV(time=T, symbol="X", open=10, high=12, low=9, close=11, volume=1)
TICK = TickData(time=T, symbol="X", price=1, volume=1)


@pytest.mark.parametrize(
    ("original", "update", "message"),
    [
        (POSITION, {"qty": Decimal(-5)}, r"^Position\.qty: Input should be greater than or equal to 0"),
        (TICK, {"price": Decimal("NaN")}, r"^TickData\.price: Input should be a finite number"),
        (LEDGER, {"side": "HOLD"}, r"^LedgerEntry\.side: "),
        (POSITION, {"symbol": "A" * 32}, r"^Position\.symbol: String should have at most 20"),
        (CANDLE, {"high": Decimal(8)}, r"^OHLCV: high 8 is below low 9"),
        (POSITION, {"quantity": 1}, r"^Position: unknown field\(s\) quantity"),
    ],
)  # fmt: skip
def test_a_changed_copy_is_validated(original: Any, update: dict[str, Any], message: str) -> None:
    with pytest.raises(ContractError, match=message):
        original.model_copy(update=update)


def test_a_valid_copy_is_an_equal_new_instance() -> None:
    changed = POSITION.model_copy(update={"qty": Decimal("3")})
    assert changed.qty == Decimal("3") and changed.avg_price == POSITION.avg_price
    assert POSITION.model_copy() == POSITION


def test_model_construct_validates_too() -> None:
    with pytest.raises(ContractError, match=r"^Position\.qty: "):
        Position.model_construct(symbol="005930", qty=Decimal(-1), avg_price=Decimal(1))
    assert Position.model_construct(symbol="A", qty=1, avg_price=2).qty == Decimal(1)


@pytest.mark.parametrize("char", ["\x00", "\x07", "\n", "\x1b", "\x7f", "\x85"])
@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda v: LEDGER.model_copy(update={"strategy_tag": f"a{v}b"}), "LedgerEntry.strategy_tag"),
        (lambda v: LEDGER.model_copy(update={"order_id": f"a{v}b"}), "LedgerEntry.order_id"),
        (lambda v: TICK.model_copy(update={"trade_id": f"a{v}b"}), "TickData.trade_id"),
        (lambda v: TICK.model_copy(update={"source": f"a{v}b"}), "TickData.source"),
        (
            lambda v: ExecutionLog(time=T, order_id=f"o{v}x", symbol="X", stage="sent", success=True),
            "ExecutionLog.order_id",
        ),
    ],
)  # fmt: skip
def test_control_characters_in_names_are_refused(build: Any, field: str, char: str) -> None:
    with pytest.raises(
        ContractError,
        match=rf"^{field}: Value error, |^{field}: contains the control character U\+{ord(char):04X}",
    ):
        build(char)


def test_free_text_keeps_tabs_and_line_breaks_but_not_nul() -> None:
    param = StrategyParam(strategy_id="s", param_name="p", value="a\tb\nc", description="x\r\ny")
    assert param.value == "a\tb\nc"
    with pytest.raises(
        ContractError, match=r"^StrategyParam\.value: contains the control character U\+0000"
    ):
        StrategyParam(strategy_id="s", param_name="p", value="a\x00b")


@pytest.mark.parametrize("zero", ["-0", "-0.00", "-0E-8"])
def test_negative_zero_is_zero(zero: str) -> None:
    position = Position(symbol="A", qty=zero, avg_price=zero, unrealized_pnl=zero)
    for value in (position.qty, position.avg_price, position.unrealized_pnl):
        assert value == 0 and not value.is_signed()
    assert '"-' not in position.to_json()
