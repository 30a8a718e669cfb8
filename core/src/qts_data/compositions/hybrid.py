"""The ``hybrid`` composition: Google Sheets and a database during the migration (seeds/002 §4.4, §5).

Modes (``DataSourceMode``):

* ``SHEETS_ONLY``: every operation goes to the Sheets adapter;
* ``HYBRID``: reads from the configured primary; each write commits to the
  primary together with a durable outbox record, and a relay delivers the
  outbox to the secondary in batches (dual-write without loss);
* ``DB_ONLY``: every operation goes to the database adapter.

Rollback is a configuration change back to ``SHEETS_ONLY``. In HYBRID a write
succeeds when the primary has it: a secondary that is down only makes the
outbox deeper, and the relay catches up when it is back, also after a restart.

Where the outbox is (``outbox``):

* in the primary's own database when the primary offers one
  (:class:`~qts_data.interfaces.OutboxHosting`: the ``timescale`` adapter), the
  record committed by the same statement as the write: both or neither, and
  processes sharing the database deliver one at a time;
* else in a local SQLite file: the record is written before the primary write
  (as an intent) and the relay may deliver it once the primary write
  succeeded. A process that dies leaves its intents behind, and the next relay
  replays them to the primary (idempotently, in order) and then delivers them.

Nothing is lost either way, also across phases: records left in the outbox of
the phase before are delivered when the hybrid opens (:mod:`qts_data.outbox.handover`).
Operations one side does not support (ticks on Sheets) go to the side that does
and are not dual-written.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from qts_data.compositions.delegating import DelegatingAdapter
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
from qts_data.errors import ConfigError
from qts_data.interfaces import (
    Capability,
    DataSourceAdapter,
    IngestResult,
    OutboxHosting,
    TickSource,
)
from qts_data.outbox.handover import EarlierOutbox
from qts_data.outbox.record import Outbox, TransactionalOutbox
from qts_data.outbox.relay import OutboxRelay, RelayPacing
from qts_data.plugins.registry import BuildContext, ComponentKind, ComponentRef, Settings


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
    #: Where the outbox is kept: ``database`` (in the primary's own database, committed in
    #: the same transaction as each write: the ``timescale`` adapter offers it), ``file``
    #: (a local SQLite file, ``outbox_path``), or ``auto``: the database when the primary
    #: offers it, the file otherwise.
    outbox: Literal["auto", "database", "file"] = "auto"
    #: The outbox file (relative to the configuration file's folder).
    outbox_path: str = "qts-data-outbox.sqlite"
    relay_batch_size: int = Field(default=200, ge=1)
    #: After a write, the relay waits this long for more before it delivers: fewer, bigger
    #: batches (Sheets allows 60 requests a minute) and less work beside the writers.
    relay_coalesce_s: float = Field(default=0.25, ge=0)
    relay_interval_s: float = Field(default=0.5, gt=0)
    relay_max_backoff_s: float = Field(default=30.0, gt=0)
    #: With the outbox in the database, processes sharing it deliver one at a time; a turn
    #: lasts this long without renewal, so after a crash another process delivers within it.
    relay_lease_s: float = Field(default=15.0, gt=0)
    #: Records left in the outbox of an earlier phase that go to the side now written first
    #: are delivered before the hybrid takes writes; it does not open if that takes longer.
    outbox_handover_timeout_s: float = Field(default=120.0, gt=0)
    #: Health turns DEGRADED when the oldest undelivered record is older than this.
    outbox_alert_age_s: float = Field(default=60.0, gt=0)


class HybridAdapter(DelegatingAdapter):
    """Routes operations to Sheets and/or the database according to the mode."""

    def __init__(
        self,
        sheets: DataSourceAdapter,
        db: DataSourceAdapter,
        mode: DataSourceMode = DataSourceMode.HYBRID,
        primary: Literal["sheets", "db"] = "sheets",
        *,
        outbox: Outbox | None = None,
        relay_batch_size: int = 200,
        relay_coalesce_s: float = 0.25,
        relay_interval_s: float = 0.5,
        relay_max_backoff_s: float = 30.0,
        outbox_alert_age_s: float = 60.0,
        earlier_outboxes: Sequence[EarlierOutbox] = (),
        handover_timeout_s: float = 120.0,
        passive: bool = False,
    ) -> None:
        """``earlier_outboxes``: outboxes of other phases, delivered at open (see
        :mod:`qts_data.outbox.handover`). ``passive``: the relay stays idle and nothing is
        handed over (a stack opened to inspect what another process runs)."""
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
        if second is not None and outbox is None:
            raise ValueError("HYBRID needs an outbox")
        self.outbox = outbox if second is not None else None
        self.relay = (
            OutboxRelay(
                outbox,
                first,
                second,
                owner=getattr(outbox, "owner", None),
                batch_size=relay_batch_size,
                coalesce_s=relay_coalesce_s,
                interval_s=relay_interval_s,
                max_backoff_s=relay_max_backoff_s,
            )
            if outbox is not None and second is not None
            else None
        )
        self.outbox_alert_age_s = outbox_alert_age_s
        self.earlier_outboxes = list(earlier_outboxes)
        self.handover_timeout_s = handover_timeout_s
        self.passive = passive
        self._pacing: RelayPacing = {
            "batch_size": relay_batch_size,
            "coalesce_s": relay_coalesce_s,
            "interval_s": relay_interval_s,
            "max_backoff_s": relay_max_backoff_s,
        }

    async def open(self) -> None:
        try:
            if not self.passive:
                for earlier in self.earlier_outboxes:
                    await earlier.hand_over(
                        self.primary, timeout_s=self.handover_timeout_s, pacing=self._pacing
                    )
            if self.outbox is not None and self.relay is not None:
                await self.outbox.open()
                if not self.passive:
                    await self.relay.start()
        except BaseException:
            await self._close_earlier()
            raise

    async def _close_earlier(self) -> None:
        for earlier in self.earlier_outboxes:
            await earlier.close()

    async def close(self) -> None:
        if self.relay is not None:
            await self.relay.stop()
        if self.outbox is not None:
            await self.outbox.close()
        await self._close_earlier()

    @staticmethod
    def _writable(adapter: DataSourceAdapter, capability: str) -> bool:
        """Whether ``adapter`` takes writes of ``capability`` (Sheets reads config but does not write it)."""
        read_only: frozenset[str] = getattr(adapter, "read_only_capabilities", frozenset())
        return capability in adapter.capabilities and capability not in read_only

    def _write_target(self, capability: str) -> DataSourceAdapter:
        if self._writable(self.primary, capability) or self.secondary is None:
            return self.primary
        return self.secondary if self._writable(self.secondary, capability) else self.primary

    def _reader(self, capability: str) -> DataSourceAdapter:
        if capability in self.primary.capabilities or self.secondary is None:
            return self.primary
        return self.secondary if capability in self.secondary.capabilities else self.primary

    # -- dual write ----------------------------------------------------------------------
    async def _write(
        self,
        capability: str,
        op: str,
        key: str,
        contract: Contract,
        apply: Callable[[DataSourceAdapter], Awaitable[Any]],
        extra: str | None = None,
    ) -> Any:
        target = self._write_target(capability)
        second = self.secondary
        outbox = self.outbox
        if (
            outbox is None
            or second is None
            or target is not self.primary
            or not self._writable(second, capability)
        ):
            return await apply(target)
        if isinstance(outbox, TransactionalOutbox):  # the record commits with the write
            _, result = await outbox.commit_with(
                op, key, contract.to_json(), lambda: apply(target), extra=extra
            )
            if self.relay is not None:
                self.relay.kick()
            return result
        record = await outbox.add(op, key, contract.to_json(), extra=extra)
        try:
            result = await apply(target)
        except BaseException:
            await outbox.cancel(record)
            raise
        if self.relay is not None:
            self.relay.completed.add(record)
            self.relay.kick()
        else:  # pragma: no cover - an outbox always comes with a relay
            await outbox.mark_ready(record)
        return result

    async def flush(self, timeout_s: float = 30.0) -> bool:
        """Deliver the whole outbox now; False if it could not be emptied in time."""
        if self.relay is None:
            return True
        return await self.relay.drain(timeout_s)

    async def save_position(self, position: Position) -> None:
        await self._write(
            Capability.POSITIONS,
            "position",
            position.symbol,
            position,
            lambda a: a.save_position(position),
        )

    async def append_ledger(self, entry: LedgerEntry) -> bool:
        key = entry.idempotency_key or f"{entry.symbol}@{entry.timestamp.isoformat()}"
        result: bool = await self._write(
            Capability.LEDGER, "ledger", key, entry, lambda a: a.append_ledger(entry)
        )
        return result

    async def ingest_ticks(self, ticks: TickSource, *, batch_size: int = 10_000) -> IngestResult:
        # Ticks are bulk market data: they go to the one side that stores them, never dual-written.
        return await self._reader(Capability.TICKS).ingest_ticks(ticks, batch_size=batch_size)

    async def upsert_ohlcv(
        self, candles: Iterable[OHLCV], interval: Interval | str = Interval.D1
    ) -> int:
        rows = list(candles)
        step = Interval.parse(interval)
        target = self._reader(Capability.OHLCV)
        if (
            self.secondary is None
            or self.outbox is None
            or Capability.OHLCV not in self.secondary.capabilities
        ):
            return await target.upsert_ohlcv(rows, step)
        for candle in rows:

            def upsert(adapter: DataSourceAdapter, one: OHLCV = candle) -> Awaitable[int]:
                return adapter.upsert_ohlcv([one], step)

            await self._write(
                Capability.OHLCV,
                "candle",
                f"{step.value}:{candle.symbol}@{candle.time.isoformat()}",
                candle,
                upsert,
                extra=step.value,
            )
        return len(rows)

    async def store_execution_result(self, log_: ExecutionLog) -> bool:
        key = f"{log_.order_id}:{log_.stage}@{log_.time.isoformat()}"
        result: bool = await self._write(
            Capability.EXECUTION_LOGS,
            "execution_log",
            key,
            log_,
            lambda a: a.store_execution_result(log_),
        )
        return result

    async def save_strategy_param(self, param: StrategyParam) -> None:
        await self._write(
            Capability.STRATEGIES,
            "strategy",
            f"{param.strategy_id}/{param.param_name}",
            param,
            lambda a: a.save_strategy_param(param),
        )

    async def save_risk_config(self, config: RiskConfig) -> None:
        await self._write(
            Capability.RISK, "risk", config.config_key, config, lambda a: a.save_risk_config(config)
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
        problems: list[str] = []
        if self.secondary is not None:
            secondary = await self.secondary.health_check()
            details["secondary"] = secondary.component
            if self.outbox is not None:
                transactional = isinstance(self.outbox, TransactionalOutbox)
                details["outbox"] = "database" if transactional else "file"
                depth, oldest = await self.outbox.depth()
                details["outbox_depth"] = depth
                details["outbox_oldest_age_s"] = (
                    None if oldest is None else round(time.time() - oldest / 1e6, 3)
                )
            if self.relay is not None:
                details["relay"] = self.relay.summary()
            if secondary.state is not HealthState.HEALTHY:
                problems.append(f"secondary {secondary.component}: {secondary.state.value}")
            age = details.get("outbox_oldest_age_s")
            if age is not None and age > self.outbox_alert_age_s:
                problems.append(f"outbox: oldest record waiting {age:.0f} s")
        for earlier in self.earlier_outboxes:
            waiting = await earlier.waiting()
            if waiting:
                details[f"earlier_{earlier.label}_outbox_depth"] = waiting
                problems.append(f"earlier {earlier.label} outbox: {waiting} records to deliver")
            if earlier.problem:
                problems.append(earlier.problem)
        if problems:
            state = HealthStatus.worst([state, HealthState.DEGRADED])
            message = "; ".join(filter(None, [message, *problems]))
        return HealthStatus(
            component=self.name or "hybrid",
            state=state,
            latency_ms=primary.latency_ms,
            message=message,
            details=details,
        )


def make_hybrid(settings: HybridSettings, ctx: BuildContext) -> HybridAdapter:
    from qts_data.outbox.sqlite_outbox import SqliteOutbox  # sqlite3 only when a hybrid is built

    sheets, db = ctx.adapter(settings.sheets), ctx.adapter(settings.db)
    owner = f"{os.getpid()}-{time.time_ns()}"
    outbox_path = ctx.resolve_path(settings.outbox_path)
    passive = ctx.inspect_only
    outbox: Outbox | None = None
    if settings.mode is DataSourceMode.HYBRID:
        primary = db if settings.primary == "db" else sheets
        if settings.outbox != "file" and isinstance(primary, OutboxHosting):
            outbox = primary.transactional_outbox(owner, lease_s=settings.relay_lease_s)
        elif settings.outbox == "database":
            raise ConfigError(
                f"outbox = 'database' needs a primary that keeps an outbox in its database "
                f"(such as a 'timescale' adapter as the primary db); the primary "
                f"{settings.primary} is a {type(primary).__name__}: use outbox = 'file' or 'auto'"
            )
        else:
            outbox = SqliteOutbox(
                outbox_path,
                owner=owner,
                reader=passive,
                delivers_to="db" if primary is sheets else "sheets",
            )
    # the outboxes of the other phases, with what they still hold (see outbox.handover)
    earlier: list[EarlierOutbox] = []
    if not passive:
        if not isinstance(outbox, TransactionalOutbox) and isinstance(db, OutboxHosting):
            other = db.transactional_outbox(owner, lease_s=settings.relay_lease_s)
            earlier.append(EarlierOutbox("database", other, sheets, db))
        if Path(outbox_path).exists():
            current = outbox.delivers_to if isinstance(outbox, SqliteOutbox) else None
            earlier.append(
                EarlierOutbox(
                    "file", SqliteOutbox(outbox_path, owner), sheets, db, current_target=current
                )
            )
    return HybridAdapter(
        sheets,
        db,
        settings.mode,
        settings.primary,
        outbox=outbox,
        relay_batch_size=settings.relay_batch_size,
        relay_coalesce_s=settings.relay_coalesce_s,
        relay_interval_s=settings.relay_interval_s,
        relay_max_backoff_s=settings.relay_max_backoff_s,
        outbox_alert_age_s=settings.outbox_alert_age_s,
        earlier_outboxes=earlier,
        handover_timeout_s=settings.outbox_handover_timeout_s,
        passive=passive,
    )
