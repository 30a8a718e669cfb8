"""The PostgreSQL / TimescaleDB adapter over asyncpg.

Results are those of the memory adapter for the same operations (the
conformance suite checks it against a real server); what differs is where data
lives and how fast it moves:

* writes go to the primary, each statement or batch in one transaction;
  idempotent writes (upserts, keyed ledger entries, tick batches) and reads are
  retried through a lost connection for up to ``retry_timeout_s``;
* reads go to the replica (``read_dsn``) while it is up and not lagging more
  than ``read_max_lag_s``, to the primary otherwise;
* ticks are ingested by binary COPY through a staging table (:mod:`.ingest`);
* candles come from stored candles where they exist and are aggregated on the
  server from ticks otherwise (:func:`.queries.fetch_ohlcv_sql`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg

from qts_data.config.secrets import mask
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
from qts_data.errors import BackendError, ContractError
from qts_data.interfaces import (
    DataSourceAdapter,
    IngestResult,
    MaintenanceReport,
    MigrationReport,
    StorageReport,
    TickSource,
)
from qts_data.interfaces.raw import RAW_SHEETS, raw_sheet_name
from qts_data_timescale import queries as q
from qts_data_timescale import storage
from qts_data_timescale.errors import (
    SchemaMissingError,
    is_broken_connection,
    is_connection_error,
    is_replica_conflict,
    translate,
)
from qts_data_timescale.ingest import Row, WriteBatch, run_ingest
from qts_data_timescale.metrics import LatencyWindow
from qts_data_timescale.migrations import Flavour, latest_version
from qts_data_timescale.outbox import PostgresOutbox, take_companion
from qts_data_timescale.replica import Replica, close_pool
from qts_data_timescale.rows import candles, row_getter, trusted_builder
from qts_data_timescale.schema import SchemaState, apply_migrations, read_schema_state
from qts_data_timescale.settings import TimescaleSettings

if TYPE_CHECKING:
    from qts_data_timescale.schema import Conn

__all__ = ["SHEETS", "TimescaleAdapter"]

log = logging.getLogger("qts_data.timescale")
T = TypeVar("T")
Work = Callable[["Conn"], Awaitable[T]]

SHEETS = RAW_SHEETS

_position = trusted_builder(Position)
_ledger = trusted_builder(LedgerEntry)
_tick = trusted_builder(TickData)
_log = trusted_builder(ExecutionLog)
_strategy = trusted_builder(StrategyParam)
_risk = trusted_builder(RiskConfig)
_position_row = row_getter(Position)
_ledger_row = row_getter(LedgerEntry)
_log_row = row_getter(ExecutionLog)
_strategy_row = row_getter(StrategyParam)
_risk_row = row_getter(RiskConfig)
_candle_row = row_getter(OHLCV)

#: The delay between retries of an operation cut off by a lost connection (doubling).
RETRY_FIRST_DELAY_S = 0.05
RETRY_MAX_DELAY_S = 1.0


def _count(status: str) -> int:
    """The row count of a command tag such as ``INSERT 0 12`` or ``DELETE 3``."""
    return int(status.rsplit(" ", 1)[1])


@cache
def _ohlcv_sql(flavour: Flavour, interval: Interval) -> str:
    return q.fetch_ohlcv_sql(flavour, interval)


class _CopyWriter:
    """Writes the batches of one ingest by binary COPY.

    Optimistic: a batch is copied straight into ``tick_data`` (as fast as a raw
    COPY) until one collides with a stored tick or with itself; that batch and
    every later one then go through a staging table and ``INSERT ... ON CONFLICT
    DO NOTHING``, pipelined (see :mod:`.ingest`). Either way a batch is one
    transaction, written whole or not at all.
    """

    def __init__(self, adapter: TimescaleAdapter) -> None:
        self.adapter = adapter
        self.direct = True

    async def write(self, rows: list[Row], previous: asyncio.Future[int] | None) -> int:
        if self.direct:
            if previous is not None:
                await previous  # ticks are numbered (seq) in the order given
                previous = None

            async def direct(conn: Conn) -> int:
                try:
                    async with conn.transaction():
                        await conn.copy_records_to_table(
                            "tick_data", records=rows, columns=q.TICK_COLUMNS
                        )
                except asyncpg.UniqueViolationError:
                    return -1
                return len(rows)

            inserted = await self.adapter._primary("ingest_ticks", direct, retry=True, timed=False)
            if inserted >= 0:
                return inserted
            self.direct = False

        async def staged(conn: Conn) -> int:
            async with conn.transaction():
                await conn.execute(q.CREATE_STAGING)
                await conn.copy_records_to_table(
                    q.STAGING_TABLE, records=rows, columns=q.TICK_COLUMNS
                )
                if previous is not None:
                    await previous
                return _count(await conn.execute(q.INSERT_FROM_STAGING))

        return await self.adapter._primary("ingest_ticks", staged, retry=True, timed=False)


class TimescaleAdapter(DataSourceAdapter):
    """A :class:`DataSourceAdapter` over PostgreSQL, with TimescaleDB where present.

    Also :class:`~qts_data.interfaces.Migratable` (``migrate``),
    :class:`~qts_data.interfaces.StorageInspectable` (``storage_report``),
    :class:`~qts_data.interfaces.GapChecking` (``find_gaps``),
    :class:`~qts_data.interfaces.Maintainable` (``maintain``) and
    :class:`~qts_data.interfaces.OutboxHosting` (``transactional_outbox``).
    """

    def __init__(self, settings: TimescaleSettings | None = None, **overrides: Any) -> None:
        if settings is None:
            settings = TimescaleSettings(**overrides)
        elif overrides:
            settings = TimescaleSettings.model_validate({**dict(settings), **overrides})
        self.settings = settings
        self.address = settings.address()
        self._pool: asyncpg.Pool | None = None
        self._replica: Replica | None = None
        self._state = SchemaState()
        self._latency = LatencyWindow()
        self._primary_reads = 0

    # -- lifecycle --------------------------------------------------------------------------
    @property
    def flavour(self) -> Flavour | None:
        """``timescale`` or ``plain`` once the schema exists; None before ``migrate``."""
        return self._state.flavour

    @property
    def replica(self) -> Replica | None:
        return self._replica

    async def open(self) -> None:
        if self._pool is not None:
            return
        settings = self.settings
        try:
            self._pool = await asyncpg.create_pool(
                min_size=settings.pool_min_size,
                max_size=settings.pool_max_size,
                **settings.connect_kwargs(),
            )
            async with self._pool.acquire() as conn:
                self._state = await read_schema_state(conn)
            if settings.auto_migrate and not self._state.up_to_date:
                await self.migrate()
            if settings.read_dsn is not None:
                self._replica = Replica(settings, self._pool)
                await self._replica.start()
        except BaseException as exc:
            await self.close()
            if isinstance(exc, Exception):
                raise translate(exc, "open", self.address) from None
            raise

    async def close(self) -> None:
        replica, self._replica = self._replica, None
        if replica is not None:
            await replica.stop()
        pool, self._pool = self._pool, None
        if pool is not None:
            await close_pool(pool, self.settings.close_timeout_s)

    # -- running statements -----------------------------------------------------------------
    def _require_pool(self, where: str) -> asyncpg.Pool:
        if self._pool is None:
            raise BackendError(f"{where}: the adapter {self.name or 'timescale'} is not open")
        return self._pool

    async def _flavour(self, where: str) -> Flavour:
        """The schema flavour, read again if the schema was missing (another process may
        have migrated since)."""
        if self._state.flavour is None:
            async with self._require_pool(where).acquire() as conn:
                self._state = await read_schema_state(conn)
        if self._state.flavour is None:
            raise SchemaMissingError(
                f"{where}: the database at {self.address} has no qts-data schema; "
                "run `qts-data migrate` (or set auto_migrate = true)"
            )
        return self._state.flavour

    async def _primary(
        self, where: str, work: Work[T], *, retry: bool, timed: bool = True, writes: bool = True
    ) -> T:
        """Run ``work`` on a primary connection; with ``retry``, again after a lost connection.

        ``timed`` operations count in the query p99 of the health check
        (administrative ones such as migrations do not); ``writes`` says whether an
        error may say that nothing was written."""
        pool = self._require_pool(where)
        deadline: float | None = None
        delay = RETRY_FIRST_DELAY_S
        while True:
            started = time.perf_counter()
            try:
                async with pool.acquire() as conn:
                    try:
                        result = await work(conn)
                    except Exception as exc:
                        if is_broken_connection(exc):
                            conn.terminate()  # the pool replaces it
                        raise
            except Exception as exc:
                if retry and is_connection_error(exc):
                    now = time.monotonic()
                    if deadline is None:
                        deadline = now + self.settings.retry_timeout_s
                    if now + delay <= deadline:
                        log.warning(
                            "%s: connection to %s lost (%s); retrying in %.2f s",
                            where,
                            self.address,
                            mask(str(exc)) or type(exc).__name__,
                            delay,
                        )
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, RETRY_MAX_DELAY_S)
                        continue
                raise translate(exc, where, self.address, writes=writes) from exc
            if timed:
                self._latency.add((time.perf_counter() - started) * 1000)
            return result

    async def _write(self, where: str, write: q.Write, args: Sequence[Any], *, retry: bool) -> int:
        """Run one write statement on the primary; returns the rows it wrote.

        When :meth:`PostgresOutbox.commit_with` attached an outbox record to this write,
        the same statement inserts it (:func:`.queries.with_outbox`): one round trip, and
        the write and its record commit together or not at all."""
        companion = take_companion(self)
        if companion is None:
            sql = write.sql

            async def alone(conn: Conn) -> int:
                return _count(await conn.execute(sql, *args))

            return await self._primary(where, alone, retry=retry)
        together_sql = q.with_outbox(write, len(args))

        async def together(conn: Conn) -> int:
            row = await conn.fetchrow(together_sql, *args, *companion.record)
            assert row is not None
            companion.record_id = int(row["record_id"])
            return int(row["written"])

        return await self._primary(f"{where} with its outbox record", together, retry=retry)

    def transactional_outbox(self, owner: str, *, lease_s: float = 15.0) -> PostgresOutbox:
        """The hybrid dual-write's outbox in this database (``qts_outbox``), its records
        committed with this adapter's writes (:class:`~qts_data.interfaces.OutboxHosting`)."""
        return PostgresOutbox(self, owner, lease_s=lease_s)

    async def _read(self, where: str, work: Work[T]) -> T:
        """Run the read ``work`` on the replica when it is usable, else on the primary."""
        replica = self._replica
        if replica is not None and replica.usable and replica.pool is not None:
            started = time.perf_counter()
            try:
                async with replica.pool.acquire() as conn:
                    result = await work(conn)
            except Exception as exc:
                if not (
                    is_connection_error(exc)
                    or is_replica_conflict(exc)
                    or isinstance(exc, asyncio.TimeoutError)
                ):
                    raise translate(exc, where, replica.address, writes=False) from exc
                replica.mark_down(exc)
            else:
                self._latency.add((time.perf_counter() - started) * 1000)
                replica.reads += 1
                return result
        result = await self._primary(where, work, retry=True, writes=False)
        self._primary_reads += 1
        return result

    # -- positions -----------------------------------------------------------------------------
    async def fetch_positions(self) -> list[Position]:
        async def work(conn: Conn) -> list[Position]:
            return [_position(row) for row in await conn.fetch(q.FETCH_POSITIONS)]

        return await self._read("fetch_positions", work)

    async def fetch_position(self, symbol: str) -> Position | None:
        async def work(conn: Conn) -> Position | None:
            row = await conn.fetchrow(q.FETCH_POSITION, symbol)
            return None if row is None else _position(row)

        return await self._read("fetch_position", work)

    async def save_position(self, position: Position) -> None:
        _expect(position, Position, "save_position")
        await self._write("save_position", q.SAVE_POSITION, _position_row(position), retry=True)

    # -- ledger --------------------------------------------------------------------------------
    async def append_ledger(self, entry: LedgerEntry) -> bool:
        _expect(entry, LedgerEntry, "append_ledger")
        values = _ledger_row(entry)
        key = entry.idempotency_key
        # A keyed entry is recorded once however often it is sent, so it may be
        # retried; one without a key could be recorded twice by a retry.
        if key is None:
            return await self._write("append_ledger", q.APPEND_LEDGER, values, retry=False) == 1
        written = await self._write(
            "append_ledger", q.APPEND_LEDGER_ONCE, (*values, key), retry=True
        )
        return written == 1

    async def fetch_ledger(
        self,
        symbol: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[LedgerEntry]:
        _check_range(start, end, "fetch_ledger")
        sql, args = q.ranged(
            q.LEDGER_SELECT, "timestamp", "timestamp, id", "symbol", symbol, start, end
        )

        async def work(conn: Conn) -> list[LedgerEntry]:
            return [_ledger(row) for row in await conn.fetch(sql, *args)]

        return await self._read("fetch_ledger", work)

    # -- ticks ----------------------------------------------------------------------------------
    async def ingest_ticks(self, ticks: TickSource, *, batch_size: int = 10_000) -> IngestResult:
        """Store ticks in batches of ``batch_size``, each in one transaction, skipping duplicates.

        See :mod:`qts_data_timescale.ingest`. A batch cut off by a lost connection
        is written again (harmless: it is deduplicated) for up to ``retry_timeout_s``.
        """
        flavour = await self._flavour("ingest_ticks")
        settings = self.settings
        copying = settings.ingest_method == "copy"
        write: WriteBatch = _CopyWriter(self).write if copying else self._write_arrays
        pipelined = settings.ingest_pipeline and settings.pool_max_size >= 2
        outcome = await run_ingest(ticks, batch_size, write, pipelined=pipelined)
        if (
            flavour == "timescale"
            and settings.refresh_after_backfill
            and outcome.inserted
            and outcome.first_time is not None
            and outcome.last_time is not None
        ):
            await self._refresh_minutes(outcome.first_time, outcome.last_time)
        return IngestResult(received=outcome.received, inserted=outcome.inserted)

    async def _write_arrays(self, rows: list[Row], previous: asyncio.Future[int] | None) -> int:
        columns = [list(column) for column in zip(*rows, strict=True)]

        async def work(conn: Conn) -> int:
            if previous is not None:
                await previous
            return _count(await conn.execute(q.INSERT_FROM_ARRAYS, *columns))

        return await self._primary("ingest_ticks", work, retry=True, timed=False)

    async def _refresh_minutes(self, first: datetime, last: datetime) -> None:
        """Re-materialize ohlcv_1m over ticks ingested below its watermark (a backfill)."""

        async def work(conn: Conn) -> None:
            try:
                watermark = await conn.fetchval(q.CAGG_WATERMARK)
            except asyncpg.PostgresError as exc:  # an older TimescaleDB: leave it to the policy
                log.info("ohlcv_1m watermark unknown (%s); not refreshed", exc)
                return
            if watermark is None or first >= watermark:
                return
            lo = Interval.M1.floor(first)
            hi = Interval.M1.floor(last) + Interval.M1.delta
            await conn.execute(
                "CALL refresh_continuous_aggregate('ohlcv_1m', $1::timestamptz, $2::timestamptz)",
                lo,
                hi,
            )

        await self._primary("ingest_ticks (refresh ohlcv_1m)", work, retry=True, timed=False)

    async def fetch_tick_data(self, symbol: str, start: datetime, end: datetime) -> list[TickData]:
        _check_range(start, end, "fetch_tick_data")

        async def work(conn: Conn) -> list[TickData]:
            return [_tick(row) for row in await conn.fetch(q.FETCH_TICKS, symbol, start, end)]

        return await self._read("fetch_tick_data", work)

    # -- candles --------------------------------------------------------------------------------
    async def upsert_ohlcv(
        self, candles: Iterable[OHLCV], interval: Interval | str = Interval.D1
    ) -> int:
        step = Interval.parse(interval)
        rows = list(candles)
        latest: dict[tuple[str, datetime], tuple[Any, ...]] = {}
        for index, candle in enumerate(rows):
            _expect(candle, OHLCV, f"upsert_ohlcv: candle {index}")
            bucket = step.floor(candle.time)
            if bucket != candle.time:
                raise ContractError(
                    f"upsert_ohlcv: candle {index} ({candle.symbol} at {candle.time.isoformat()}) "
                    f"is not aligned to the {step.value} interval: its bucket starts at "
                    f"{bucket.isoformat()}; nothing was written"
                )
            latest[(candle.symbol, candle.time)] = _candle_row(candle)  # the last one wins
        if not latest:
            return 0
        columns = [list(column) for column in zip(*latest.values(), strict=True)]
        if step is Interval.D1:
            await self._write("upsert_ohlcv", q.UPSERT_DAILY, columns, retry=True)
        else:
            await self._write("upsert_ohlcv", q.UPSERT_BARS, (*columns, step.value), retry=True)
        return len(rows)

    async def fetch_ohlcv(
        self, symbol: str, start: datetime, end: datetime, interval: Interval | str = Interval.D1
    ) -> list[OHLCV]:
        step = Interval.parse(interval)
        _check_range(start, end, "fetch_ohlcv")
        if start >= end:
            return []
        sql = _ohlcv_sql(await self._flavour("fetch_ohlcv"), step)
        lo, hi = step.ceil(start), step.ceil(end)

        async def work(conn: Conn) -> list[OHLCV]:
            return candles(await conn.fetch(sql, symbol, start, end, lo, hi), symbol)

        return await self._read("fetch_ohlcv", work)

    # -- execution logs -----------------------------------------------------------------------
    async def store_execution_result(self, log: ExecutionLog) -> bool:
        _expect(log, ExecutionLog, "store_execution_result")
        written = await self._write(
            "store_execution_result", q.STORE_LOG, _log_row(log), retry=False
        )
        return written == 1

    async def fetch_execution_logs(
        self,
        order_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[ExecutionLog]:
        _check_range(start, end, "fetch_execution_logs")
        sql, args = q.ranged(q.LOG_SELECT, "time", "time, id", "order_id", order_id, start, end)

        async def work(conn: Conn) -> list[ExecutionLog]:
            return [_log(row) for row in await conn.fetch(sql, *args)]

        return await self._read("fetch_execution_logs", work)

    # -- configuration -------------------------------------------------------------------------
    async def fetch_strategy_params(self, strategy_id: str | None = None) -> list[StrategyParam]:
        async def work(conn: Conn) -> list[StrategyParam]:
            if strategy_id is None:
                rows = await conn.fetch(q.FETCH_STRATEGIES)
            else:
                rows = await conn.fetch(q.FETCH_STRATEGY, strategy_id)
            return [_strategy(row) for row in rows]

        return await self._read("fetch_strategy_params", work)

    async def save_strategy_param(self, param: StrategyParam) -> None:
        _expect(param, StrategyParam, "save_strategy_param")
        await self._write("save_strategy_param", q.SAVE_STRATEGY, _strategy_row(param), retry=True)

    async def fetch_risk_configs(self) -> list[RiskConfig]:
        async def work(conn: Conn) -> list[RiskConfig]:
            return [_risk(row) for row in await conn.fetch(q.FETCH_RISK)]

        return await self._read("fetch_risk_configs", work)

    async def save_risk_config(self, config: RiskConfig) -> None:
        _expect(config, RiskConfig, "save_risk_config")
        await self._write("save_risk_config", q.SAVE_RISK, _risk_row(config), retry=True)

    # -- raw rows --------------------------------------------------------------------------------
    async def fetch_raw_data(self, sheet: str) -> list[dict[str, str]]:
        """Rows as header -> text for ``positions``, ``ledger``, ``strategies``,
        ``risk_configs`` and ``execution_logs`` (or the seed's names, see :data:`SHEETS`)."""
        name = raw_sheet_name(sheet, "timescale adapter")
        rows: list[Contract]
        if name == "positions":
            rows = list(await self.fetch_positions())
        elif name == "ledger":
            rows = list(await self.fetch_ledger())
        elif name == "strategies":
            rows = list(await self.fetch_strategy_params())
        elif name == "risk_configs":
            rows = list(await self.fetch_risk_configs())
        else:
            rows = list(await self.fetch_execution_logs())
        return [row.to_sheets_row() for row in rows]

    # -- optional operations: Migratable, StorageInspectable, GapChecking, Maintainable --------
    async def migrate(self, *, dry_run: bool = False, target: int | None = None) -> MigrationReport:
        """Bring the schema to the newest version (or ``target``); re-running is harmless.

        With ``dry_run`` nothing is written: the report holds the SQL that would run.
        """

        async def work(conn: Conn) -> MigrationReport:
            report, flavour = await apply_migrations(
                conn, self.settings.timescaledb, dry_run=dry_run, target=target
            )
            if not dry_run:
                self._state = await read_schema_state(conn)
            report.notes.insert(0, f"{self.address}: {flavour} flavour")
            return report

        return await self._primary("migrate", work, retry=False, timed=False)

    async def storage_report(self) -> StorageReport:
        flavour = await self._flavour("storage_report")

        async def work(conn: Conn) -> StorageReport:
            details = {
                "address": self.address,
                "flavour": flavour,
                "schema_version": self._state.version,
                "latest_version": latest_version(),
                "server_version": self._state.server_version,
                "timescaledb": self._state.extension_version,
            }
            return await storage.storage_report(conn, flavour, details)

        return await self._primary("storage_report", work, retry=True, timed=False)

    async def find_gaps(
        self, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> list[datetime]:
        """Starts of the buckets in ``[start, end)`` that have no stored candle, in order."""
        step = Interval.parse(interval)
        _check_range(start, end, "find_gaps")
        await self._flavour("find_gaps")
        if start >= end:
            return []
        sql = q.find_gaps_sql(step)
        first = step.ceil(start)

        async def work(conn: Conn) -> list[datetime]:
            return [row[0] for row in await conn.fetch(sql, symbol, first, end)]

        return await self._read("find_gaps", work)

    async def maintain(self) -> MaintenanceReport:
        """Apply retention and the other policies now, then ANALYZE (see :mod:`.storage`)."""
        flavour = await self._flavour("maintain")
        try:
            return await storage.maintain(self._require_pool("maintain"), flavour)
        except Exception as exc:
            raise translate(exc, "maintain", self.address) from exc

    # -- health ------------------------------------------------------------------------------------
    async def health_check(self) -> HealthStatus:
        """Latency, pool use, versions, schema, replica lag; DEGRADED past the alert
        thresholds of seeds/002 §7.3 (pool use, query p99, replication lag)."""
        name = self.name or "timescale"
        settings = self.settings
        pool = self._pool
        if pool is None:
            return HealthStatus(component=name, state=HealthState.UNHEALTHY, message="not open")
        in_use = pool.get_size() - pool.get_idle_size()
        pool_use = in_use / pool.get_max_size()
        p99 = self._latency.p99()
        details: dict[str, Any] = {
            "address": self.address,
            "pool": {"in_use": in_use, "size": pool.get_size(), "max": pool.get_max_size()},
            "pool_use": round(pool_use, 3),
            "query_p99_ms": None if p99 is None else round(p99, 3),
            "operations": self._latency.count,
            "reads_primary": self._primary_reads,
        }
        problems: list[str] = []
        started = time.perf_counter()
        try:
            async with pool.acquire(timeout=min(2.0, settings.connect_timeout_s)) as conn:
                info = await conn.fetchrow(q.SERVER_INFO)
                if self._state.version < latest_version():
                    self._state = await read_schema_state(conn)
        except asyncio.TimeoutError:
            latency_ms = (time.perf_counter() - started) * 1000
            problems.append(f"pool exhausted: all {pool.get_max_size()} connections busy")
            info = None
        except Exception as exc:
            return HealthStatus(
                component=name,
                state=HealthState.UNHEALTHY,
                latency_ms=(time.perf_counter() - started) * 1000,
                message=mask(f"{self.address}: {type(exc).__name__}: {exc}"),
                details=details,
            )
        else:
            latency_ms = (time.perf_counter() - started) * 1000
        if info is not None:
            details["server_version"] = info["server_version"]
            details["timescaledb"] = info["timescaledb"]
        details["flavour"] = self._state.flavour
        details["schema_version"] = self._state.version
        if pool_use > settings.alert_pool_use:
            problems.append(f"pool use {pool_use:.0%} > {settings.alert_pool_use:.0%}")
        if p99 is not None and p99 > settings.alert_query_p99_ms:
            problems.append(f"query p99 {p99:.0f} ms > {settings.alert_query_p99_ms:g} ms")
        replica = self._replica
        if replica is not None:
            details["replica"] = replica.describe()
            if replica.error is not None:
                problems.append(f"replica {replica.address} down, reads served by the primary")
            elif replica.lag_s is not None and replica.lag_s > settings.alert_replication_lag_s:
                problems.append(
                    f"replication lag {replica.lag_s:.1f} s > {settings.alert_replication_lag_s:g} s"
                )
        if self._state.version < latest_version():
            problems.append(
                f"schema version {self._state.version} of {latest_version()}: run `qts-data migrate`"
            )
        return HealthStatus(
            component=name,
            state=HealthState.DEGRADED if problems else HealthState.HEALTHY,
            latency_ms=latency_ms,
            message="; ".join(problems),
            details=details,
        )

    def describe(self) -> dict[str, Any]:
        settings = self.settings
        return {
            "address": self.address,
            "flavour": self._state.flavour,
            "pool": f"{settings.pool_min_size}..{settings.pool_max_size}",
            "pgbouncer": settings.pgbouncer,
            "replica": settings.address(replica=True) if settings.read_dsn else None,
            "ingest": settings.ingest_method,
        }
