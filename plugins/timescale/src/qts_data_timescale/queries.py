"""The SQL of the data path. Same tables and results in both flavours; only the
bucketing of candles differs (``time_bucket`` over the continuous aggregate on
TimescaleDB, ``date_bin`` over the ticks on plain PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

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
from qts_data_timescale.migrations import Flavour
from qts_data_timescale.rows import select_list

EPOCH = "TIMESTAMPTZ '1970-01-01 00:00:00+00'"
#: Interval -> SQL interval literal.
STEP = {
    Interval.M1: "INTERVAL '1 minute'",
    Interval.M5: "INTERVAL '5 minutes'",
    Interval.M15: "INTERVAL '15 minutes'",
    Interval.H1: "INTERVAL '1 hour'",
    Interval.D1: "INTERVAL '1 day'",
}
TICK_COLUMNS = TickData.db_columns
CANDLE_VALUES = ("time", "open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class Write:
    """One write statement: ``main``, reading from the data-modifying ``ctes`` (without WITH)."""

    main: str
    ctes: str = ""

    @property
    def sql(self) -> str:
        return f"WITH {self.ctes}\n{self.main}" if self.ctes else self.main


#: The outbox record's columns, bound after the write's own parameters.
_OUTBOX_PARAMS = ("text", "text", "text", "text", "text", "bigint", "text")


@cache
def with_outbox(write: Write, nargs: int) -> str:
    """``write`` and the insert of its outbox record as ONE statement (one round trip, one
    implicit transaction), returning ``written`` (rows) and ``record_id``.

    The record is inserted from the write's returned rows, so only after the write took
    its row locks: records of one key are numbered in the order their writes committed."""
    params = ", ".join(f"${nargs + i}::{t}" for i, t in enumerate(_OUTBOX_PARAMS, 1))
    ctes = f"{write.ctes},\n" if write.ctes else ""
    return f"""WITH {ctes}written AS (
{write.main}
RETURNING 1
), recorded AS (
INSERT INTO qts_outbox (op, key, payload, state, owner, created_us, extra)
SELECT {params} FROM (SELECT count(*) FROM written) AS after_the_write
RETURNING id
)
SELECT (SELECT count(*) FROM written) AS written, (SELECT id FROM recorded) AS record_id"""


# -- positions ----------------------------------------------------------------------------------
POSITION_SELECT = f"SELECT {select_list(Position.db_columns)} FROM positions"
FETCH_POSITIONS = f"{POSITION_SELECT} ORDER BY symbol"
FETCH_POSITION = f"{POSITION_SELECT} WHERE symbol = $1"
SAVE_POSITION = Write(f"""INSERT INTO positions ({select_list(Position.db_columns)})
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (symbol) DO UPDATE SET {", ".join(f'"{c}" = EXCLUDED."{c}"' for c in Position.db_columns[1:])}""")

# -- ledger -------------------------------------------------------------------------------------
_LEDGER_COLUMNS = select_list(LedgerEntry.db_columns)
_LEDGER_VALUES = ", ".join(f"${i}" for i in range(1, len(LedgerEntry.db_columns) + 1))
APPEND_LEDGER = Write(f"INSERT INTO t_ledger ({_LEDGER_COLUMNS}) VALUES ({_LEDGER_VALUES})")
#: Claims the idempotency key and inserts the entry in one statement: nothing is
#: inserted when the key was already claimed ("INSERT 0 0").
APPEND_LEDGER_ONCE = Write(
    f"INSERT INTO t_ledger ({_LEDGER_COLUMNS})\nSELECT {_LEDGER_VALUES} FROM claimed",
    ctes=f"""claimed AS (
    INSERT INTO t_ledger_keys (idempotency_key, entry_time)
    VALUES (${len(LedgerEntry.db_columns) + 1}, $1)
    ON CONFLICT DO NOTHING
    RETURNING 1
)""",
)


def ranged(
    base: str,
    time_column: str,
    order: str,
    key_column: str,
    key: str | None,
    start: datetime | None,
    end: datetime | None,
) -> tuple[str, list[object]]:
    """``base`` with the optional ``key_column = key`` and ``[start, end)`` filters, ordered."""
    where: list[str] = []
    args: list[object] = []
    for clause, value in (
        (f'"{key_column}" = $', key),
        (f'"{time_column}" >= $', start),
        (f'"{time_column}" < $', end),
    ):
        if value is not None:
            args.append(value)
            where.append(f"{clause}{len(args)}")
    sql = base + (" WHERE " + " AND ".join(where) if where else "") + f" ORDER BY {order}"
    return sql, args


LEDGER_SELECT = f"SELECT {_LEDGER_COLUMNS} FROM t_ledger"

# -- ticks --------------------------------------------------------------------------------------
FETCH_TICKS = f"""SELECT {select_list(TICK_COLUMNS)} FROM tick_data
WHERE symbol = $1 AND time >= $2 AND time < $3 ORDER BY time, seq"""
STAGING_TABLE = "qts_tick_staging"
#: A staging table private to the transaction (dropped at its end), so it is
#: also safe behind PgBouncer in transaction mode.
CREATE_STAGING = f"""CREATE TEMP TABLE {STAGING_TABLE} (
    time TIMESTAMPTZ, symbol VARCHAR(20), price NUMERIC(18, 8), volume BIGINT,
    bid NUMERIC(18, 8), ask NUMERIC(18, 8), source VARCHAR(20), trade_id VARCHAR(64)
) ON COMMIT DROP"""
INSERT_FROM_STAGING = f"""INSERT INTO tick_data ({select_list(TICK_COLUMNS)})
SELECT {select_list(TICK_COLUMNS)} FROM {STAGING_TABLE}
ON CONFLICT DO NOTHING"""
INSERT_FROM_ARRAYS = f"""INSERT INTO tick_data ({select_list(TICK_COLUMNS)})
SELECT * FROM unnest($1::timestamptz[], $2::varchar[], $3::numeric[], $4::bigint[],
                     $5::numeric[], $6::numeric[], $7::varchar[], $8::varchar[])
