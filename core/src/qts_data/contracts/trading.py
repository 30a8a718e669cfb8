"""Positions, the trade ledger and execution logs (seeds/002, sections 3.1.1, 3.1.2, 3.2.3)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from qts_data.contracts._base import (
    Amount,
    Contract,
    Fee,
    FillQuantity,
    Fraction,
    LatencyMs,
    Name50,
    Name100,
    Price,
    Quantity,
    Symbol,
    Text10,
    Text20,
    Text50,
    UtcDatetime,
    utc_now,
)

CENT = Decimal("0.01")


class Position(Contract):
    """The current position in one symbol (table ``positions``)."""

    db_columns: ClassVar[tuple[str, ...]] = (
        "symbol",
        "qty",
        "avg_price",
        "market",
        "exposure_value",
        "exposure_pct",
        "unrealized_pnl",
        "updated_at",
    )

    symbol: Symbol
    qty: Quantity
    avg_price: Price
    market: Text10 | None = None
    exposure_value: Amount | None = None
    exposure_pct: Fraction | None = None
    unrealized_pnl: Amount | None = None
    updated_at: UtcDatetime = Field(default_factory=utc_now)

    def same_holding(self, other: Position) -> bool:
        """True when both describe the same holding (symbol, quantity, average price)."""
        return (self.symbol, self.qty, self.avg_price) == (other.symbol, other.qty, other.avg_price)


class LedgerEntry(Contract):
    """One execution in the trade ledger (table ``t_ledger``).

    ``order_id`` (with ``fill_id`` for orders filled in parts) is the idempotency
    key: an adapter records an entry once, however often the write is retried.
    ``amount`` defaults to ``qty * price`` rounded half-even to the cent.
    """

    db_columns: ClassVar[tuple[str, ...]] = (
        "timestamp",
        "symbol",
        "side",
        "qty",
        "price",
        "amount",
        "fee",
        "strategy_tag",
        "order_id",
        "fill_id",
        "broker",
    )

    timestamp: UtcDatetime
    symbol: Symbol
    side: Literal["BUY", "SELL"]
    qty: FillQuantity
    price: Price
    amount: Amount = None  # type: ignore[assignment]  # filled in by the validator below
    fee: Fee = Decimal("0")
    strategy_tag: Text50 | None = None
    order_id: Name100 | None = None
    fill_id: Name100 | None = None
    broker: Text20 | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_amount(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("amount") in (None, ""):
            try:
                qty = Decimal(str(data["qty"]))
                price = Decimal(str(data["price"]))
                data = {**data, "amount": (qty * price).quantize(CENT, ROUND_HALF_EVEN)}
            except Exception:
                pass  # the field validators report the bad qty or price
        return data

    @property
    def idempotency_key(self) -> str | None:
        """``order_id`` (``order_id#fill_id`` for a partial fill); None when there is no order id."""
        if self.order_id is None:
            return None
        return self.order_id if self.fill_id is None else f"{self.order_id}#{self.fill_id}"

    @property
    def signed_amount(self) -> Decimal:
        """Cash flow of the entry: negative for a buy, positive for a sell."""
        return -self.amount if self.side == "BUY" else self.amount


class ExecutionLog(Contract):
    """One stage of an order's execution with its latency (hypertable ``execution_logs``)."""

    db_columns: ClassVar[tuple[str, ...]] = (
        "time",
        "order_id",
        "symbol",
        "stage",
        "latency_ms",
        "success",
        "error_code",
    )

    time: UtcDatetime
    order_id: Name100
    symbol: Symbol
    stage: Name50
    latency_ms: LatencyMs | None = None
    success: bool
    error_code: Text50 | None = None


class Order(Contract):
    """The state of one order, as cached under ``ord:{order_id}``."""

    order_id: Name100
    symbol: Symbol
    side: Literal["BUY", "SELL"]
    qty: FillQuantity
    price: Price | None = None  # None for a market order
    filled_qty: Quantity = Decimal("0")
    status: Literal["NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "REJECTED"] = "NEW"
    strategy_tag: Text50 | None = None
    updated_at: UtcDatetime = Field(default_factory=utc_now)

    @model_validator(mode="after")
    def _filled_within_qty(self) -> Order:
        if self.filled_qty > self.qty:
            raise ValueError(f"filled_qty {self.filled_qty} exceeds qty {self.qty}")
        return self
