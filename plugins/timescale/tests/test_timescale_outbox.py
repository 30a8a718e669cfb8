"""The hybrid dual-write's outbox in PostgreSQL: the outbox contract, records committed with
their write (both or neither, also through a lost connection), and one relay at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest
import pytest_asyncio
from timescale_support import WRITES, check_write_with_its_record, entry, make

from qts_data.contracts import (
    Position,
)
from qts_data.errors import BackendError, ContractError
from qts_data.interfaces import OutboxHosting
from qts_data.outbox import READY, Outbox, OutboxRelay
from qts_data.testing import OutboxConformance, run_psql
from qts_data_timescale.adapter import TimescaleAdapter
from qts_data_timescale.outbox import PostgresOutbox


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


@pytest.mark.parametrize("name", list(WRITES))
async def test_every_dual_written_write_commits_with_its_record(
    adapter: TimescaleAdapter, outbox: PostgresOutbox, name: str
) -> None:
    await check_write_with_its_record(adapter, outbox, name)


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


JITTER = """
CREATE FUNCTION qts_test_jitter() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN PERFORM pg_sleep(random() * 0.004); RETURN NEW; END $$;
CREATE TRIGGER qts_test_jitter BEFORE INSERT ON positions
FOR EACH ROW EXECUTE FUNCTION qts_test_jitter();
"""


async def test_records_of_one_key_are_ordered_as_their_writes_committed(
    empty_database: str,
) -> None:
    # Writes racing for one symbol, each held up a random moment before it takes the row:
    # a record inserted before that moment could get an id out of the order of the writes.
    run_psql(empty_database, JITTER)
    adapter = make(empty_database, pool_max_size=12)
    await adapter.open()
    outbox = adapter.transactional_outbox("racer")
    await outbox.open()

    async def save(symbol: str, qty: int) -> None:
        position = Position(symbol=symbol, qty=str(qty), avg_price="71000")
        await outbox.commit_with(
            "position", symbol, position.to_json(), lambda: adapter.save_position(position)
        )

    try:
        for _ in range(5):  # rounds of 8 racing writes to each of 4 symbols
            await asyncio.gather(*(save(f"00000{s}", qty) for qty in range(1, 9) for s in range(4)))
            records = await outbox.peek(1000)
            newest = {r.key: r.contract().qty for r in records}  # the last record of each key
            stored = {p.symbol: p.qty for p in await adapter.fetch_positions()}
            # delivering in id order ends where the database ended, for every symbol
            assert newest == stored
            await outbox.ack([r.id for r in records])
    finally:
        await outbox.close()
        await adapter.close()
        run_psql(
            empty_database,
            "DROP TRIGGER qts_test_jitter ON positions; DROP FUNCTION qts_test_jitter()",
        )


async def test_one_relay_delivers_at_a_time(empty_database: str) -> None:
    first, second = make(empty_database), make(empty_database)
    await first.open()
    await second.open()
    a = first.transactional_outbox("a", lease_s=0.3)
    b = second.transactional_outbox("b", lease_s=0.3)
    try:
        await a.open()
        await b.open()
        assert await a.claim_delivery()
        assert not await b.claim_delivery()
        assert await a.claim_delivery()  # renewing is allowed
        await a.close()  # releases its turn
        assert not await b.claim_delivery()  # b asks the database again only later...
        await asyncio.sleep(0.15)  # ...a third of its lease after it last asked
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
