"""The memory tier: the most recent candles of each series, least-recently-used, with a TTL.

A series is one ``(symbol, interval)``. It keeps at most ``max_candles`` candles,
the most recent by bucket time (seeds/001: the last 1,000), and the spans it
covers (:class:`~qts_data.tiers.coverage.Coverage`). A series lives ``ttl_s``
from when it was created (refills do not extend it: after the TTL the series is
dropped and read again from a lower tier). At most ``max_series`` series are
held; using a series makes it the most recent, and the least recently used is
evicted first.

Reads are a dictionary lookup, a coverage check and two bisections: the hot
path does no I/O and no validation (the candles are immutable contracts).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from qts_data.contracts import OHLCV, Interval
from qts_data.tiers.coverage import Coverage, Span

__all__ = ["MemoryCandleTier"]

SeriesKey = tuple[str, Interval]


class _Series:
    __slots__ = ("coverage", "expires_at", "rows", "times")

    def __init__(self, expires_at: float) -> None:
        self.times: list[datetime] = []
        self.rows: list[OHLCV] = []
        self.coverage = Coverage()
        self.expires_at = expires_at

    def between(self, lo: datetime, hi: datetime) -> list[OHLCV]:
        times = self.times
        first = bisect_left(times, lo)
        return self.rows[first : bisect_left(times, hi, first)]

    def merge(self, candles: Iterable[OHLCV]) -> None:
        """Insert or replace candles by bucket time, keeping time order."""
        times, rows = self.times, self.rows
        pending: dict[datetime, OHLCV] = {}
        for candle in candles:
            when = candle.time
            if not times or when > times[-1]:
                if pending:  # keep order: anything out of order goes through the slow path
                    pending[when] = candle
                else:
                    times.append(when)
                    rows.append(candle)
            else:
                pending[when] = candle
        if not pending:
            return
        for index, when in enumerate(times):
            replacement = pending.pop(when, None)
            if replacement is not None:
                rows[index] = replacement
        if pending:
            merged = sorted(
                [*zip(times, rows, strict=True), *pending.items()], key=lambda item: item[0]
            )
            self.times = [item[0] for item in merged]
            self.rows = [item[1] for item in merged]

    def trim(self, keep: int) -> None:
        """Keep the ``keep`` most recent candles; coverage before the oldest kept one is forgotten."""
        excess = len(self.rows) - keep
        if excess <= 0:
            return
        del self.times[:excess], self.rows[:excess]
        self.coverage.clip_below(self.times[0])


class MemoryCandleTier:
    """An LRU of candle series with a per-series TTL and a bound on candles per series."""

    def __init__(
        self,
        *,
        max_candles: int = 1000,
        ttl_s: float = 3600.0,
        max_series: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_candles < 1 or max_series < 1 or ttl_s <= 0:
            raise ValueError("max_candles, max_series and ttl_s must be positive")
        self.max_candles = max_candles
        self.ttl_s = ttl_s
        self.max_series = max_series
        self._clock = clock
        self._series: OrderedDict[SeriesKey, _Series] = OrderedDict()
        self.evictions = 0
        self.expirations = 0

    def __len__(self) -> int:
        return len(self._series)

    @property
    def candles(self) -> int:
        return sum(len(series.rows) for series in self._series.values())

    def _get(self, key: SeriesKey) -> _Series | None:
        series = self._series.get(key)
        if series is None:
            return None
        if self._clock() >= series.expires_at:
            del self._series[key]
            self.expirations += 1
            return None
        self._series.move_to_end(key)
        return series

    def _get_or_create(self, key: SeriesKey) -> _Series:
        series = self._get(key)
        if series is None:
            series = self._series[key] = _Series(self._clock() + self.ttl_s)
            while len(self._series) > self.max_series:
                self._series.popitem(last=False)
                self.evictions += 1
        return series

    def lookup(
        self, symbol: str, interval: Interval, lo: datetime, hi: datetime
    ) -> tuple[list[OHLCV], list[Span]]:
        """Candles of the covered parts of ``[lo, hi)`` in time order, and the parts not covered."""
        series = self._get((symbol, interval))
        if series is None:
            return [], [(lo, hi)] if lo < hi else []
        coverage = series.coverage
        if coverage.covers(lo, hi):  # the common case: one slice
            return series.between(lo, hi), []
        covered, missing = coverage.split(lo, hi)
        found: list[OHLCV] = []
        for span_lo, span_hi in covered:
            found.extend(series.between(span_lo, span_hi))
        return found, missing

    def between(self, symbol: str, interval: Interval, lo: datetime, hi: datetime) -> list[OHLCV]:
        """Whatever candles are held in ``[lo, hi)``, covered or not (the not-yet-complete buckets)."""
        series = self._get((symbol, interval))
        return [] if series is None else series.between(lo, hi)

    def fill(
        self,
        symbol: str,
        interval: Interval,
        candles: Sequence[OHLCV],
        covered: Iterable[Span],
    ) -> None:
        """Add candles read from a lower tier, and the spans that read covered completely."""
        series = self._get_or_create((symbol, interval))
        series.merge(candles)
        for lo, hi in covered:
            series.coverage.add(lo, hi)
        series.trim(self.max_candles)

    def put(self, symbol: str, interval: Interval, candles: Sequence[OHLCV]) -> None:
        """Insert or replace written candles (an upsert) without claiming any coverage."""
        if not candles:
            return
        series = self._get_or_create((symbol, interval))
        series.merge(candles)
        series.trim(self.max_candles)

    def drop(self, symbol: str, interval: Interval) -> None:
        self._series.pop((symbol, interval), None)

    def clear(self) -> None:
        self._series.clear()
