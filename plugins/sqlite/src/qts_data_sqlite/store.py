"""The SQL of the adapter: synchronous functions of a connection, run on its worker thread.

Every value reaches SQLite as a statement parameter; the only text put into
SQL is this module's own (column lists, fixed ``WHERE`` fragments). Inputs are
checked here as well (types, alignment), so that the checking, encoding and
decoding of big batches run off the event loop too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from qts_data.contracts import (
    OHLCV,
    Contract,
    ExecutionLog,
    LedgerEntry,
    Position,
    RiskConfig,
    StrategyParam,
    TickData,
)
from qts_data.contracts.checks import expect_element as expect
from qts_data.contracts.trusted import trusted_builder
from qts_data.errors import ContractError, ElementTypeError
from qts_data_sqlite.codec import (
    EPOCH,
    dec,
    from_us,
    opt_dec,
    read_dec,
    tick_dedup,
    to_us,
)
from qts_data_sqlite.worker import transaction

__all__ = ["ElementTypeError"]


def _where(clauses: list[str]) -> str:
    return " WHERE " + " AND ".join(clauses) if clauses else ""


# -- positions ---------------------------------------------------------------------------------
_POSITION = trusted_builder(Position)
_POSITION_COLUMNS = (
    "symbol, qty, avg_price, market, exposure_value, exposure_pct, unrealized_pnl, updated_at"
)


def _position(row: Sequence[Any]) -> Position:
    symbol, qty, avg_price, market, value, pct, pnl, updated = row
    return _POSITION(
        {
            "symbol": symbol,
            "qty": Decimal(qty),
            "avg_price": Decimal(avg_price),
            "market": market,
            "exposure_value": read_dec(value),
            "exposure_pct": read_dec(pct),
            "unrealized_pnl": read_dec(pnl),
            "updated_at": from_us(updated),
        }
    )


def fetch_positions(conn: sqlite3.Connection) -> list[Position]:
    sql = f"SELECT {_POSITION_COLUMNS} FROM positions ORDER BY symbol"
    return [_position(row) for row in conn.execute(sql)]


def fetch_position(conn: sqlite3.Connection, symbol: str) -> Position | None:
    sql = f"SELECT {_POSITION_COLUMNS} FROM positions WHERE symbol = ?"
    row = conn.execute(sql, (symbol,)).fetchone()
    return None if row is None else _position(row)


def save_position(conn: sqlite3.Connection, p: Position) -> None:
    expect(p, Position, "save_position")
    conn.execute(
        f"INSERT INTO positions ({_POSITION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (symbol) DO UPDATE SET qty = excluded.qty, avg_price = excluded.avg_price, "
        "market = excluded.market, exposure_value = excluded.exposure_value, "
        "exposure_pct = excluded.exposure_pct, unrealized_pnl = excluded.unrealized_pnl, "
        "updated_at = excluded.updated_at",
        (
            p.symbol,
            dec(p.qty),
            dec(p.avg_price),
            p.market,
            opt_dec(p.exposure_value),
            opt_dec(p.exposure_pct),
            opt_dec(p.unrealized_pnl),
            to_us(p.updated_at),
        ),
    )


# -- ledger ---------------------------------------------------------------------------------------
_LEDGER = trusted_builder(LedgerEntry)
_LEDGER_COLUMNS = (
    "timestamp, symbol, side, qty, price, amount, fee, strategy_tag, order_id, fill_id, broker"
)


def append_ledger(conn: sqlite3.Connection, e: LedgerEntry) -> bool:
    expect(e, LedgerEntry, "append_ledger")
    cursor = conn.execute(
        f"INSERT INTO ledger ({_LEDGER_COLUMNS}, idempotency_key) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING",
        (
            to_us(e.timestamp),
            e.symbol,
            e.side,
            dec(e.qty),
            dec(e.price),
            dec(e.amount),
            dec(e.fee),
            e.strategy_tag,
            e.order_id,
            e.fill_id,
            e.broker,
            e.idempotency_key,
        ),
    )
    return cursor.rowcount == 1


def fetch_ledger(
    conn: sqlite3.Connection, symbol: str | None, start: int | None, end: int | None
) -> list[LedgerEntry]:
    clauses: list[str] = []
    params: list[Any] = []
    if symbol is not None:
        clauses.append("symbol = ?")
        params.append(symbol)
    if start is not None:
        clauses.append("timestamp >= ?")
        params.append(start)
    if end is not None:
        clauses.append("timestamp < ?")
        params.append(end)
    sql = f"SELECT {_LEDGER_COLUMNS} FROM ledger{_where(clauses)} ORDER BY timestamp, id"
    build = _LEDGER
    return [
        build(
            {
                "timestamp": from_us(ts),
                "symbol": sym,
                "side": side,
                "qty": Decimal(qty),
                "price": Decimal(price),
                "amount": Decimal(amount),
                "fee": Decimal(fee),
                "strategy_tag": tag,
                "order_id": order_id,
                "fill_id": fill_id,
                "broker": broker,
            }
        )
        for ts, sym, side, qty, price, amount, fee, tag, order_id, fill_id, broker in conn.execute(
            sql, params
        )
    ]


# -- ticks -----------------------------------------------------------------------------------------
_TICK = trusted_builder(TickData)
_INSERT_TICK = (
    "INSERT INTO ticks (time, symbol, price, volume, bid, ask, source, trade_id, dedup) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)


def insert_ticks(conn: sqlite3.Connection, batch: list[Any], offset: int) -> int:
    """Store one batch in one transaction, skipping duplicates; returns how many were new.

    ``offset`` is the position of ``batch[0]`` in the whole ingest, for the error
    naming a bad element (which fails the batch before anything is written).
    """
    rows = []
    for index, tick in enumerate(batch):
        if not isinstance(tick, TickData):
            raise ElementTypeError(
                f"ingest_ticks: element {offset + index} is {type(tick).__name__}, not TickData; "
                f"its batch of {len(batch)} (elements {offset}-{offset + len(batch) - 1}) was not stored"
            )
        rows.append(
            (
                to_us(tick.time),
                tick.symbol,
                dec(tick.price),
                tick.volume,
                opt_dec(tick.bid),
                opt_dec(tick.ask),
                tick.source,
                tick.trade_id,
                tick_dedup(tick),
            )
        )
    before = conn.total_changes
    with transaction(conn):
        conn.executemany(_INSERT_TICK, rows)
    return conn.total_changes - before


def fetch_ticks(conn: sqlite3.Connection, symbol: str, start: int, end: int) -> list[TickData]:
    build = _TICK
    epoch, delta = EPOCH, timedelta
    return [
        build(
            {
                "time": epoch + delta(0, 0, t),
                "symbol": symbol,
                "price": Decimal(price),
                "volume": volume,
                "bid": None if bid is None else Decimal(bid),
                "ask": None if ask is None else Decimal(ask),
                "source": source,
                "trade_id": trade_id,
            }
        )
        for t, price, volume, bid, ask, source, trade_id in conn.execute(
            "SELECT time, price, volume, bid, ask, source, trade_id FROM ticks "
            "WHERE symbol = ? AND time >= ? AND time < ? ORDER BY time, id",
            (symbol, start, end),
        )
    ]


# -- candles ---------------------------------------------------------------------------------------
_CANDLE = trusted_builder(OHLCV)
_UPSERT_CANDLE = (
    "INSERT INTO candles (symbol, timeframe, time, open, high, low, close, volume) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (symbol, timeframe, time) DO UPDATE SET "
    "open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close, "
    "volume = excluded.volume"
)
_SELECT_CANDLES = (
    "SELECT time, open, high, low, close, volume FROM candles "
    "WHERE symbol = ? AND timeframe = ? AND time >= ? AND time < ? ORDER BY time"
)


def upsert_candles(conn: sqlite3.Connection, candles: list[Any], timeframe: str, step: int) -> int:
    """Check every candle (type, alignment to ``step`` microseconds), then write all in one transaction."""
    rows = []
    for index, candle in enumerate(candles):
        expect(candle, OHLCV, f"upsert_ohlcv: candle {index}")
        when = to_us(candle.time)
        if when % step:
            bucket = from_us(when - when % step)
            raise ContractError(
                f"upsert_ohlcv: candle {index} ({candle.symbol} at {candle.time.isoformat()}) "
                f"is not aligned to the {timeframe} interval: its bucket starts at "
                f"{bucket.isoformat()}; nothing was written"
            )
        rows.append(
            (
                candle.symbol,
                timeframe,
                when,
                dec(candle.open),
                dec(candle.high),
                dec(candle.low),
                dec(candle.close),
                candle.volume,
            )
        )
    with transaction(conn):
        conn.executemany(_UPSERT_CANDLE, rows)
    return len(rows)


def _ceil(when: int, step: int) -> int:
    """The first bucket start at or after ``when``."""
    return -(-when // step) * step


def fetch_candles(
    conn: sqlite3.Connection, symbol: str, timeframe: str, step: int, start: int, end: int
) -> list[OHLCV]:
    """Stored candles of buckets starting in ``[start, end)``, and tick aggregates for the other buckets."""
    rows = conn.execute(_SELECT_CANDLES, (symbol, timeframe, start, end)).fetchall()
    build, number = _CANDLE, Decimal
    epoch, delta = EPOCH, timedelta
    # Consecutive candles are one step apart: adding the step to the previous time
    # costs a third of building the time from its microseconds (and is as exact).
    step_delta = delta(0, 0, step)
    result: list[OHLCV] = []
    append = result.append
    when, expected = epoch, None
    for t, o, h, lo, c, v in rows:
        when = when + step_delta if t == expected else epoch + delta(0, 0, t)
        expected = t + step
        append(
            build(
                {
                    "time": when,
                    "symbol": symbol,
                    "open": number(o),
                    "high": number(h),
                    "low": number(lo),
                    "close": number(c),
                    "volume": v,
                }
            )
        )
    # Ticks whose bucket starts in [start, end) are those in [ceil(start), ceil(end)).
    ticks = conn.execute(
        "SELECT time, price, volume FROM ticks "
        "WHERE symbol = ? AND time >= ? AND time < ? ORDER BY time, id",
        (symbol, _ceil(start, step), _ceil(end, step)),
    )
    first = ticks.fetchone()
    if first is None:
        return result
    stored = {row[0] for row in rows}
    aggregated = list(_aggregate(_chain(first, ticks), step, stored, symbol))
    if not aggregated:
        return result
    result.extend(aggregated)
    result.sort(key=lambda candle: candle.time)
    return result


def _chain(first: Any, rest: Iterable[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def _aggregate(
    ticks: Iterable[tuple[int, str, int]], step: int, skip: set[int], symbol: str
) -> Iterator[OHLCV]:
    """One candle per bucket of the (time-ordered) ticks, except the buckets in ``skip``.

    Prices are compared as Decimals (never floats); memory stays constant per bucket.
    """
    bucket: int | None = None
    skipping = True
    open_ = high = low = close = Decimal(0)
    volume = 0
    for when, text, size in ticks:
        start = when - when % step
        if start != bucket:
            if not skipping and bucket is not None:
                yield _bar(bucket, symbol, open_, high, low, close, volume)
            bucket = start
            skipping = start in skip
            if skipping:
                continue
            open_ = high = low = close = Decimal(text)
            volume = size
            continue
        if skipping:
            continue
        price = Decimal(text)
        if price > high:
            high = price
        elif price < low:
            low = price
        close = price
        volume += size
    if not skipping and bucket is not None:
        yield _bar(bucket, symbol, open_, high, low, close, volume)


def _bar(
    bucket: int,
    symbol: str,
    open_: Decimal,
    high: Decimal,
    low: Decimal,
    close: Decimal,
    volume: int,
) -> OHLCV:
    return OHLCV(
        time=from_us(bucket),
        symbol=symbol,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
    )


def candle_times(
    conn: sqlite3.Connection, symbol: str, timeframe: str, start: int, end: int
) -> list[int]:
    """Bucket starts (microseconds) of the stored candles in ``[start, end)``, in order."""
    return [
        row[0]
        for row in conn.execute(
            "SELECT time FROM candles WHERE symbol = ? AND timeframe = ? AND time >= ? AND time < ? "
            "ORDER BY time",
            (symbol, timeframe, start, end),
        )
    ]


def bucket_count(step: int, start: int, end: int) -> int:
    """How many buckets start in ``[start, end)``."""
    return max(0, -(-(end - _ceil(start, step)) // step))


def find_gaps(
    conn: sqlite3.Connection, symbol: str, timeframe: str, step: int, start: int, end: int
) -> list[datetime]:
    """Bucket starts in ``[start, end)`` without a stored candle, in order."""
    stored = set(candle_times(conn, symbol, timeframe, start, end))
    return [from_us(when) for when in range(_ceil(start, step), end, step) if when not in stored]


# -- execution logs --------------------------------------------------------------------------------
_LOG = trusted_builder(ExecutionLog)
_LOG_COLUMNS = "time, order_id, symbol, stage, latency_ms, success, error_code"


def insert_log(conn: sqlite3.Connection, log: ExecutionLog) -> bool:
    expect(log, ExecutionLog, "store_execution_result")
    conn.execute(
        f"INSERT INTO execution_logs ({_LOG_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            to_us(log.time),
            log.order_id,
            log.symbol,
            log.stage,
            opt_dec(log.latency_ms),
            1 if log.success else 0,
            log.error_code,
        ),
    )
    return True


def fetch_logs(
    conn: sqlite3.Connection, order_id: str | None, start: int | None, end: int | None
) -> list[ExecutionLog]:
    clauses: list[str] = []
    params: list[Any] = []
    if order_id is not None:
        clauses.append("order_id = ?")
        params.append(order_id)
    if start is not None:
        clauses.append("time >= ?")
        params.append(start)
    if end is not None:
        clauses.append("time < ?")
        params.append(end)
    sql = f"SELECT {_LOG_COLUMNS} FROM execution_logs{_where(clauses)} ORDER BY time, id"
    build = _LOG
    return [
        build(
            {
                "time": from_us(t),
                "order_id": oid,
                "symbol": symbol,
                "stage": stage,
                "latency_ms": read_dec(latency),
                "success": bool(success),
                "error_code": error_code,
            }
        )
        for t, oid, symbol, stage, latency, success, error_code in conn.execute(sql, params)
    ]


# -- configuration ----------------------------------------------------------------------------------
_PARAM = trusted_builder(StrategyParam)
_RISK = trusted_builder(RiskConfig)


def save_param(conn: sqlite3.Connection, p: StrategyParam) -> None:
    expect(p, StrategyParam, "save_strategy_param")
    conn.execute(
        "INSERT INTO strategies (strategy_id, param_name, value, value_type, description, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (strategy_id, param_name) DO UPDATE SET "
        "value = excluded.value, value_type = excluded.value_type, "
        "description = excluded.description, updated_at = excluded.updated_at",
        (p.strategy_id, p.param_name, p.value, p.value_type, p.description, to_us(p.updated_at)),
    )


def fetch_params(conn: sqlite3.Connection, strategy_id: str | None) -> list[StrategyParam]:
    sql = (
        "SELECT strategy_id, param_name, value, value_type, description, updated_at FROM strategies"
    )
    params: tuple[Any, ...] = ()
    if strategy_id is not None:
        sql += " WHERE strategy_id = ?"
        params = (strategy_id,)
    build = _PARAM
    return [
        build(
            {
                "strategy_id": sid,
                "param_name": name,
                "value": value,
                "value_type": kind,
                "description": description,
                "updated_at": from_us(updated),
            }
        )
        for sid, name, value, kind, description, updated in conn.execute(
            sql + " ORDER BY strategy_id, param_name", params
        )
    ]


def save_risk(conn: sqlite3.Connection, c: RiskConfig) -> None:
    expect(c, RiskConfig, "save_risk_config")
    conn.execute(
        "INSERT INTO risk_configs (config_key, value, description, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (config_key) DO UPDATE SET value = excluded.value, "
        "description = excluded.description, updated_at = excluded.updated_at",
        (c.config_key, dec(c.value), c.description, to_us(c.updated_at)),
    )


def fetch_risk(conn: sqlite3.Connection) -> list[RiskConfig]:
    build = _RISK
    return [
        build(
            {
                "config_key": key,
                "value": Decimal(value),
                "description": description,
                "updated_at": from_us(updated),
            }
        )
        for key, value, description, updated in conn.execute(
            "SELECT config_key, value, description, updated_at FROM risk_configs ORDER BY config_key"
        )
    ]


# -- raw rows ------------------------------------------------------------------------------------------
def raw_rows(conn: sqlite3.Connection, table: str) -> list[dict[str, str]]:
    """The rows of one of the tables as header -> text (the contracts' Sheets form)."""
    rows: Sequence[Contract]
    if table == "positions":
        rows = fetch_positions(conn)
    elif table == "ledger":
        rows = fetch_ledger(conn, None, None, None)
    elif table == "strategies":
        rows = fetch_params(conn, None)
    elif table == "risk_configs":
        rows = fetch_risk(conn)
    elif table == "execution_logs":
        rows = fetch_logs(conn, None, None, None)
    else:  # pragma: no cover - the adapter resolves names first
        raise ValueError(table)
    return [row.to_sheets_row() for row in rows]
