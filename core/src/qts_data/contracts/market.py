"""Market data: ticks and candles (seeds/002, sections 3.2.1, 3.2.2, 3.3.1)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from qts_data.contracts._base import UTC, Contract, Name64, Price, Symbol, Text20, UtcDatetime
from qts_data.errors import ContractError

Volume = Annotated[int, Field(ge=0, le=2**63 - 1, strict=False)]


class Interval(str, Enum):
    """A candle interval. Buckets are aligned to the Unix epoch in UTC."""

    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    H1 = "1h"
    D1 = "1d"

    @property
    def delta(self) -> timedelta:
        return _DELTAS[self]

    @property
    def seconds(self) -> int:
        return int(_DELTAS[self].total_seconds())

    def ceil(self, when: datetime) -> datetime:
        """The first bucket start at or after ``when``."""
        floor = self.floor(when)
        return floor if floor >= when else floor + self.delta

    def floor(self, when: datetime) -> datetime:
        """The start of the bucket holding ``when``."""
        step = self.seconds
        ts = int(when.timestamp())
        return datetime.fromtimestamp(ts - ts % step, UTC)

    @classmethod
    def parse(cls, value: str | Interval) -> Interval:
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(i.value for i in cls)
            raise ContractError(f"unknown interval {value!r}: expected one of {allowed}") from None


_DELTAS = {
    Interval.M1: timedelta(minutes=1),
    Interval.M5: timedelta(minutes=5),
    Interval.M15: timedelta(minutes=15),
    Interval.H1: timedelta(hours=1),
    Interval.D1: timedelta(days=1),
}


class TickData(Contract):
    """One trade or quote (hypertable ``tick_data``).

    ``trade_id`` is the exchange's id for the trade. Time and symbol alone do not
    identify a trade (many trades share a microsecond), so :attr:`dedup_key` is
    ``(symbol, time, trade_id)`` when the id is known and every field otherwise.
    """

    db_columns: ClassVar[tuple[str, ...]] = (
        "time",
        "symbol",
        "price",
        "volume",
        "bid",
        "ask",
        "source",
        "trade_id",
    )

    time: UtcDatetime
    symbol: Symbol
    price: Price
    volume: Volume
    bid: Price | None = None
    ask: Price | None = None
    source: Text20 | None = None
    trade_id: Name64 | None = None

    @property
    def dedup_key(self) -> tuple[Any, ...]:
        if self.trade_id is not None:
            return (self.symbol, self.time, self.trade_id)
        return (
            self.symbol,
            self.time,
            None,
            self.price,
            self.volume,
            self.bid,
            self.ask,
            self.source,
        )


class OHLCV(Contract):
    """One candle (hypertable ``ohlcv_1d``; aggregate ``ohlcv_1m``). ``time`` is the bucket start."""

    db_columns: ClassVar[tuple[str, ...]] = (
        "time",
        "symbol",
        "open",
        "high",
        "low",
        "close",
        "volume",
    )

    time: UtcDatetime
    symbol: Symbol
    open: Price
    high: Price
    low: Price
    close: Price
    volume: Volume

    @model_validator(mode="after")
    def _consistent_range(self) -> OHLCV:
        if self.high < self.low:
            raise ValueError(f"high {self.high} is below low {self.low}")
        for name in ("open", "close"):
            value: Decimal = getattr(self, name)
            if not self.low <= value <= self.high:
                raise ValueError(f"{name} {value} is outside [low {self.low}, high {self.high}]")
        return self


class BookLevel(Contract):
    """One price level of an order book."""

    price: Price
    qty: Annotated[Decimal, Field(ge=0, max_digits=28, decimal_places=8, allow_inf_nan=False)]


class OrderBook(Contract):
    """One side of an order book (``book:{symbol}:{side}``): bids best-first descending, asks ascending."""

    symbol: Symbol
    side: Literal["bid", "ask"]
    levels: tuple[BookLevel, ...]
    time: UtcDatetime

    @model_validator(mode="after")
    def _sorted_best_first(self) -> OrderBook:
        prices = [level.price for level in self.levels]
        expected = sorted(prices, reverse=self.side == "bid")
        if prices != expected:
            raise ValueError(f"{self.side} levels must be sorted best first")
        if len(set(prices)) != len(prices):
            raise ValueError("two levels share a price")
        return self
