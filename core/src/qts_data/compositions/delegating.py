"""An adapter that passes every call to another one; the base of the compositions."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from qts_data.contracts import (
    OHLCV,
    ExecutionLog,
    HealthStatus,
    Interval,
    LedgerEntry,
    Position,
    RiskConfig,
    StrategyParam,
    TickData,
)
from qts_data.interfaces import DataSourceAdapter, IngestResult, TickSource


class DelegatingAdapter(DataSourceAdapter):
    """Forwards every operation to ``inner``; subclasses override what they change."""

    def __init__(self, inner: DataSourceAdapter) -> None:
        self.inner = inner
        self.capabilities = inner.capabilities

    async def fetch_positions(self) -> list[Position]:
        return await self.inner.fetch_positions()

    async def fetch_position(self, symbol: str) -> Position | None:
        return await self.inner.fetch_position(symbol)

    async def save_position(self, position: Position) -> None:
        await self.inner.save_position(position)

    async def append_ledger(self, entry: LedgerEntry) -> bool:
        return await self.inner.append_ledger(entry)

    async def fetch_ledger(
        self, symbol: str | None = None, start: datetime | None = None, end: datetime | None = None
    ) -> list[LedgerEntry]:
        return await self.inner.fetch_ledger(symbol, start, end)

    async def ingest_ticks(self, ticks: TickSource, *, batch_size: int = 10_000) -> IngestResult:
        return await self.inner.ingest_ticks(ticks, batch_size=batch_size)

    async def fetch_tick_data(self, symbol: str, start: datetime, end: datetime) -> list[TickData]:
        return await self.inner.fetch_tick_data(symbol, start, end)

    async def upsert_ohlcv(
        self, candles: Iterable[OHLCV], interval: Interval | str = Interval.D1
    ) -> int:
        return await self.inner.upsert_ohlcv(candles, interval)

    async def fetch_ohlcv(
        self, symbol: str, start: datetime, end: datetime, interval: Interval | str = Interval.D1
    ) -> list[OHLCV]:
        return await self.inner.fetch_ohlcv(symbol, start, end, interval)

    async def store_execution_result(self, log: ExecutionLog) -> bool:
        return await self.inner.store_execution_result(log)

    async def fetch_execution_logs(
        self,
        order_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[ExecutionLog]:
        return await self.inner.fetch_execution_logs(order_id, start, end)

    async def fetch_strategy_params(self, strategy_id: str | None = None) -> list[StrategyParam]:
        return await self.inner.fetch_strategy_params(strategy_id)

    async def save_strategy_param(self, param: StrategyParam) -> None:
        await self.inner.save_strategy_param(param)

    async def fetch_risk_configs(self) -> list[RiskConfig]:
        return await self.inner.fetch_risk_configs()

    async def save_risk_config(self, config: RiskConfig) -> None:
        await self.inner.save_risk_config(config)

    async def fetch_raw_data(self, sheet: str) -> list[dict[str, str]]:
        return await self.inner.fetch_raw_data(sheet)

    async def health_check(self) -> HealthStatus:
        return await self.inner.health_check()
