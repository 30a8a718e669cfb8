"""The SQLite data-source adapter: every capability in one local database file.

Semantics are the memory adapter's (the conformance suite checks both), with
the data kept in SQLite (see :mod:`qts_data_sqlite.schema`):

* candles are keyed ``(symbol, timeframe, time)``: a second candle for the same
  bucket replaces the first, two cannot exist; ``upsert_ohlcv`` writes its
  whole batch in one transaction;
* ticks are unique on their ``dedup_key`` (a unique index), ledger entries on
  their ``idempotency_key``;
* every write is one transaction: a failed write (or a bad element) leaves the
  file as it was.

Nothing here blocks the event loop: the connection lives on the adapter's own
thread (:class:`~qts_data_sqlite.worker.Worker`), where the SQL, the encoding
of inputs and the decoding of results run. Beyond the data interface, the
adapter offers the optional operations of :mod:`qts_data.interfaces.operations`:
:meth:`migrate`, :meth:`find_gaps`, :meth:`maintain` and :meth:`storage_report`.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import AsyncIterable, Callable, Iterable
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

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
from qts_data.contracts.checks import check_order
from qts_data.errors import BackendError, ContractError, QtsDataError
from qts_data.interfaces import (
    Capability,
    DataSourceAdapter,
    IngestResult,
    MaintenanceReport,
    MigrationReport,
    StorageReport,
    TickSource,
)
from qts_data.interfaces.raw import RAW_SHEETS, raw_sheet_name
from qts_data_sqlite import MEMORY, SqliteSettings, maintenance, schema, store
from qts_data_sqlite.codec import check_time, opt_us, to_us
from qts_data_sqlite.store import ElementTypeError
from qts_data_sqlite.worker import Worker

__all__ = ["MAX_GAP_BUCKETS", "SHEETS", "ElementTypeError", "SqliteAdapter"]

P = ParamSpec("P")
T = TypeVar("T")

#: The most buckets one ``find_gaps`` call examines (one million: 1.9 years of 1m candles,
#: 2700 years of 1d), which bounds its answer to about 50 MB.
MAX_GAP_BUCKETS = 1_000_000
#: ``health_check`` reports DEGRADED when free pages pass the vacuum threshold and are at least this big.
_DEGRADED_FREE_BYTES = 1 << 20

SHEETS = RAW_SHEETS


def _sheet_name(sheet: str) -> str:
    return raw_sheet_name(sheet, "sqlite adapter")


def _step_us(interval: Interval) -> int:
    return interval.seconds * 1_000_000


class SqliteAdapter(DataSourceAdapter):
    """A :class:`DataSourceAdapter` over one SQLite file (or ``":memory:"``).

    ``SqliteAdapter("data/qts.sqlite3")`` or ``SqliteAdapter(SqliteSettings(...))``.
    ``await open()`` connects on the adapter's thread and migrates the schema to
    the newest version; ``await close()`` closes the connection and ends the thread.
    """

    capabilities = Capability.ALL

    def __init__(self, settings: SqliteSettings | str | os.PathLike[str]) -> None:
        if not isinstance(settings, SqliteSettings):
            settings = SqliteSettings(path=os.fspath(settings))
        self.settings = settings
        #: The database file (absolute when built from configuration), or ``":memory:"``.
        self.path = settings.path
        #: What the migration run by ``open`` did.
        self.opened_migration: MigrationReport | None = None
        self._worker: Worker | None = None

    def __repr__(self) -> str:
        return f"SqliteAdapter({self.path!r})"

    @property
    def _label(self) -> str:
        named = f" {self.name!r}" if self.name else ""
        return f"sqlite adapter{named} ({self.path})"

    # -- lifecycle -------------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect (creating the file if missing) and migrate the schema. A second call does nothing."""
        if self._worker is not None:
            return
        worker = Worker(f"qts-sqlite-{self.name or 'adapter'}")
        try:
            await worker.start(self.settings)
            self.opened_migration = await worker.call(schema.migrate, self.path)
        except BaseException as exc:
            await worker.stop()
            if isinstance(exc, sqlite3.Error):
                raise BackendError(f"{self._label}: cannot open the database: {exc}") from exc
            raise
        self._worker = worker

    async def close(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            await worker.stop()

    def _require_open(self, operation: str) -> Worker:
        worker = self._worker
        if worker is None or worker.stopped:
            raise BackendError(f"{self._label}: {operation}: the adapter is not open")
        return worker

    async def _call(
        self,
        operation: str,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run ``fn(conn, ...)`` on the adapter's thread; SQLite errors become BackendError naming ``operation``."""
        worker = self._require_open(operation)
        try:
            return await worker.call(fn, *args, **kwargs)
        except sqlite3.Error as exc:
            raise BackendError(f"{self._label}: {operation} failed: {exc}") from exc

    # -- positions -----------------------------------------------------------------------------
    async def fetch_positions(self) -> list[Position]:
        return await self._call("fetch_positions", store.fetch_positions)

    async def fetch_position(self, symbol: str) -> Position | None:
        return await self._call("fetch_position", store.fetch_position, symbol)

    async def save_position(self, position: Position) -> None:
        await self._call("save_position", store.save_position, position)

    # -- ledger --------------------------------------------------------------------------------
    async def append_ledger(self, entry: LedgerEntry) -> bool:
        return await self._call("append_ledger", store.append_ledger, entry)

    async def fetch_ledger(
        self,
        symbol: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[LedgerEntry]:
        lo = opt_us(start, "start", "fetch_ledger")
        hi = opt_us(end, "end", "fetch_ledger")
        check_order(start, end, "fetch_ledger")
        return await self._call("fetch_ledger", store.fetch_ledger, symbol, lo, hi)

    # -- ticks -----------------------------------------------------------------------------------
    async def ingest_ticks(self, ticks: TickSource, *, batch_size: int = 10_000) -> IngestResult:
        """Store ticks in batches of ``batch_size``, one transaction per batch.

        The batch is collected on the event loop (the source may be async);
        checking, encoding and writing run on the adapter's thread. A bad
        element raises :class:`ElementTypeError` naming its position in the
        stream; its batch is not stored, the batches before it stay stored.
        ``inserted`` counts the rows SQLite actually added (duplicates of stored
        ticks and within the batch are skipped by the unique dedup index).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._require_open("ingest_ticks")
        received = inserted = 0
        batch: list[TickData] = []
        if isinstance(ticks, AsyncIterable):
            async for tick in ticks:
                batch.append(tick)
                if len(batch) >= batch_size:
                    inserted += await self._call(
                        "ingest_ticks", store.insert_ticks, batch, received
                    )
                    received += len(batch)
                    batch = []
        else:
            for tick in ticks:
                batch.append(tick)
                if len(batch) >= batch_size:
                    inserted += await self._call(
                        "ingest_ticks", store.insert_ticks, batch, received
                    )
                    received += len(batch)
                    batch = []
        if batch:
            inserted += await self._call("ingest_ticks", store.insert_ticks, batch, received)
            received += len(batch)
        return IngestResult(received=received, inserted=inserted)

    async def fetch_tick_data(self, symbol: str, start: datetime, end: datetime) -> list[TickData]:
        lo = to_us(check_time(start, "start", "fetch_tick_data"))
        hi = to_us(check_time(end, "end", "fetch_tick_data"))
        check_order(start, end, "fetch_tick_data")
        if lo >= hi:
            return []
        return await self._call("fetch_tick_data", store.fetch_ticks, symbol, lo, hi)

    # -- candles -----------------------------------------------------------------------------------
    async def upsert_ohlcv(
        self, candles: Iterable[OHLCV], interval: Interval | str = Interval.D1
    ) -> int:
        """Insert or replace candles on ``(symbol, interval, time)`` in one transaction.

        Every candle must be an :class:`OHLCV` whose time is the start of its
        bucket; otherwise nothing is written and the error names the candle.
        """
        step = Interval.parse(interval)
        rows = list(candles)
        return await self._call(
            "upsert_ohlcv", store.upsert_candles, rows, step.value, _step_us(step)
        )

    async def fetch_ohlcv(
        self, symbol: str, start: datetime, end: datetime, interval: Interval | str = Interval.D1
    ) -> list[OHLCV]:
        step = Interval.parse(interval)
        lo = to_us(check_time(start, "start", "fetch_ohlcv"))
        hi = to_us(check_time(end, "end", "fetch_ohlcv"))
        check_order(start, end, "fetch_ohlcv")
        if lo >= hi:
            return []
        return await self._call(
            "fetch_ohlcv", store.fetch_candles, symbol, step.value, _step_us(step), lo, hi
        )

    async def find_gaps(
        self, symbol: str, interval: Interval | str, start: datetime, end: datetime
    ) -> list[datetime]:
        """Starts of the buckets in ``[start, end)`` that have no stored candle of ``interval``, in order.

        Only stored candles count (a bucket that ``fetch_ohlcv`` would aggregate
        from ticks is still a gap of the candle store). There is no trading
        calendar: for ``1d`` on a market closed at weekends, weekends and
        holidays are gaps too. At most :data:`MAX_GAP_BUCKETS` buckets per call.
        """
        step = Interval.parse(interval)
        lo = to_us(check_time(start, "start", "find_gaps"))
        hi = to_us(check_time(end, "end", "find_gaps"))
        check_order(start, end, "find_gaps")
        count = store.bucket_count(_step_us(step), lo, hi)
        if count > MAX_GAP_BUCKETS:
            raise ContractError(
                f"find_gaps: [{start.isoformat()}, {end.isoformat()}) holds {count} buckets of "
                f"{step.value}, more than {MAX_GAP_BUCKETS}; ask for a shorter range or a longer interval"
            )
        if count == 0:
            return []
        return await self._call(
            "find_gaps", store.find_gaps, symbol, step.value, _step_us(step), lo, hi
        )

    # -- execution logs ------------------------------------------------------------------------
    async def store_execution_result(self, log: ExecutionLog) -> bool:
        return await self._call("store_execution_result", store.insert_log, log)

    async def fetch_execution_logs(
        self,
        order_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[ExecutionLog]:
        lo = opt_us(start, "start", "fetch_execution_logs")
        hi = opt_us(end, "end", "fetch_execution_logs")
        check_order(start, end, "fetch_execution_logs")
        return await self._call("fetch_execution_logs", store.fetch_logs, order_id, lo, hi)

    # -- configuration -------------------------------------------------------------------------
    async def fetch_strategy_params(self, strategy_id: str | None = None) -> list[StrategyParam]:
        return await self._call("fetch_strategy_params", store.fetch_params, strategy_id)

    async def save_strategy_param(self, param: StrategyParam) -> None:
        await self._call("save_strategy_param", store.save_param, param)

    async def fetch_risk_configs(self) -> list[RiskConfig]:
        return await self._call("fetch_risk_configs", store.fetch_risk)

    async def save_risk_config(self, config: RiskConfig) -> None:
        await self._call("save_risk_config", store.save_risk, config)

    # -- raw rows --------------------------------------------------------------------------------
    async def fetch_raw_data(self, sheet: str) -> list[dict[str, str]]:
        """Rows as header -> text of ``positions``, ``ledger``, ``strategies``,
        ``risk_configs`` and ``execution_logs`` (or the seed's tab names, see :data:`SHEETS`)."""
        return await self._call("fetch_raw_data", store.raw_rows, _sheet_name(sheet))

    # -- optional operations -------------------------------------------------------------------
    async def migrate(self, *, dry_run: bool = False) -> MigrationReport:
        """Bring the schema to the newest version (``open`` already did); re-running is harmless."""
        return await self._call("migrate", schema.migrate, self.path, dry_run=dry_run)

    async def maintain(self, *, vacuum: bool | None = None) -> MaintenanceReport:
        """ANALYZE; VACUUM when free pages exceed ``vacuum_threshold`` (``vacuum=True``/``False`` forces it on/off).

        VACUUM holds the write lock and needs free disk space of about the
        file's size while it runs; other operations of this adapter wait.
        """
        return await self._call(
            "maintain", maintenance.maintain, self.path, self.settings.vacuum_threshold, vacuum
        )

    async def storage_report(self) -> StorageReport:
        """Rows and bytes per table, file and WAL sizes, journal mode, fragmentation."""
        return await self._call(
            "storage_report", maintenance.storage_report, self.path, self.settings.vacuum_threshold
        )

    # -- health ----------------------------------------------------------------------------------
    async def health_check(self) -> HealthStatus:
        """The round trip of a probe (``SELECT 1`` and a few PRAGMAs) through the adapter's thread, and file facts.

        DEGRADED when free pages exceed the vacuum threshold (and 1 MiB): run
        ``qts-data db maintain``. UNHEALTHY when not open, when the query fails,
        or when the optional ``quick_check`` finds damage.
        """
        component = self.name or "sqlite"
        started = time.perf_counter()
        try:
            details = await self._call(
                "health_check", maintenance.health_probe, self.path, self.settings.quick_check
            )
        except QtsDataError as exc:
            return HealthStatus(
                component=component,
                state=HealthState.UNHEALTHY,
                message=str(exc),
                details={"path": self.path},
            )
        latency_ms = (time.perf_counter() - started) * 1000
        state, message = HealthState.HEALTHY, ""
        threshold = self.settings.vacuum_threshold
        free_bytes = details["freelist_count"] * details["page_size"]
        if details["free_fraction"] > threshold and free_bytes >= _DEGRADED_FREE_BYTES:
            state = HealthState.DEGRADED
            message = (
                f"free pages are {details['free_fraction']:.1%} of the file, above the vacuum "
                f"threshold {threshold:.0%}: run `qts-data db maintain`"
            )
        if details.get("quick_check", "ok") != "ok":
            state = HealthState.UNHEALTHY
            message = f"quick_check found damage: {details['quick_check']}"
        return HealthStatus(
            component=component,
            state=state,
            latency_ms=latency_ms,
            message=message,
            details=details,
        )

    def describe(self) -> dict[str, Any]:
        settings = self.settings
        return {
            "path": self.path,
            "persistent": self.path != MEMORY,
            "journal_mode": settings.journal_mode,
            "synchronous": settings.synchronous,
            "vacuum_threshold": settings.vacuum_threshold,
        }
