"""The real-time tier: ticks kept in memory only, for a TTL after they arrive (seeds/001).

Real-time market data (trades, ticker and order-book updates carried as
:class:`~qts_data.contracts.TickData`) is never persisted: it is held here,
per symbol in time order, deduplicated on :attr:`TickData.dedup_key`, for
``ttl_s`` after it was ingested (seeds/001: 30 minutes to an hour), and at
most ``max_ticks`` per symbol (the oldest by tick time go first). A tick that
expired and is ingested again is stored again.
"""

from __future__ import annotations

import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from datetime import datetime
from itertools import pairwise
from typing import Any

from qts_data.contracts import OHLCV, Interval, TickData
from qts_data.errors import ContractError

__all__ = ["RealtimeTickTier", "aggregate"]


class _Ticks:
    """One symbol's ticks: sorted by time, with the monotonic time each arrived."""

    __slots__ = ("arrived", "in_order", "keys", "memo", "rows", "times")

    def __init__(self) -> None:
        self.times: list[datetime] = []
        self.rows: list[TickData] = []
        self.arrived: list[float] = []
        self.keys: set[tuple[Any, ...]] = set()
        #: True while every tick was appended at the end, so arrival times are sorted too.
        self.in_order = True
        #: Candles aggregated since the ticks last changed, by (interval, bucket).
        self.memo: dict[tuple[Interval, datetime], OHLCV] = {}

    def add(self, tick: TickData, now: float) -> None:
        self.memo.clear()
        times = self.times
        when = tick.time
        if not times or when >= times[-1]:
            times.append(when)
            self.rows.append(tick)
            self.arrived.append(now)
        else:
            index = bisect_right(times, when)
            times.insert(index, when)
            self.rows.insert(index, tick)
            self.arrived.insert(index, now)
            self.in_order = False

    def expire(self, until: float) -> None:
        """Drop ticks that arrived at or before ``until``."""
        arrived = self.arrived
        if not arrived:
            return
        if self.in_order:
            if arrived[0] > until:
                return
            self._drop(slice(0, bisect_right(arrived, until)))
            return
        if min(arrived) > until:
            return
        self.memo.clear()
        kept = [i for i, stamp in enumerate(arrived) if stamp > until]
        for i, stamp in enumerate(arrived):
            if stamp <= until:
                self.keys.discard(self.rows[i].dedup_key)
        self.times = [self.times[i] for i in kept]
        self.rows = [self.rows[i] for i in kept]
        self.arrived = [arrived[i] for i in kept]
        self.in_order = all(a <= b for a, b in pairwise(self.arrived))

    def _drop(self, part: slice) -> None:
        self.memo.clear()
        for tick in self.rows[part]:
            self.keys.discard(tick.dedup_key)
        del self.times[part], self.rows[part], self.arrived[part]

    def bound(self, max_ticks: int) -> None:
        excess = len(self.rows) - max_ticks
        if excess > 0:
            self._drop(slice(0, excess))


class RealtimeTickTier:
    """Ticks per symbol, in memory only, each kept ``ttl_s`` after it arrived."""

    def __init__(
        self,
        *,
        ttl_s: float = 1800.0,
        max_ticks: int = 1_000_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_s <= 0 or max_ticks < 1:
            raise ValueError("ttl_s and max_ticks must be positive")
        self.ttl_s = ttl_s
        self.max_ticks = max_ticks
        self._clock = clock
        self._ticks: dict[str, _Ticks] = {}

    def __len__(self) -> int:
        return sum(len(series.rows) for series in self._ticks.values())

    def has(self, symbol: str) -> bool:
        return symbol in self._ticks

    def add(self, batch: list[Any], offset: int = 0) -> int:
        """Add a batch of ticks, skipping duplicates; returns how many were new.

        The batch is checked whole first: an element that is not a TickData raises
        :class:`ContractError` naming its position, and nothing of the batch is added.
        """
        for index, tick in enumerate(batch):
            if not isinstance(tick, TickData):
                raise ContractError(
                    f"ingest_ticks: element {offset + index} is {type(tick).__name__}, not TickData; "
                    f"its batch of {len(batch)} (elements {offset}-{offset + len(batch) - 1}) was not stored"
                )
        now = self._clock()
        touched: dict[str, _Ticks] = {}
        inserted = 0
        for tick in batch:
            series = touched.get(tick.symbol)
            if series is None:
                series = self._series(tick.symbol, now)
                touched[tick.symbol] = series
            key = tick.dedup_key
            if key in series.keys:
                continue
            series.keys.add(key)
            series.add(tick, now)
            inserted += 1
        for series in touched.values():
            series.bound(self.max_ticks)
        return inserted

    def _series(self, symbol: str, now: float) -> _Ticks:
        series = self._ticks.get(symbol)
        if series is None:
            series = self._ticks[symbol] = _Ticks()
        else:
            series.expire(now - self.ttl_s)
        return series

    def _live(self, symbol: str) -> _Ticks | None:
        series = self._ticks.get(symbol)
        if series is None:
            return None
        series.expire(self._clock() - self.ttl_s)
        if not series.rows:
            del self._ticks[symbol]
            return None
        return series

    def between(self, symbol: str, start: datetime, end: datetime) -> list[TickData]:
        """Ticks of ``symbol`` in ``[start, end)``, in time order."""
        series = self._live(symbol)
        if series is None or start >= end:
            return []
        first = bisect_left(series.times, start)
        return series.rows[first : bisect_left(series.times, end, first)]

    def candles(
        self, symbol: str, interval: Interval, lo: datetime, hi: datetime, skip: Iterable[datetime]
    ) -> list[OHLCV]:
        """Candles aggregated from the ticks of buckets starting in ``[lo, hi)`` (aligned), except ``skip``.

        An aggregated candle is remembered until the symbol's ticks change, so
        repeated reads do not aggregate the same ticks again.
        """
        series = self._live(symbol)
        if series is None:
            return []
        times, rows, memo = series.times, series.rows, series.memo
        index = bisect_left(times, lo)
        upto = bisect_left(times, hi, index)
        if index >= upto:
            return []
        excluded = set(skip)
        delta = interval.delta
        out: list[OHLCV] = []
        while index < upto:
            bucket = interval.floor(times[index])
            end = bisect_left(times, bucket + delta, index, upto)
            if bucket not in excluded:
                candle = memo.get((interval, bucket))
                if candle is None:
                    candle = memo[(interval, bucket)] = aggregate(rows[index:end], bucket)
                out.append(candle)
            index = end
        return out

    def clear(self) -> None:
        self._ticks.clear()


def aggregate(ticks: list[TickData], bucket: datetime) -> OHLCV:
    """The candle of ``ticks`` (one bucket's, in time order): first, max, min, last price, summed volume."""
    prices = [tick.price for tick in ticks]
    return OHLCV(
        time=bucket,
        symbol=ticks[0].symbol,
        open=prices[0],
        high=max(prices),
        low=min(prices),
        close=prices[-1],
        volume=sum(tick.volume for tick in ticks),
    )
