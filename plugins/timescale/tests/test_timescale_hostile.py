"""Hostile symbols and values are rejected or stored verbatim, never executed, never half-written."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from qts_data.contracts import (
    OHLCV,
    ExecutionLog,
    LedgerEntry,
    Position,
    RiskConfig,
    StrategyParam,
    TickData,
)
from qts_data.errors import ContractError
from qts_data.testing import run_psql
from qts_data_timescale.adapter import TimescaleAdapter
from qts_data_timescale.errors import translate

UTC = timezone.utc
T0 = datetime(2024, 1, 2, tzinfo=UTC)
FAR = T0 + timedelta(days=365)
INJECTIONS = [
    "'; DROP TABLE tick_data; --",
    "BTC' OR '1'='1",
    'x"); DELETE FROM positions; --',
    "$1",
    "\\x00",
    "A" * 10_000,
]


def tick(i: int, **fields: Any) -> TickData:
    return TickData(
        time=T0 + timedelta(seconds=i), symbol="BTC", price=Decimal(1), volume=1, **fields
    )


def forged(i: int, **fields: Any) -> TickData:
    """A TickData that skipped validation (``Contract.trusted``): the database must still refuse it."""
    values: dict[str, Any] = {
        "time": T0 + timedelta(seconds=i),
        "symbol": "BTC",
        "price": Decimal(1),
        "volume": 1,
        "bid": None,
        "ask": None,
        "source": None,
        "trade_id": f"f{i}",
    }
    values.update(fields)
    return TickData.trusted(values)


@pytest.mark.parametrize("symbol", INJECTIONS)
async def test_hostile_symbols_are_rejected_by_the_contract_and_harmless_in_queries(
    adapter: TimescaleAdapter, symbol: str
) -> None:
    await adapter.ingest_ticks([tick(0, trade_id="keep")])
    with pytest.raises(ContractError):
        TickData(time=T0, symbol=symbol, price=1, volume=1)
    assert await adapter.fetch_tick_data(symbol, T0, FAR) == []
    assert await adapter.fetch_ohlcv(symbol, T0, FAR, "1m") == []
    assert await adapter.fetch_ledger(symbol=symbol) == []
    assert await adapter.fetch_position(symbol) is None
    assert await adapter.find_gaps(symbol, "1d", T0, T0 + timedelta(days=2)) == [
        T0,
        T0 + timedelta(days=1),
    ]
    assert len(await adapter.fetch_tick_data("BTC", T0, FAR)) == 1


async def test_hostile_text_is_stored_verbatim(adapter: TimescaleAdapter) -> None:
    text = '\'); DROP TABLE positions; -- ‘quoted’ "double" \\ back $$dollar$$ 한글'
    param = StrategyParam(strategy_id="s", param_name="p'; --", value=text, description=text)
    await adapter.save_strategy_param(param)
    assert [p.model_dump() for p in await adapter.fetch_strategy_params()] == [param.model_dump()]
    await adapter.save_risk_config(RiskConfig(config_key="k'--", value=1, description=text))
    assert (await adapter.fetch_risk_configs())[0].description == text
    hostile_tick = tick(1, source="x'); DROP", trade_id="t'; DELETE FROM tick_data; --")
    assert (await adapter.ingest_ticks([hostile_tick])).inserted == 1
    assert (await adapter.fetch_tick_data("BTC", T0, FAR))[
        0
    ].model_dump() == hostile_tick.model_dump()
    entry = LedgerEntry(
        timestamp=T0,
        symbol="BTC",
        side="BUY",
        qty=1,
        price=1,
        order_id="o'; DROP TABLE t_ledger; --",
        strategy_tag="'; --",
    )
    assert await adapter.append_ledger(entry) is True
    assert await adapter.append_ledger(entry) is False
    log = ExecutionLog(time=T0, order_id="o'--", symbol="BTC", stage="'; DROP", success=True)
    await adapter.store_execution_result(log)
    assert (await adapter.fetch_execution_logs(order_id="o'--"))[0].stage == "'; DROP"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price", Decimal("NaN")),
        ("price", Decimal("Infinity")),
        ("price", Decimal("1e30")),
        ("price", Decimal("-1")),
        ("volume", 2**70),
        ("volume", -1),
        ("symbol", "S" * 25),
        ("source", "x" * 21),
        ("trade_id", "t" * 65),
    ],
)
@pytest.mark.parametrize("method", ["copy", "unnest"])
async def test_values_that_skip_the_contract_fail_their_whole_batch(
    adapter: TimescaleAdapter, empty_database: str, field: str, value: Any, method: str
) -> None:
    target = adapter
    if method != "copy":
        target = TimescaleAdapter(dsn=empty_database, pool_min_size=1, ingest_method=method)
        await target.open()
    try:
        await target.ingest_ticks([tick(100 + i, trade_id=f"k{i}") for i in range(3)])
        batch = [forged(0), forged(1), forged(2, **{field: value}), forged(3)]
        with pytest.raises(ContractError, match="nothing was written"):
            await target.ingest_ticks(batch, batch_size=10)
        stored = await target.fetch_tick_data("BTC", T0, FAR)
        assert [t.trade_id for t in stored] == ["k0", "k1", "k2"]
    finally:
        if target is not adapter:
            await target.close()


async def test_forged_nan_candles_and_nul_bytes_are_refused(adapter: TimescaleAdapter) -> None:
    bad = OHLCV.trusted(
        {
            "time": T0,
            "symbol": "BTC",
            "open": Decimal("NaN"),
            "high": Decimal(1),
            "low": Decimal(1),
            "close": Decimal(1),
            "volume": 1,
        }
    )
    good = OHLCV(
        time=T0 + timedelta(days=1), symbol="BTC", open=1, high=1, low=1, close=1, volume=1
    )
    with pytest.raises(ContractError):
        await adapter.upsert_ohlcv([good, bad])
    assert await adapter.fetch_ohlcv("BTC", T0, FAR) == []
    with pytest.raises(ContractError):
        await adapter.save_strategy_param(
            StrategyParam.trusted(
                {
                    "strategy_id": "s",
                    "param_name": "p",
                    "value": "a\x00b",
                    "value_type": "string",
                    "description": None,
                    "updated_at": T0,
                }
            )
        )
    assert await adapter.fetch_strategy_params() == []


async def test_a_constraint_of_the_database_is_one_line_naming_it(
    adapter: TimescaleAdapter, empty_database: str
) -> None:
    """A CHECK a team added (stricter than the contract): one line, the constraint named."""
    run_psql(empty_database, "ALTER TABLE positions ADD CONSTRAINT qty_below_100 CHECK (qty < 100)")
    try:
        with pytest.raises(ContractError) as caught:
            await adapter.save_position(Position(symbol="BTC", qty=500, avg_price=1))
        message = str(caught.value)
        assert "\n" not in message
        assert message.startswith(
            "save_position: the database refused a value: constraint qty_below_100 of positions: "
        )
        assert message.endswith("; nothing was written")
        assert await adapter.fetch_positions() == []
    finally:
        run_psql(empty_database, "ALTER TABLE positions DROP CONSTRAINT qty_below_100")


def test_a_refused_read_does_not_say_nothing_was_written() -> None:
    refusal = asyncpg.exceptions.InvalidTextRepresentationError("invalid input syntax\nDETAIL: x")
    read = translate(refusal, "fetch_positions", "h:5432/qts", writes=False)
    assert isinstance(read, ContractError)
    assert str(read) == (
        "fetch_positions: the database refused a value: "
        "InvalidTextRepresentationError: invalid input syntax DETAIL: x"
    )
    written = translate(refusal, "save_position", "h:5432/qts")
    assert str(written).endswith("; nothing was written")
