"""The in-memory data-source adapter: every capability, held in Python structures.

Time-ordered data (ledger, ticks, candles, execution logs) is kept sorted in
lists with a parallel list of times, so a half-open range ``[start, end)`` is
two bisections. Appends in time order, the common case, are O(1) amortised;
an out-of-order row is inserted after the rows of equal time, so rows with the
same time keep their insertion order.

Every method validates its whole input first and then mutates without
awaiting, so a write is atomic with respect to other coroutines and a failed
write leaves the store as it was.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left, bisect_right
from collections.abc import AsyncIterable, Iterable, Iterator
from datetime import datetime
from typing import Any, Generic, TypeVar

from qts_data.contracts import (
    OHLCV,
    Contract,
    ExecutionLog,
    HealthState,
    HealthStatus,
    Interval,
    LedgerEntry,
    Position,
    RiskConfig,
    StrategyParam,
    TickData,
)
from qts_data.contracts.checks import check_range as _check_range
from qts_data.contracts.checks import expect_element as _expect
from qts_data.errors import ContractError, ElementTypeError
from qts_data.interfaces import DataSourceAdapter, IngestResult, TickSource
from qts_data.interfaces.raw import RAW_SHEETS, raw_sheet_name

__all__ = ["SHEETS", "ElementTypeError", "MemoryAdapter"]

T = TypeVar("T")


class _Series(Generic[T]):
    """Rows kept in time order, with their times alongside for bisection."""

    __slots__ = ("rows", "times")

    def __init__(self) -> None:
        self.times: list[datetime] = []
        self.rows: list[T] = []

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, when: datetime, row: T) -> None:
        times = self.times
        if not times or when >= times[-1]:
            times.append(when)
            self.rows.append(row)
        else:  # after the rows of equal time: stable
            index = bisect_right(times, when)
            times.insert(index, when)
            self.rows.insert(index, row)

    def bounds(self, start: datetime | None, end: datetime | None) -> tuple[int, int]:
        times = self.times
        lo = 0 if start is None else bisect_left(times, start)
        hi = len(times) if end is None else bisect_left(times, end, lo)
        return lo, hi

    def between(self, start: datetime | None, end: datetime | None) -> list[T]:
        lo, hi = self.bounds(start, end)
        return self.rows[lo:hi]


class _Candles:
    """The stored candles of one (interval, symbol): bucket start -> candle, plus sorted starts."""

    __slots__ = ("by_time", "times")

    def __init__(self) -> None:
        self.by_time: dict[datetime, OHLCV] = {}
        self.times: list[datetime] = []

    def put(self, candle: OHLCV) -> None:
        when = candle.time
        if when not in self.by_time:
            times = self.times
            if not times or when > times[-1]:
                times.append(when)
            else:
                times.insert(bisect_left(times, when), when)
        self.by_time[when] = candle


SHEETS = RAW_SHEETS


def _sheet_name(sheet: str) -> str:
    return raw_sheet_name(sheet, "memory adapter")


class MemoryAdapter(DataSourceAdapter):
    """A :class:`DataSourceAdapter` over Python dicts and sorted lists. Nothing persists."""

    def __init__(self) -> None:
        self._positions: dict[str, Position] = {}
        self._ledger: _Series[LedgerEntry] = _Series()
        self._ledger_keys: set[str] = set()
        self._ticks: dict[str, _Series[TickData]] = {}
        self._tick_keys: set[tuple[Any, ...]] = set()
        self._candles: dict[tuple[Interval, str], _Candles] = {}
        self._logs: _Series[ExecutionLog] = _Series()
        self._strategies: dict[tuple[str, str], StrategyParam] = {}
        self._risk: dict[str, RiskConfig] = {}

    # -- positions -------------------------------------------------------------------------
    async def fetch_positions(self) -> list[Position]:
        positions = self._positions
        return [positions[symbol] for symbol in sorted(positions)]

    async def fetch_position(self, symbol: str) -> Position | None:
        return self._positions.get(symbol)

    async def save_position(self, position: Position) -> None:
        _expect(position, Position, "save_position")
        self._positions[position.symbol] = position

    # -- ledger -------------------------------------------------------------------------------
    async def append_ledger(self, entry: LedgerEntry) -> bool:
        _expect(entry, LedgerEntry, "append_ledger")
        key = entry.idempotency_key
        if key is not None:
            if key in self._ledger_keys:
                return False
            self._ledger_keys.add(key)
        self._ledger.add(entry.timestamp, entry)
        return True

    async def fetch_ledger(
        self,
        symbol: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[LedgerEntry]:
        _check_range(start, end, "fetch_ledger")
        rows = self._ledger.between(start, end)
        if symbol is None:
            return rows
        return [row for row in rows if row.symbol == symbol]

    # -- ticks ------------------------------------------------------------------------------------
    async def ingest_ticks(self, ticks: TickSource, *, batch_size: int = 10_000) -> IngestResult:
        """Store ticks in batches of ``batch_size``, yielding to the event loop between batches.

        Each batch is validated whole and then applied at once. A bad element
        raises :class:`ElementTypeError` naming its position in the stream; its
        batch is not applied, the batches before it stay stored.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        received = inserted = 0
        batch: list[TickData] = []
        if isinstance(ticks, AsyncIterable):
            async for tick in ticks:
                batch.append(tick)
                if len(batch) >= batch_size:
                    inserted += self._apply_ticks(batch, received)
                    received += len(batch)
                    batch = []
                    await asyncio.sleep(0)
        else:
            for tick in ticks:
                batch.append(tick)
                if len(batch) >= batch_size:
                    inserted += self._apply_ticks(batch, received)
                    received += len(batch)
                    batch = []
                    await asyncio.sleep(0)
        if batch:
            inserted += self._apply_ticks(batch, received)
            received += len(batch)
        return IngestResult(received=received, inserted=inserted)

    def _apply_ticks(self, batch: list[TickData], offset: int) -> int:
        for index, tick in enumerate(batch):
            if not isinstance(tick, TickData):
                raise ElementTypeError(
                    f"ingest_ticks: element {offset + index} is {type(tick).__name__}, not TickData; "
                    f"its batch of {len(batch)} (elements {offset}-{offset + len(batch) - 1}) was not stored"
                )
        keys = self._tick_keys
        series_of = self._ticks
        inserted = 0
        for tick in batch:
            key = tick.dedup_key
            if key in keys:
                continue
            keys.add(key)
            series = series_of.get(tick.symbol)
            if series is None:
                series = series_of[tick.symbol] = _Series()
            series.add(tick.time, tick)
            inserted += 1
        return inserted

    async def fetch_tick_data(self, symbol: str, start: datetime, end: datetime) -> list[TickData]:
        _check_range(start, end, "fetch_tick_data")
        series = self._ticks.get(symbol)
        return [] if series is None else series.between(start, end)

    # -- candles ------------------------------------------------------------------------------
    async def upsert_ohlcv(
        self, candles: Iterable[OHLCV], interval: Interval | str = Interval.D1
    ) -> int:
        step = Interval.parse(interval)
        rows = list(candles)
        for index, candle in enumerate(rows):
            _expect(candle, OHLCV, f"upsert_ohlcv: candle {index}")
            bucket = step.floor(candle.time)
            if bucket != candle.time:
                raise ContractError(
                    f"upsert_ohlcv: candle {index} ({candle.symbol} at {candle.time.isoformat()}) "
                    f"is not aligned to the {step.value} interval: its bucket starts at "
                    f"{bucket.isoformat()}; nothing was written"
                )
        stored = self._candles
        for candle in rows:
            series = stored.get((step, candle.symbol))
            if series is None:
                series = stored[(step, candle.symbol)] = _Candles()
            series.put(candle)
        return len(rows)

    async def fetch_ohlcv(
        self, symbol: str, start: datetime, end: datetime, interval: Interval | str = Interval.D1
    ) -> list[OHLCV]:
        step = Interval.parse(interval)
        _check_range(start, end, "fetch_ohlcv")
        if start >= end:
            return []
        stored = self._candles.get((step, symbol))
        by_time: dict[datetime, OHLCV] = stored.by_time if stored is not None else {}
        result: list[OHLCV] = []
        if stored is not None:
            times = stored.times
            lo = bisect_left(times, start)
            hi = bisect_left(times, end, lo)
            result = [by_time[when] for when in times[lo:hi]]
        series = self._ticks.get(symbol)
        if series is None or not series.times:
            return result
        # Ticks whose bucket starts in [start, end) are those in [ceil(start), ceil(end)).
        lo, hi = series.bounds(step.ceil(start), step.ceil(end))
        aggregated = list(self._aggregate(series, lo, hi, step, by_time))
        if not aggregated:
            return result
        if not result:
            return aggregated
        result.extend(aggregated)
        result.sort(key=lambda candle: candle.time)
        return result

    @staticmethod
    def _aggregate(
        series: _Series[TickData], lo: int, hi: int, step: Interval, skip: dict[datetime, OHLCV]
    ) -> Iterator[OHLCV]:
        """Candles of the buckets of ``series.rows[lo:hi]`` that have no stored candle."""
        times, rows, delta = series.times, series.rows, step.delta
        while lo < hi:
            bucket = step.floor(times[lo])
            upto = bisect_left(times, bucket + delta, lo, hi)
            if bucket not in skip:
                ticks = rows[lo:upto]
                prices = [tick.price for tick in ticks]
                yield OHLCV(
                    time=bucket,
                    symbol=ticks[0].symbol,
                    open=prices[0],
                    high=max(prices),
                    low=min(prices),
                    close=prices[-1],
                    volume=sum(tick.volume for tick in ticks),
                )
            lo = upto

    # -- execution logs -----------------------------------------------------------------------
    async def store_execution_result(self, log: ExecutionLog) -> bool:
        _expect(log, ExecutionLog, "store_execution_result")
        self._logs.add(log.time, log)
        return True

    async def fetch_execution_logs(
        self,
        order_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[ExecutionLog]:
        _check_range(start, end, "fetch_execution_logs")
        rows = self._logs.between(start, end)
        if order_id is None:
            return rows
        return [row for row in rows if row.order_id == order_id]

    # -- configuration -----------------------------------------------------------------------
    async def fetch_strategy_params(self, strategy_id: str | None = None) -> list[StrategyParam]:
        params = self._strategies
        return [
            params[key] for key in sorted(params) if strategy_id is None or key[0] == strategy_id
        ]

    async def save_strategy_param(self, param: StrategyParam) -> None:
        _expect(param, StrategyParam, "save_strategy_param")
        self._strategies[(param.strategy_id, param.param_name)] = param

    async def fetch_risk_configs(self) -> list[RiskConfig]:
        configs = self._risk
        return [configs[key] for key in sorted(configs)]

    async def save_risk_config(self, config: RiskConfig) -> None:
        _expect(config, RiskConfig, "save_risk_config")
        self._risk[config.config_key] = config

    # -- raw rows -------------------------------------------------------------------------------
    async def fetch_raw_data(self, sheet: str) -> list[dict[str, str]]:
        """Rows as header -> text for ``positions``, ``ledger``, ``strategies``,
        ``risk_configs`` and ``execution_logs`` (or the seed's tab names, see :data:`SHEETS`)."""
        name = _sheet_name(sheet)
        rows: list[Contract]
        if name == "positions":
            rows = list(await self.fetch_positions())
        elif name == "ledger":
            rows = list(self._ledger.rows)
        elif name == "strategies":
            rows = list(await self.fetch_strategy_params())
        elif name == "risk_configs":
            rows = list(await self.fetch_risk_configs())
        else:
            rows = list(self._logs.rows)
        return [row.to_sheets_row() for row in rows]

    # -- health ---------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Rows held per kind."""
        return {
            "positions": len(self._positions),
            "ledger": len(self._ledger),
            "ticks": sum(len(series) for series in self._ticks.values()),
            "tick_symbols": len(self._ticks),
            "candles": sum(len(series.by_time) for series in self._candles.values()),
            "execution_logs": len(self._logs),
            "strategy_params": len(self._strategies),
            "risk_configs": len(self._risk),
        }

    async def health_check(self) -> HealthStatus:
        started = time.perf_counter()
        details = self.counts()
        return HealthStatus(
            component=self.name or "memory",
            state=HealthState.HEALTHY,
            latency_ms=(time.perf_counter() - started) * 1000,
            details=details,
        )

    def describe(self) -> dict[str, Any]:
        return {"persistent": False}