ON CONFLICT DO NOTHING"""

# -- candles -----------------------------------------------------------------------------------
_CANDLE_COLUMNS = select_list(OHLCV.db_columns)
UPSERT_DAILY = Write(f"""INSERT INTO ohlcv_1d ({_CANDLE_COLUMNS})
SELECT * FROM unnest($1::timestamptz[], $2::varchar[], $3::numeric[], $4::numeric[],
                     $5::numeric[], $6::numeric[], $7::bigint[])
ON CONFLICT (time, symbol) DO UPDATE SET open = EXCLUDED.open, high = EXCLUDED.high,
    low = EXCLUDED.low, close = EXCLUDED.close, volume = EXCLUDED.volume""")
UPSERT_BARS = Write(f"""INSERT INTO ohlcv_bars (bar_interval, {_CANDLE_COLUMNS})
SELECT $8, * FROM unnest($1::timestamptz[], $2::varchar[], $3::numeric[], $4::numeric[],
                         $5::numeric[], $6::numeric[], $7::bigint[])
ON CONFLICT (symbol, bar_interval, time) DO UPDATE SET open = EXCLUDED.open,
    high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close, volume = EXCLUDED.volume""")


def _stored_candles(interval: Interval, alias: str = "") -> tuple[str, str]:
    """(table, filter) of the stored candles of ``interval`` and symbol $1."""
    if interval is Interval.D1:
        return "ohlcv_1d", f"{alias}symbol = $1"
    return "ohlcv_bars", f"{alias}symbol = $1 AND {alias}bar_interval = '{interval.value}'"


def _minute_candles(flavour: Flavour) -> str:
    """1-minute candles ``(time, open, high, low, close, volume)`` of ticks in [$4, $5)."""
    if flavour == "timescale":
        # The real-time continuous aggregate: materialized buckets plus raw ticks past
        # the watermark.
        return (
            "SELECT bucket AS time, open, high, low, close, volume FROM ohlcv_1m "
            "WHERE symbol = $1 AND bucket >= $4 AND bucket < $5"
        )
    return f"""SELECT date_bin(INTERVAL '1 minute', time, {EPOCH}) AS time,
        (array_agg(price ORDER BY time, seq))[1] AS open, max(price) AS high,
        min(price) AS low, (array_agg(price ORDER BY time DESC, seq DESC))[1] AS close,
        sum(volume)::BIGINT AS volume
    FROM tick_data WHERE symbol = $1 AND time >= $4 AND time < $5 GROUP BY 1"""


def _aggregated_candles(flavour: Flavour, interval: Interval) -> str:
    """Candles of ``interval`` aggregated from the 1-minute candles of ticks in [$4, $5)."""
    minutes = _minute_candles(flavour)
    if interval is Interval.M1:
        return minutes
    step = STEP[interval]
    if flavour == "timescale":
        return f"""SELECT time_bucket({step}, bucket) AS time, first(open, bucket) AS open,
        max(high) AS high, min(low) AS low, last(close, bucket) AS close,
        sum(volume)::BIGINT AS volume
    FROM ohlcv_1m WHERE symbol = $1 AND bucket >= $4 AND bucket < $5 GROUP BY 1"""
    return f"""SELECT date_bin({step}, m.time, {EPOCH}) AS time,
        (array_agg(m.open ORDER BY m.time))[1] AS open, max(m.high) AS high,
        min(m.low) AS low, (array_agg(m.close ORDER BY m.time DESC))[1] AS close,
        sum(m.volume)::BIGINT AS volume
    FROM ({minutes}) AS m GROUP BY 1"""


#: The candle columns as the adapter reads them: prices as text, which the adapter
#: turns into Decimals itself (faster than asyncpg's binary numeric decoder).
_CANDLE_OUT = "time, open::text, high::text, low::text, close::text, volume"


def fetch_ohlcv_sql(flavour: Flavour, interval: Interval) -> str:
    """Candles of $1 whose bucket starts in [$2, $3): stored ones, and for buckets without
    one, those aggregated from ticks in [$4, $5) (the ceilings of $2 and $3 to a bucket).

    Arguments: symbol, start, end, ceil(start), ceil(end). Both parts come in time
    order, so the server merges them without materializing the stored candles.
    """
    table, stored = _stored_candles(interval)
    _, probe = _stored_candles(interval, "s.")
    return f"""SELECT {_CANDLE_OUT} FROM {table} WHERE {stored} AND time >= $2 AND time < $3
