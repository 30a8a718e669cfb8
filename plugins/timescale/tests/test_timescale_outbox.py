"""The hybrid dual-write's outbox in PostgreSQL: the outbox contract, records committed with
their write (both or neither, also through a lost connection), and one relay at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from timescale_support import make

from qts_data.contracts import (
    OHLCV,
    Contract,
    ExecutionLog,
    LedgerEntry,
    Position,
    RiskConfig,
    StrategyParam,
)
from qts_data.errors import BackendError, ContractError
from qts_data.interfaces import OutboxHosting
from qts_data.outbox import READY, Outbox, OutboxRelay
from qts_data.testing import OutboxConformance, run_psql
from qts_data_timescale.adapter import TimescaleAdapter
from qts_data_timescale.outbox import PostgresOutbox

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


class TestPostgresOutboxConformance(OutboxConformance):
    @pytest_asyncio.fixture
    async def make_outbox(self, empty_database: str) -> AsyncIterator[Callable[[str], object]]:
        adapters: list[TimescaleAdapter] = []

        async def outbox(owner: str) -> Outbox:
            adapter = make(empty_database)
            await adapter.open()
            adapters.append(adapter)
            return adapter.transactional_outbox(owner)

        yield outbox
        for adapter in adapters:
            await adapter.close()


@pytest_asyncio.fixture
async def outbox(adapter: TimescaleAdapter) -> AsyncIterator[PostgresOutbox]:
    made = adapter.transactional_outbox("test-process")
    await made.open()
    try:
        yield made
    finally:
        await made.close()


def outbox_rows(dsn: str) -> str:
    return run_psql(
        dsn, "SELECT string_agg(op || ':' || key || ':' || state, ',' ORDER BY id) FROM qts_outbox"
    )


def test_the_adapter_hosts_the_outbox(adapter: TimescaleAdapter) -> None:
    assert isinstance(adapter, OutboxHosting)
    assert isinstance(adapter.transactional_outbox("p"), PostgresOutbox)


async def test_a_write_and_its_record_commit_together(
    adapter: TimescaleAdapter, outbox: PostgresOutbox, empty_database: str
) -> None:
    record_id, recorded = await outbox.commit_with(
        "ledger", "ord-1", entry(1).to_json(), lambda: adapter.append_ledger(entry(1))
    )
    assert recorded is True
    [record] = await outbox.peek(10)
    assert (record.id, record.state, record.key, record.owner) == (
        record_id,
        READY,
        "ord-1",
        "test-process",
    )
    assert record.contract() == entry(1)
    assert [e.order_id for e in await adapter.fetch_ledger()] == ["ord-1"]


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


@pytest.mark.parametrize("name", list(WRITES))
async def test_every_dual_written_write_commits_with_its_record(
    adapter: TimescaleAdapter, outbox: PostgresOutbox, name: str
) -> None:
    op, contract, write, returns, stored = WRITES[name]
    record_id, result = await outbox.commit_with(
        op, "k", contract.to_json(), lambda: write(adapter)
    )
    assert result == returns
    assert await stored(adapter) == [contract]
    [record] = await outbox.peek(10)
    assert (record.id, record.op, record.contract()) == (record_id, op, contract)


async def test_a_write_refused_before_the_database_stores_no_record(
    adapter: TimescaleAdapter, outbox: PostgresOutbox, empty_database: str
) -> None:
    def bad() -> object:
        return adapter.save_position("not a position")  # type: ignore[arg-type]

    with pytest.raises(ContractError):
        await outbox.commit_with("position", "X", "{}", bad)  # type: ignore[arg-type]
    assert await outbox.depth() == (0, None)


async def test_a_record_that_cannot_be_stored_rolls_the_write_back(
    adapter: TimescaleAdapter, outbox: PostgresOutbox, empty_database: str
) -> None:
    position = Position(symbol="005930", qty="10", avg_price="71000")
    # PostgreSQL text cannot hold NUL: the record's insert fails, after the write's statement
    with pytest.raises(ContractError, match="save_position with its outbox record"):
        await outbox.commit_with(
            "position", "005930", "\x00", lambda: adapter.save_position(position)
        )
    assert await adapter.fetch_positions() == []
    assert await outbox.depth() == (0, None)


async def test_a_lost_connection_retries_the_write_with_its_record(
    adapter: TimescaleAdapter, outbox: PostgresOutbox, empty_database: str
) -> None:
    await adapter.fetch_positions()  # the pool holds an open connection
    terminated = run_psql(
        empty_database,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    assert int(terminated) >= 1
    position = Position(symbol="005930", qty="10", avg_price="71000")
    await outbox.commit_with(
        "position", "005930", position.to_json(), lambda: adapter.save_position(position)
    )
    assert [p.qty for p in await adapter.fetch_positions()] == [Decimal("10")]
    assert outbox_rows(empty_database) == "position:005930:ready"


async def test_a_record_commits_with_exactly_one_write(
    adapter: TimescaleAdapter, outbox: PostgresOutbox
) -> None:
    async def two_writes() -> None:
        await adapter.append_ledger(entry(1))
        await adapter.append_ledger(entry(2))

    with pytest.raises(RuntimeError, match="more than one write"):
        await outbox.commit_with("ledger", "ord-1", entry(1).to_json(), two_writes)
    # the first write and its record committed together; the second was refused
    assert [e.order_id for e in await adapter.fetch_ledger()] == ["ord-1"]
    assert await outbox.pending_keys() == [("ledger", "ord-1")]


async def test_a_write_that_stores_nothing_still_keeps_its_record(
    adapter: TimescaleAdapter, outbox: PostgresOutbox
) -> None:
    _, count = await outbox.commit_with(
        "candle", "none", "{}", lambda: adapter.upsert_ohlcv([], "1d")
    )
    assert count == 0
    assert await outbox.pending_keys() == [("candle", "none")]


async def test_records_of_one_key_are_ordered_as_their_writes_committed(
    adapter: TimescaleAdapter, outbox: PostgresOutbox
) -> None:
    async def save(qty: int) -> None:
        position = Position(symbol="005930", qty=str(qty), avg_price="71000")
        await outbox.commit_with(
            "position", "005930", position.to_json(), lambda: adapter.save_position(position)
        )

    await asyncio.gather(*(save(qty) for qty in range(1, 21)))
    records = await outbox.peek(100)
    stored = await adapter.fetch_position("005930")
    assert stored is not None and len(records) == 20
    # the newest record is the write the database kept: delivering in id order ends the same
    assert records[-1].contract().qty == stored.qty


async def test_one_relay_delivers_at_a_time(empty_database: str) -> None:
    first, second = make(empty_database), make(empty_database)
    await first.open()
    await second.open()
    a = first.transactional_outbox("a")
    b = second.transactional_outbox("b", lease_s=0.3)
    try:
        await a.open()
        await b.open()
        assert await a.claim_delivery()
        assert not await b.claim_delivery()
        assert await a.claim_delivery()  # renewing is allowed
        await a.close()  # releases its turn
        assert await b.claim_delivery()
        await a.open()
        assert not await a.claim_delivery()
        await asyncio.sleep(0.45)  # b's heartbeat keeps its turn past lease_s
        assert not await a.claim_delivery()
        await second.close()  # b loses its database (as a dead process would)
        await asyncio.sleep(0.45)
        assert await a.claim_delivery()
    finally:
        await a.close()
        await b.close()
        await first.close()
        await second.close()


async def test_a_relay_without_the_lease_delivers_nothing(
    adapter: TimescaleAdapter, outbox: PostgresOutbox, empty_database: str
) -> None:
    other = make(empty_database)
    await other.open()
    holder = other.transactional_outbox("holder")
    await holder.open()
    try:
        assert await holder.claim_delivery()
        await outbox.commit_with(
            "ledger", "ord-1", entry(1).to_json(), lambda: adapter.append_ledger(entry(1))
        )
        secondary = make(empty_database)  # any adapter would do: it must receive nothing
        relay = OutboxRelay(outbox, adapter, secondary)
        assert await relay.run_once() == 0
        assert await outbox.depth() != (0, None)
    finally:
        await holder.close()
        await other.close()


async def test_an_unmigrated_database_has_no_outbox(
    make_postgres_database: Callable[[], str],
) -> None:
    adapter = make(make_postgres_database())
    await adapter.open()
    try:
        with pytest.raises(BackendError, match=r"no outbox table.*qts-data migrate"):
            await adapter.transactional_outbox("p").open()
    finally:
        await adapter.close()
