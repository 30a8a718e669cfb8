"""A synthetic market: realistic-looking ticks and daily candles, reproducible from a seed.

Prices follow a geometric random walk rounded to each symbol's tick size;
trades arrive at random intervals (exponential gaps) with lognormal sizes;
bid and ask straddle the trade price by one tick.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from qts_data.contracts import OHLCV, TickData


@dataclass(frozen=True)
class Instrument:
    symbol: str
    price: Decimal  # starting price
    tick: Decimal  # price increment
    lot: int  # typical trade size
    source: str


DEFAULT_INSTRUMENTS = (
    Instrument("005930", Decimal("71000"), Decimal("100"), 40, "KRX"),
    Instrument("000660", Decimal("182000"), Decimal("500"), 12, "KRX"),
    Instrument("035420", Decimal("191500"), Decimal("500"), 8, "KRX"),
    Instrument("KRW-BTC", Decimal("95000000"), Decimal("1000"), 1, "UPBIT"),
    Instrument("KRW-ETH", Decimal("4500000"), Decimal("1000"), 3, "UPBIT"),
)


class SyntheticMarket:
    """Generates ticks for a set of instruments between two times."""

    def __init__(
        self,
        instruments: tuple[Instrument, ...] = DEFAULT_INSTRUMENTS,
        *,
        seed: int = 7,
        ticks_per_minute: float = 60.0,
        volatility: float = 0.0004,
    ) -> None:
        self.instruments = instruments
        self.seed = seed
        self.ticks_per_minute = ticks_per_minute
        self.volatility = volatility

    def ticks(self, start: datetime, end: datetime) -> Iterator[TickData]:
        """Ticks of every instrument in ``[start, end)``, merged in time order."""
        rng = random.Random(self.seed)
        gap_us = 60e6 / self.ticks_per_minute
        # per instrument: (time of its next trade, current price, trade sequence)
        state: list[tuple[datetime, float, int]] = [
            (start + timedelta(microseconds=rng.expovariate(1 / gap_us)), float(inst.price), 0)
            for inst in self.instruments
        ]
        while True:
            i = min(range(len(state)), key=lambda j: state[j][0])
            when, price, seq = state[i]
            if when >= end:
                return
            inst = self.instruments[i]
            price *= math.exp(rng.gauss(0.0, self.volatility))
            tick = float(inst.tick)
            rounded = Decimal(max(1, round(price / tick))) * inst.tick
            volume = max(1, int(rng.lognormvariate(math.log(inst.lot), 0.8)))
            yield TickData(
                time=when,
                symbol=inst.symbol,
                price=rounded,
                volume=volume,
                bid=rounded - inst.tick,
                ask=rounded + inst.tick,
                source=inst.source,
                trade_id=f"{inst.symbol}-{seq}",
            )
            gap = timedelta(microseconds=max(1, int(rng.expovariate(1 / gap_us))))
            state[i] = (when + gap, price, seq + 1)

    def daily_candles(self, symbol: str, last_day: datetime, days: int) -> list[OHLCV]:
        """``days`` daily candles ending with the day that starts at ``last_day`` (UTC midnight)."""
        inst = next(i for i in self.instruments if i.symbol == symbol)
        rng = random.Random(f"{self.seed}-{symbol}")
        close = float(inst.price) * 0.9
        candles = []
        for n in range(days):
            day = last_day - timedelta(days=days - 1 - n)
            open_ = close
            moves = [open_ * math.exp(rng.gauss(0, 0.01)) for _ in range(4)]
            close = moves[-1]
            q = inst.tick

            def snap(value: float, q: Decimal = q) -> Decimal:
                return Decimal(max(1, round(value / float(q)))) * q

            o, c = snap(open_), snap(close)
            h = max(snap(max([*moves, open_])), o, c)
            low = min(snap(min([*moves, open_])), o, c)
            candles.append(
                OHLCV(
                    time=day,
                    symbol=symbol,
                    open=o,
                    high=h,
                    low=low,
                    close=c,
                    volume=int(rng.lognormvariate(math.log(inst.lot * 50_000), 0.3)),
                )
            )
        return candles