UNION ALL
SELECT {_CANDLE_OUT} FROM ({_aggregated_candles(flavour, interval)}) AS a
WHERE NOT EXISTS (SELECT 1 FROM {table} s WHERE {probe} AND s.time = a.time)
ORDER BY time"""


def find_gaps_sql(interval: Interval) -> str:
    """Bucket starts in [$2, $3) (``$2`` aligned) of symbol $1 without a stored candle."""
    step = STEP[interval]
    if interval is Interval.D1:
        stored = "SELECT 1 FROM ohlcv_1d c WHERE c.symbol = $1 AND c.time = g"
    else:
        stored = (
            "SELECT 1 FROM ohlcv_bars c WHERE c.symbol = $1 "
            f"AND c.bar_interval = '{interval.value}' AND c.time = g"
        )
    return f"""SELECT g FROM generate_series($2::timestamptz, $3::timestamptz, {step}) AS g
WHERE g < $3 AND NOT EXISTS ({stored}) ORDER BY g"""


# -- execution logs ------------------------------------------------------------------------------
_LOG_COLUMNS = select_list(ExecutionLog.db_columns)
STORE_LOG = Write(f"""INSERT INTO execution_logs ({_LOG_COLUMNS})
VALUES ({", ".join(f"${i}" for i in range(1, len(ExecutionLog.db_columns) + 1))})""")
LOG_SELECT = f"SELECT {_LOG_COLUMNS} FROM execution_logs"

# -- configuration ---------------------------------------------------------------------------------
_STRATEGY_COLUMNS = select_list(StrategyParam.db_columns)
STRATEGY_SELECT = f"SELECT {_STRATEGY_COLUMNS} FROM strategies"
FETCH_STRATEGIES = f"{STRATEGY_SELECT} ORDER BY strategy_id, param_name"
FETCH_STRATEGY = f"{STRATEGY_SELECT} WHERE strategy_id = $1 ORDER BY strategy_id, param_name"
SAVE_STRATEGY = Write(f"""INSERT INTO strategies ({_STRATEGY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (strategy_id, param_name) DO UPDATE SET value = EXCLUDED.value,
    value_type = EXCLUDED.value_type, description = EXCLUDED.description,
    updated_at = EXCLUDED.updated_at""")
_RISK_COLUMNS = select_list(RiskConfig.db_columns)
FETCH_RISK = f"SELECT {_RISK_COLUMNS} FROM risk_configs ORDER BY config_key"
SAVE_RISK = Write(f"""INSERT INTO risk_configs ({_RISK_COLUMNS}) VALUES ($1, $2, $3, $4)
ON CONFLICT (config_key) DO UPDATE SET value = EXCLUDED.value,
    description = EXCLUDED.description, updated_at = EXCLUDED.updated_at""")

# -- health -------------------------------------------------------------------------------------
#: The primary's WAL position (its write LSN) as text: what a replica must have replayed to
#: show everything the primary shows. Read on the primary just before :data:`REPLICA_LAG`.
PRIMARY_WAL_LSN = "SELECT pg_current_wal_lsn()::text"
#: On the replica: the WAL position it has replayed (text; NULL if it never replayed), and
#: the age of the last transaction it replayed (of its start, if it has replayed none since),
#: its lag when it is behind the primary's position.
REPLICA_LAG = """SELECT pg_is_in_recovery() AS standby,
    pg_last_wal_replay_lsn()::text AS replay_lsn,
    EXTRACT(EPOCH FROM now() - COALESCE(pg_last_xact_replay_timestamp(),
                                        pg_postmaster_start_time()))::float8 AS replay_age_s"""
SERVER_INFO = """SELECT current_setting('server_version') AS server_version,
    (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS timescaledb"""
#: The end of ohlcv_1m's materialized buckets; NULL while nothing is materialized.
CAGG_WATERMARK = """SELECT CASE WHEN w BETWEEN '0001-01-02' AND '9999-12-30' THEN w END FROM (
    SELECT _timescaledb_functions.to_timestamp(
        _timescaledb_functions.cagg_watermark(c.mat_hypertable_id)) AS w
    FROM _timescaledb_catalog.continuous_agg c WHERE c.user_view_name = 'ohlcv_1m') AS m"""
