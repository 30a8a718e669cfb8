"""Shared by the tier tests: a settable clock, candles, a recording upstream source, a gap-checking store."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from qts_data.contracts import OHLCV, Interval
from qts_data.sources import SyntheticMarketSource, SyntheticSourceSettings
from qts_data_memory.adapter import MemoryAdapter

UTC = timezone.utc
#: A Monday, half past noon: the current 1h bucket is 12:00-13:00, the current day is open.
NOW = datetime(2026, 1, 5, 12, 30, tzinfo=UTC)
TODAY = datetime(2026, 1, 5, tzinfo=UTC)


class Clock:
    """A settable clock: call it for seconds (as time.time / time.monotonic), ``now()`` for a datetime."""

    def __init__(self, start: datetime = NOW) -> None:
        self.t = start.timestamp()

    def __call__(self) -> float:
        return self.t

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)

    def advance(self, seconds: float) -> None:
        self.t += seconds


def candle(when: datetime, price: str = "100", volume: int = 1, symbol: str = "BTC") -> OHLCV:
    p = Decimal(price)
    return OHLCV(time=when, symbol=symbol, open=p, high=p, low=p, close=p, volume=volume)


def hours(start: datetime, count: int, symbol: str = "BTC", price: str = "100") -> list[OHLCV]:
    return [candle(start + timedelta(hours=n), price, n, symbol) for n in range(count)]


@dataclass
class Call:
    symbol: str
    interval: Interval
    start: datetime
    end: datetime


class RecordingSource(SyntheticMarketSource):
    """The synthetic source on a settable clock, recording every call; ``down`` makes it fail."""

    def __init__(self, clock: Clock, **settings: object) -> None:
        super().__init__(SyntheticSourceSettings.model_validate(settings), now=clock.now)
        self.log: list[Call] = []
        self.down = False

    async def fetch_candles(
        self, symbol: str, interval: Interval | str, start: datetime, end: datetime
    ) -> list[OHLCV]:
        self.log.append(Call(symbol, Interval.parse(interval), start, end))
        if self.down:
            raise ConnectionError("exchange unreachable")
        return await super().fetch_candles(symbol, interval, start, end)


class GapStore(MemoryAdapter):
    """A memory store that also answers ``find_gaps`` (GapChecking), recording the calls."""

    def __init__(self) -> None:
        super().__init__()
        self.gap_calls: list[tuple[datetime, datetime]] = []

    async def find_gaps(
        self, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> list[datetime]:
        self.gap_calls.append((start, end))
        have = {c.time for c in await self.fetch_ohlcv(symbol, start, end, interval)}
        out = []
        when = start
        while when < end:
            if when not in have:
                out.append(when)
            when += interval.delta
        return out


def times(candles: Iterable[OHLCV]) -> list[datetime]:
    return [c.time for c in candles]
