"""The data-source adapter: the one interface every store implements (seeds/000 §3.2, seeds/002 §4.1)."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from qts_data.contracts import (
    OHLCV,
    ExecutionLog,
    Interval,
    LedgerEntry,
    Position,
    RiskConfig,
    StrategyParam,
    TickData,
)
from qts_data.errors import NotSupportedError
from qts_data.interfaces.component import Component

TickSource = Iterable[TickData] | AsyncIterable[TickData]


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What a bulk ingest did: rows offered, rows stored, rows skipped as duplicates."""

    received: int
    inserted: int

    @property
    def duplicates(self) -> int:
        return self.received - self.inserted


class Capability:
    """Names of the optional parts of the adapter interface (see ``DataSourceAdapter.capabilities``)."""

    POSITIONS = "positions"
    LEDGER = "ledger"
    TICKS = "ticks"
    OHLCV = "ohlcv"
    EXECUTION_LOGS = "execution_logs"
    STRATEGIES = "strategies"
    RISK = "risk"
    RAW = "raw"

    ALL: ClassVar[frozenset[str]] = frozenset(
        {POSITIONS, LEDGER, TICKS, OHLCV, EXECUTION_LOGS, STRATEGIES, RISK, RAW}
    )


class DataSourceAdapter(Component, abc.ABC):
    """A store of positions, ledger, market data, execution logs and configuration.

    Conventions every implementation follows (the conformance suite in
    :mod:`qts_data.testing` checks them):

    * time ranges are half-open, ``start <= t < end``, and results are in time order;
    * writes are idempotent where a retry can happen: a ledger entry is recorded
      once per :attr:`LedgerEntry.idempotency_key`, a tick once per
      :attr:`TickData.dedup_key`, a candle once per ``(interval, symbol, time)``;
    * a failed write leaves stored data as it was;
    * an operation the backend cannot do raises :class:`NotSupportedError`, and
      the capability is absent from :attr:`capabilities`.
    """

    #: The optional parts of the interface this adapter implements.
    capabilities: frozenset[str] = Capability.ALL

    def require(self, capability: str, operation: str) -> None:
        """Raise :class:`NotSupportedError` naming ``operation`` when ``capability`` is missing."""
        if capability not in self.capabilities:
            raise NotSupportedError(
                f"{self.name or type(self).__name__} ({type(self).__name__}) does not support "
                f"{operation} ({capability})"
            )

    # -- positions ---------------------------------------------------------
    @abc.abstractmethod
    async def fetch_positions(self) -> list[Position]:
        """Every position, ordered by symbol."""

    async def fetch_position(self, symbol: str) -> Position | None:
        """One position, or None. Adapters with an index override this."""
        for position in await self.fetch_positions():
            if position.symbol == symbol:
                return position
        return None

    @abc.abstractmethod
    async def save_position(self, position: Position) -> None:
        """Insert or replace the position of ``position.symbol`` atomically."""

    async def save_positions(self, positions: Iterable[Position]) -> int:
        """Insert or replace many positions; returns how many. Adapters that write them in
        fewer round trips than one each (a spreadsheet: one read, one batch) override it."""
        count = 0
        for position in positions:
            await self.save_position(position)
            count += 1
        return count

    async def update_position(
        self, symbol: str, qty: Decimal | int | str, avg_price: Decimal | int | str, **fields: Any
    ) -> Position:
        """Set the position of ``symbol`` (seeds/002 §4.1); returns the stored contract."""
        position = Position(symbol=symbol, qty=qty, avg_price=avg_price, **fields)
        await self.save_position(position)
        return position

    # -- ledger --------------------------------------------------------------
    @abc.abstractmethod
    async def append_ledger(self, entry: LedgerEntry) -> bool:
        """Record an execution. False when its idempotency key was already recorded."""

    async def append_ledger_batch(self, entries: Iterable[LedgerEntry]) -> int:
        """Record many executions; returns how many were new (idempotent like
        :meth:`append_ledger`). Adapters that append in one request override it."""
        new = 0
        for entry in entries:
            new += bool(await self.append_ledger(entry))
        return new

    @abc.abstractmethod
    async def fetch_ledger(
        self,
        symbol: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[LedgerEntry]:
        """Ledger entries, optionally of one symbol and in ``[start, end)``, by timestamp."""

    # -- market data ---------------------------------------------------------
    @abc.abstractmethod
    async def ingest_ticks(self, ticks: TickSource, *, batch_size: int = 10_000) -> IngestResult:
        """Store ticks in bulk, skipping duplicates (by ``dedup_key``). Memory stays bounded by ``batch_size``.

        Each batch is stored whole or not at all. An element that is not a
        :class:`TickData` fails its batch and stops the ingest with an error naming
        its position; earlier batches stay stored, and since ingest is idempotent
        the same source can simply be ingested again once corrected.
        """

    @abc.abstractmethod
    async def fetch_tick_data(self, symbol: str, start: datetime, end: datetime) -> list[TickData]:
        """Ticks of ``symbol`` in ``[start, end)``, in time order."""

    @abc.abstractmethod
    async def upsert_ohlcv(
        self, candles: Iterable[OHLCV], interval: Interval | str = Interval.D1
    ) -> int:
        """Insert or replace stored candles on ``(interval, symbol, time)``; returns how many were written."""

    @abc.abstractmethod
    async def fetch_ohlcv(
        self, symbol: str, start: datetime, end: datetime, interval: Interval | str = Interval.D1
    ) -> list[OHLCV]:
        """Candles of ``symbol`` whose bucket starts in ``[start, end)``, in time order.

        A bucket with a stored candle (``upsert_ohlcv``) returns it; a bucket with
        ticks but no stored candle is aggregated from the ticks (first, max, min,
        last price, summed volume), so the newest bar is never missing.
        """

    # -- execution logs --------------------------------------------------------
    @abc.abstractmethod
    async def store_execution_result(self, log: ExecutionLog) -> bool:
        """Record one execution stage (seeds/002 §2.1). True when stored; failures raise."""

    @abc.abstractmethod
    async def fetch_execution_logs(
        self,
        order_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[ExecutionLog]:
        """Execution logs, optionally of one order and in ``[start, end)``, by time."""

    # -- configuration ---------------------------------------------------------
    @abc.abstractmethod
    async def fetch_strategy_params(self, strategy_id: str | None = None) -> list[StrategyParam]:
        """Strategy parameters, ordered by ``(strategy_id, param_name)``."""

    @abc.abstractmethod
    async def save_strategy_param(self, param: StrategyParam) -> None:
        """Insert or replace on ``(strategy_id, param_name)``."""

    @abc.abstractmethod
    async def fetch_risk_configs(self) -> list[RiskConfig]:
        """Risk settings, ordered by ``config_key``."""

    @abc.abstractmethod
    async def save_risk_config(self, config: RiskConfig) -> None:
        """Insert or replace on ``config_key``."""

    # -- raw rows ----------------------------------------------------------------
    @abc.abstractmethod
    async def fetch_raw_data(self, sheet: str) -> list[dict[str, str]]:
        """The rows of a named sheet or table as header -> text (seeds/002 §2.1 ``fetch_raw_data``).

        Unknown names raise :class:`~qts_data.errors.QtsDataError` listing the known ones.
        """
