"""The ``hybrid`` composition: Google Sheets and a database during the migration (seeds/002 §4.4, §5).

Modes (``DataSourceMode``):

* ``SHEETS_ONLY``: every operation goes to the Sheets adapter;
* ``HYBRID``: reads from the configured primary; writes go to the primary and
  then to the secondary (dual-write);
* ``DB_ONLY``: every operation goes to the database adapter.

Rollback is a configuration change back to ``SHEETS_ONLY``. A write that the
primary accepted is never failed because the secondary is down: the secondary
write is queued (``pending``) and retried on the next write or :meth:`flush`.
Operations one side does not support (ticks on Sheets) go to the side that does.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal

from qts_data.compositions.delegating import DelegatingAdapter
from qts_data.contracts import (
    OHLCV,
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
from qts_data.interfaces import Capability, DataSourceAdapter, IngestResult, TickSource
from qts_data.plugins.registry import BuildContext, ComponentKind, ComponentRef, Settings

log = logging.getLogger("qts_data.hybrid")


class DataSourceMode(str, Enum):
    SHEETS_ONLY = "SHEETS_ONLY"
    HYBRID = "HYBRID"
    DB_ONLY = "DB_ONLY"


class HybridSettings(Settings):
    sheets: Annotated[str, ComponentRef(ComponentKind.ADAPTER)]
    db: Annotated[str, ComponentRef(ComponentKind.ADAPTER)]
    mode: DataSourceMode = DataSourceMode.HYBRID
    #: In HYBRID, the side reads come from and writes commit to first.
    primary: Literal["sheets", "db"] = "sheets"
    #: Secondary writes kept for retry while the secondary is down.
    max_pending: int = 100_000


class HybridAdapter(DelegatingAdapter):
    """Routes operations to Sheets and/or the database according to the mode."""

    def __init__(
        self,
        sheets: DataSourceAdapter,
        db: DataSourceAdapter,
        mode: DataSourceMode = DataSourceMode.HYBRID,
        primary: Literal["sheets", "db"] = "sheets",
        max_pending: int = 100_000,
    ) -> None:
        self.sheets, self.db, self.mode = sheets, db, mode
        if mode is DataSourceMode.SHEETS_ONLY:
            first, second = sheets, None
        elif mode is DataSourceMode.DB_ONLY:
            first, second = db, None
        else:
            first, second = (sheets, db) if primary == "sheets" else (db, sheets)
        super().__init__(first)
        self.primary: DataSourceAdapter = first
        self.secondary: DataSourceAdapter | None = second
        self.capabilities = first.capabilities | (second.capabilities if second else frozenset())
        self._pending: deque[tuple[float, str, Callable[[], Awaitable[Any]]]] = deque(
            maxlen=max_pending
        )
        self.secondary_failures = 0
        self.pending_dropped = 0

    def _reader(self, capability: str) -> DataSourceAdapter:
        if capability in self.primary.capabilities or self.secondary is None:
            return self.primary
        return self.secondary if capability in self.secondary.capabilities else self.primary

    # -- dual write --------------------------------------------------------------------
    async def _dual_write(
        self, capability: str, what: str, op: Callable[[DataSourceAdapter], Awaitable[Any]]
    ) -> Any:
        target = self._reader(capability)
        result = await op(target)
        second = self.secondary
        if second is None or target is not self.primary or capability not in second.capabilities:
            return result
        await self.flush()
        if self._pending:
            self._queue(what, lambda: op(second))
            return result
        try:
            await op(second)
        except Exception as exc:
            self.secondary_failures += 1
            log.warning("secondary write %s failed, queued for retry: %s", what, exc)
            self._queue(what, lambda: op(second))
        return result

    def _queue(self, what: str, call: Callable[[], Awaitable[Any]]) -> None:
        if len(self._pending) == self._pending.maxlen:
            self.pending_dropped += 1
            log.error("hybrid pending queue full: oldest secondary write dropped")
        self._pending.append((time.time(), what, call))

    async def flush(self) -> int:
        """Retry queued secondary writes in order; stops at the first failure. Returns how many landed."""
        done = 0
        while self._pending:
            _, what, call = self._pending[0]
            try:
                await call()
            except Exception as exc:
                self.secondary_failures += 1
                log.debug("secondary write %s still failing: %s", what, exc)
                break
            self._pending.popleft()
            done += 1
        return done

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def save_position(self, position: Position) -> None:
        await self._dual_write(
            Capability.POSITIONS, f"position {position.symbol}", lambda a: a.save_position(position)
        )

    async def append_ledger(self, entry: LedgerEntry) -> bool:
        result: bool = await self._dual_write(
            Capability.LEDGER,
            f"ledger {entry.idempotency_key or entry.symbol}",
            lambda a: a.append_ledger(entry),
        )
        return result

    async def ingest_ticks(self, ticks: TickSource, *, batch_size: int = 10_000) -> IngestResult:
        # Ticks are bulk market data: they go to the one side that stores them, never dual-written.
        return await self._reader(Capability.TICKS).ingest_ticks(ticks, batch_size=batch_size)

    async def upsert_ohlcv(
        self, candles: Iterable[OHLCV], interval: Interval | str = Interval.D1
    ) -> int:
        rows = list(candles)
        result: int = await self._dual_write(
            Capability.OHLCV, "candles", lambda a: a.upsert_ohlcv(rows, interval)
        )
        return result

    async def store_execution_result(self, log_: ExecutionLog) -> bool:
        result: bool = await self._dual_write(
            Capability.EXECUTION_LOGS,
            f"execution log {log_.order_id}",
            lambda a: a.store_execution_result(log_),
        )
        return result

    async def save_strategy_param(self, param: StrategyParam) -> None:
        await self._dual_write(
            Capability.STRATEGIES,
            f"strategy {param.strategy_id}",
            lambda a: a.save_strategy_param(param),
        )

    async def save_risk_config(self, config: RiskConfig) -> None:
        await self._dual_write(
            Capability.RISK, f"risk {config.config_key}", lambda a: a.save_risk_config(config)
        )

    # -- reads from the primary (or the side that supports the operation) ---------------------
    async def fetch_positions(self) -> list[Position]:
        return await self._reader(Capability.POSITIONS).fetch_positions()

    async def fetch_position(self, symbol: str) -> Position | None:
        return await self._reader(Capability.POSITIONS).fetch_position(symbol)

    async def fetch_ledger(
        self, symbol: str | None = None, start: datetime | None = None, end: datetime | None = None
    ) -> list[LedgerEntry]:
        return await self._reader(Capability.LEDGER).fetch_ledger(symbol, start, end)

    async def fetch_tick_data(self, symbol: str, start: datetime, end: datetime) -> list[TickData]:
        return await self._reader(Capability.TICKS).fetch_tick_data(symbol, start, end)

    async def fetch_ohlcv(
        self, symbol: str, start: datetime, end: datetime, interval: Interval | str = Interval.D1
    ) -> list[OHLCV]:
        return await self._reader(Capability.OHLCV).fetch_ohlcv(symbol, start, end, interval)

    async def fetch_execution_logs(
        self,
        order_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[ExecutionLog]:
        return await self._reader(Capability.EXECUTION_LOGS).fetch_execution_logs(
            order_id, start, end
        )

    async def fetch_strategy_params(self, strategy_id: str | None = None) -> list[StrategyParam]:
        return await self._reader(Capability.STRATEGIES).fetch_strategy_params(strategy_id)

    async def fetch_risk_configs(self) -> list[RiskConfig]:
        return await self._reader(Capability.RISK).fetch_risk_configs()

    async def fetch_raw_data(self, sheet: str) -> list[dict[str, str]]:
        return await self._reader(Capability.RAW).fetch_raw_data(sheet)

    async def health_check(self) -> HealthStatus:
        primary = await self.primary.health_check()
        state = primary.state
        details: dict[str, Any] = {"mode": self.mode.value, "primary": primary.component}
        message = primary.message
        if self.secondary is not None:
            secondary = await self.secondary.health_check()
            details["secondary"] = secondary.component
            details["pending_secondary_writes"] = len(self._pending)
            details["pending_dropped"] = self.pending_dropped
            if self._pending:
                details["oldest_pending_age_s"] = round(time.time() - self._pending[0][0], 3)
            if secondary.state is not HealthState.HEALTHY or self._pending:
                state = HealthStatus.worst([state, HealthState.DEGRADED])
                message = message or f"secondary {secondary.component}: {secondary.state.value}"
        return HealthStatus(
            component=self.name or "hybrid",
            state=state,
            latency_ms=primary.latency_ms,
            message=message,
            details=details,
        )


def make_hybrid(settings: HybridSettings, ctx: BuildContext) -> HybridAdapter:
    return HybridAdapter(
        ctx.adapter(settings.sheets),
        ctx.adapter(settings.db),
        settings.mode,
        settings.primary,
        settings.max_pending,
    )
