"""Helpers of the timescale plugin's tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from qts_data.contracts import (
    OHLCV,
    Contract,
    ExecutionLog,
    LedgerEntry,
    Position,
    RiskConfig,
    StrategyParam,
)
from qts_data_timescale.adapter import TimescaleAdapter
from qts_data_timescale.outbox import PostgresOutbox

#: Every table of the schema, emptied between tests.
TABLES = (
    "positions, strategies, risk_configs, t_ledger_keys, t_ledger, tick_data, ohlcv_1d, "
    "ohlcv_bars, execution_logs, qts_outbox, qts_outbox_lease"
)


def make(dsn: str, **settings: Any) -> TimescaleAdapter:
    """An unopened adapter over ``dsn`` with a small pool."""
    settings.setdefault("pool_min_size", 1)
    settings.setdefault("pool_max_size", 4)
    return TimescaleAdapter(dsn=dsn, **settings)


async def migrated(dsn: str, **settings: Any) -> str:
    adapter = make(dsn, **settings)
    await adapter.open()
    try:
        await adapter.migrate()
    finally:
        await adapter.close()
    return dsn


Factory = Callable[[], TimescaleAdapter]


# -- the writes the hybrid composition dual-writes, for the outbox tests -------------------------
T0 = datetime(2026, 3, 2, tzinfo=timezone.utc)


def entry(n: int) -> LedgerEntry:
    return LedgerEntry(
        timestamp=T0 + timedelta(seconds=n),
        symbol="005930",
        side="BUY",
        qty="1",
        price=str(70000 + n),
        order_id=f"ord-{n}",
    )


CANDLE = OHLCV(
    time=T0, symbol="005930", open="70000", high="71000", low="69000", close="70500", volume=10
)
DAY = timedelta(days=1)
UNKEYED = entry(2).model_copy(update={"order_id": None})
POSITION = Position(symbol="005930", qty="3", avg_price="70000")
LOG = ExecutionLog(time=T0, order_id="ord-1", symbol="005930", stage="sent", success=True)
PARAM = StrategyParam(strategy_id="s1", param_name="window", value="20", value_type="int")
RISK = RiskConfig(config_key="max_loss", value="0.02")
Call = Callable[[Any], Awaitable[Any]]
#: op, contract, the write, what it returns, what the database then holds: every write the
#: hybrid composition dual-writes, each with its outbox record in the same statement.
WRITES: dict[str, tuple[str, Contract, Call, Any, Call]] = {
    "ledger": (
        "ledger",
        entry(1),
        lambda a: a.append_ledger(entry(1)),
        True,
        lambda a: a.fetch_ledger(),
    ),
    "ledger-unkeyed": (
        "ledger",
        UNKEYED,
        lambda a: a.append_ledger(UNKEYED),
        True,
        lambda a: a.fetch_ledger(),
    ),
    "position": (
        "position",
        POSITION,
        lambda a: a.save_position(POSITION),
        None,
        lambda a: a.fetch_positions(),
    ),
    "candle-1d": (
        "candle",
        CANDLE,
        lambda a: a.upsert_ohlcv([CANDLE], "1d"),
        1,
        lambda a: a.fetch_ohlcv("005930", T0, T0 + DAY, "1d"),
    ),
    "candle-1m": (
        "candle",
        CANDLE,
        lambda a: a.upsert_ohlcv([CANDLE], "1m"),
        1,
        lambda a: a.fetch_ohlcv("005930", T0, T0 + DAY, "1m"),
    ),
    "log": (
        "execution_log",
        LOG,
        lambda a: a.store_execution_result(LOG),
        True,
        lambda a: a.fetch_execution_logs("ord-1"),
    ),
    "strategy": (
        "strategy",
        PARAM,
        lambda a: a.save_strategy_param(PARAM),
        None,
        lambda a: a.fetch_strategy_params("s1"),
    ),
    "risk": (
        "risk",
        RISK,
        lambda a: a.save_risk_config(RISK),
        None,
        lambda a: a.fetch_risk_configs(),
    ),
}


async def check_write_with_its_record(
    adapter: TimescaleAdapter, outbox: PostgresOutbox, name: str
) -> None:
    """The write ``WRITES[name]`` through ``outbox.commit_with``: stored, with its record."""
    op, contract, write, returns, stored = WRITES[name]
    record_id, result = await outbox.commit_with(
        op, "k", contract.to_json(), lambda: write(adapter)
    )
    assert result == returns
    assert await stored(adapter) == [contract]
    [record] = await outbox.peek(10)
    assert (record.id, record.op, record.contract()) == (record_id, op, contract)
