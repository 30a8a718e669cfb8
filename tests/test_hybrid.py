"""The hybrid composition: modes, the durable outbox, the relay, and what survives failures."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from qts_data import open_stack
from qts_data.compositions import HybridAdapter
from qts_data.compositions.hybrid import DataSourceMode
from qts_data.contracts import HealthState, LedgerEntry, Position, TickData
from qts_data.errors import BackendError, ConfigError, NotSupportedError
from qts_data.outbox import SqliteOutbox
from qts_data.outbox.handover import EarlierOutbox
from qts_data.plugins import ComponentKind
from qts_data_memory.adapter import MemoryAdapter

T = datetime(2024, 5, 2, 1, 0, tzinfo=timezone.utc)

HYBRID = """
[stack]
adapter = "main"

[adapters.legacy]
type = "memory"

[adapters.db]
type = "memory"

[adapters.main]
type = "hybrid"
sheets = "legacy"
db = "db"
mode = "{mode}"
primary = "{primary}"
relay_interval_s = 0.05
"""


def entry(order_id: str) -> LedgerEntry:
    return LedgerEntry(
        timestamp=T, symbol="005930", side="BUY", qty="1", price="71000", order_id=order_id
    )


class Flaky(MemoryAdapter):
    """A secondary that can be down, or apply a write and then fail to answer (a client timeout)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.lose_answers = 0
        self.calls = 0

    async def append_ledger(self, entry: LedgerEntry) -> bool:
        self.calls += 1
        if self.down:
            raise ConnectionError("secondary unreachable")
        result = await super().append_ledger(entry)
        if self.lose_answers:
            self.lose_answers -= 1
            raise TimeoutError("the write landed but the answer was lost")
        return result


def hybrid(
    primary: MemoryAdapter, secondary: MemoryAdapter, path: Path, owner: str = "p1"
) -> HybridAdapter:
    return HybridAdapter(
        primary,
        secondary,
        outbox=SqliteOutbox(path, owner),
        relay_interval_s=0.05,
        relay_max_backoff_s=0.1,
    )


@pytest.mark.parametrize(
    ("mode", "primary", "reads_from", "written"),
    [
        ("SHEETS_ONLY", "sheets", "legacy", {"legacy"}),
        ("DB_ONLY", "sheets", "db", {"db"}),
        ("HYBRID", "sheets", "legacy", {"legacy", "db"}),
        ("HYBRID", "db", "db", {"legacy", "db"}),
    ],
)
async def test_modes_route_writes_and_reads(
    tmp_path: Path, mode: str, primary: str, reads_from: str, written: set[str]
) -> None:
    config = tmp_path / "qts.toml"
    config.write_text(HYBRID.format(mode=mode, primary=primary))
    async with open_stack(config) as stack:
        adapter = stack.adapter
        assert isinstance(adapter, HybridAdapter)
        assert await adapter.append_ledger(entry("o-1"))
        assert not await adapter.append_ledger(entry("o-1"))  # a retry is recorded once
        await adapter.update_position("005930", "1", "71000")
        assert await adapter.flush(5)
        for name in ("legacy", "db"):
            store: Any = stack.components[(ComponentKind.ADAPTER, name)]
            assert len(await store.fetch_ledger()) == (1 if name in written else 0), name
            assert len(await store.fetch_positions()) == (1 if name in written else 0), name
        reader: Any = stack.components[(ComponentKind.ADAPTER, reads_from)]
        await reader.save_position(Position(symbol="ONLY-HERE", qty="1", avg_price="1"))
        assert "ONLY-HERE" in [p.symbol for p in await adapter.fetch_positions()]
    assert (tmp_path / "qts-data-outbox.sqlite").exists() == (mode == "HYBRID")


async def test_primary_writes_succeed_while_the_secondary_is_down_and_wait_in_the_outbox(
    tmp_path: Path,
) -> None:
    primary, secondary = MemoryAdapter(), Flaky()
    secondary.down = True
    adapter = hybrid(primary, secondary, tmp_path / "outbox.sqlite")
    await adapter.open()
    for n in range(3):
        assert await adapter.append_ledger(entry(f"o-{n}"))
    assert len(await primary.fetch_ledger()) == 3
    health = await adapter.health_check()
    assert health.details["outbox_depth"] == 3
    assert health.details["outbox"] == "file"
    assert health.details["outbox_oldest_age_s"] is not None
    assert not await adapter.flush(0.3)
    secondary.down = False
    assert await adapter.flush(5)
    assert [e.order_id for e in await secondary.fetch_ledger()] == ["o-0", "o-1", "o-2"]
    assert (await adapter.health_check()).details["outbox_depth"] == 0
    await adapter.close()


async def test_the_outbox_outlives_the_process_and_the_relay_resumes(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    primary, secondary = MemoryAdapter(), Flaky()
    secondary.down = True
    first = hybrid(primary, secondary, path, owner="dead-process")
    await first.open()
    for n in range(5):
        await first.append_ledger(entry(f"o-{n}"))
    await first.close()  # the process goes away with 5 undelivered records
    secondary.down = False
    second = hybrid(primary, secondary, path, owner="new-process")
    await second.open()
    assert await second.flush(5)
    assert [e.order_id for e in await secondary.fetch_ledger()] == [f"o-{n}" for n in range(5)]
    await second.close()


async def test_a_write_whose_process_died_before_the_primary_write_is_replayed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.sqlite"
    crashed = SqliteOutbox(path, "crashed-process")
    await crashed.open()
    await crashed.add(
        "ledger", "o-9", entry("o-9").to_json()
    )  # intent written, then the process died
    await crashed.close()
    primary, secondary = MemoryAdapter(), MemoryAdapter()
    adapter = hybrid(primary, secondary, path, owner="restarted")
    await adapter.open()
    assert await adapter.flush(5)
    assert [e.order_id for e in await primary.fetch_ledger()] == ["o-9"]
    assert [e.order_id for e in await secondary.fetch_ledger()] == ["o-9"]
    assert adapter.relay is not None and adapter.relay.replayed == 1
    await adapter.close()


async def test_a_delivery_that_landed_but_timed_out_is_not_duplicated(tmp_path: Path) -> None:
    primary, secondary = MemoryAdapter(), Flaky()
    secondary.lose_answers = 1
    adapter = hybrid(primary, secondary, tmp_path / "outbox.sqlite")
    await adapter.open()
    await adapter.append_ledger(entry("o-1"))
    assert await adapter.flush(5)
    assert secondary.calls >= 2  # delivered again after the lost answer
    assert [e.order_id for e in await secondary.fetch_ledger()] == ["o-1"]
    await adapter.close()


async def test_a_failed_primary_write_leaves_nothing_to_deliver(tmp_path: Path) -> None:
    class Refusing(MemoryAdapter):
        async def append_ledger(self, entry: LedgerEntry) -> bool:
            raise RuntimeError("primary rejected the write")

    secondary = MemoryAdapter()
    adapter = hybrid(Refusing(), secondary, tmp_path / "outbox.sqlite")
    await adapter.open()
    with pytest.raises(RuntimeError, match="primary rejected"):
        await adapter.append_ledger(entry("o-1"))
    assert adapter.outbox is not None and (await adapter.outbox.depth())[0] == 0
    assert await secondary.fetch_ledger() == []
    await adapter.close()


async def test_writes_keep_their_order_per_key(tmp_path: Path) -> None:
    primary, secondary = MemoryAdapter(), MemoryAdapter()
    adapter = hybrid(primary, secondary, tmp_path / "outbox.sqlite")
    await adapter.open()
    for qty in range(1, 21):
        await adapter.update_position("005930", str(qty), "71000")
    assert await adapter.flush(5)
    held = await secondary.fetch_position("005930")
    assert held is not None and held.qty == 20
    await adapter.close()


async def test_ticks_go_to_the_side_that_supports_them(tmp_path: Path) -> None:
    class NoTicks(MemoryAdapter):
        capabilities = MemoryAdapter.capabilities - {"ticks"}

        async def ingest_ticks(self, *args: Any, **kwargs: Any) -> Any:
            raise NotSupportedError("Google Sheets does not support tick data")

    sheets, db = NoTicks(), MemoryAdapter()
    adapter = hybrid(sheets, db, tmp_path / "outbox.sqlite")
    await adapter.open()
    tick = TickData(time=T, symbol="005930", price="71000", volume=1, trade_id="1")
    assert (await adapter.ingest_ticks([tick])).inserted == 1
    assert await adapter.fetch_tick_data(
        "005930", T, datetime(2025, 1, 1, tzinfo=timezone.utc)
    ) == [tick]
    assert adapter.outbox is not None and (await adapter.outbox.depth())[0] == 0
    await adapter.close()


async def test_health_degrades_when_the_outbox_waits_too_long(tmp_path: Path) -> None:
    primary, secondary = MemoryAdapter(), Flaky()
    secondary.down = True
    adapter = HybridAdapter(
        primary,
        secondary,
        outbox=SqliteOutbox(tmp_path / "o.sqlite", "p"),
        outbox_alert_age_s=0.01,
        relay_interval_s=0.05,
    )
    await adapter.open()
    await adapter.append_ledger(entry("o-1"))
    await asyncio.sleep(0.05)
    health = await adapter.health_check()
    assert (
        health.state is HealthState.DEGRADED and "outbox: oldest record waiting" in health.message
    )
    await adapter.close()


async def test_config_that_sheets_only_reads_is_written_to_the_database(tmp_path: Path) -> None:
    from qts_data.contracts import StrategyParam

    class ReadOnlyConfig(MemoryAdapter):
        read_only_capabilities = frozenset({"strategies", "risk"})

        async def save_strategy_param(self, param: StrategyParam) -> None:
            raise NotSupportedError("strategy sheets are read-only")

    sheets, db = ReadOnlyConfig(), MemoryAdapter()
    adapter = hybrid(sheets, db, tmp_path / "outbox.sqlite")
    await adapter.open()
    param = StrategyParam(strategy_id="s1", param_name="window", value="20", value_type="int")
    await adapter.save_strategy_param(param)
    assert await db.fetch_strategy_params("s1") == [param]
    assert adapter.outbox is not None and (await adapter.outbox.depth())[0] == 0
    await adapter.close()


class Gated(MemoryAdapter):
    """A secondary whose first batch delivery waits for ``gate``; counts what it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.received = 0
        self.gate, self.arrived = asyncio.Event(), asyncio.Event()

    async def append_ledger_batch(self, entries: Any) -> int:
        batch = list(entries)
        self.received += len(batch)
        self.arrived.set()
        await self.gate.wait()
        added = 0
        for one in batch:
            added += await self.append_ledger(one)
        return added


async def test_flushing_while_the_relay_delivers_sends_each_record_once(tmp_path: Path) -> None:
    secondary = Gated()
    adapter = HybridAdapter(
        MemoryAdapter(),
        secondary,
        outbox=SqliteOutbox(tmp_path / "outbox.sqlite", "p1"),
        relay_interval_s=0.05,
        relay_coalesce_s=0,
    )
    await adapter.open()
    try:
        for n in range(20):
            assert await adapter.append_ledger(entry(f"o-{n}"))
        await asyncio.wait_for(secondary.arrived.wait(), 5)  # the loop's batch, at the gate
        flushing = asyncio.ensure_future(adapter.flush(5))
        await asyncio.sleep(0.1)  # the flush runs while that batch is in flight
        secondary.gate.set()
        assert await flushing
    finally:
        await adapter.close()
    assert secondary.received == 20
    assert adapter.relay is not None and adapter.relay.delivered == 20


def test_an_outbox_in_a_database_needs_a_primary_that_keeps_one(tmp_path: Path) -> None:
    config = tmp_path / "qts.toml"
    config.write_text(HYBRID.format(mode="HYBRID", primary="db") + 'outbox = "database"\n')
    with pytest.raises(ConfigError) as raised:
        open_stack(config)
    message = str(raised.value)
    assert str(config) in message and "adapters.main" in message
    assert "outbox = 'database' needs a primary that keeps an outbox" in message
    assert "MemoryAdapter" in message


async def test_a_second_process_on_the_outbox_file_reads_but_cannot_dual_write(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.sqlite"
    primary, secondary = MemoryAdapter(), Flaky()
    secondary.down = True
    trading = hybrid(primary, secondary, path, owner="trading")
    await trading.open()
    checking = hybrid(primary, secondary, path, owner="verify")  # e.g. `qts-data verify`
    await checking.open()
    try:
        await trading.append_ledger(entry("o-1"))
        assert (await checking.health_check()).details["outbox_depth"] == 1
        with pytest.raises(BackendError, match="belongs to another running process"):
            await checking.append_ledger(entry("o-2"))
        assert [e.order_id for e in await primary.fetch_ledger()] == ["o-1"]  # nothing written
        assert checking.relay is not None and checking.relay.replayed == 0
        secondary.down = False
        assert await trading.flush(5)
        assert checking.relay.delivered == 0  # only the owner delivers
        assert [e.order_id for e in await secondary.fetch_ledger()] == ["o-1"]
    finally:
        await checking.close()
        await trading.close()


class Switchable(MemoryAdapter):
    """A side that can be down for ledger and position writes."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def append_ledger(self, entry: LedgerEntry) -> bool:
        if self.down:
            raise ConnectionError("unreachable")
        return await super().append_ledger(entry)

    async def save_position(self, position: Position) -> None:
        if self.down:
            raise ConnectionError("unreachable")
        await super().save_position(position)


def position(qty: str) -> Position:
    return Position(symbol="005930", qty=qty, avg_price="71000")


async def phase_two_leftovers(path: Path, sheets: MemoryAdapter, db: Switchable) -> None:
    """Phase 2 (Sheets primary) ends with writes still waiting for the database (as intents:
    which of them completed was known only to the process that ended)."""
    db.down = True
    phase2 = HybridAdapter(
        sheets, db, outbox=SqliteOutbox(path, "phase2", delivers_to="db"), relay_interval_s=0.05
    )
    await phase2.open()
    await phase2.append_ledger(entry("o-1"))
    await phase2.save_position(position("1"))
    await phase2.close()


async def test_records_left_for_the_new_primary_are_delivered_before_it_takes_writes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.sqlite"
    sheets, db = Switchable(), Switchable()
    await phase_two_leftovers(path, sheets, db)
    db.down = False
    sheets.down = True  # the intents cannot be replayed to Sheets: delivered all the same
    phase3 = HybridAdapter(  # the database is the primary now, with an outbox of its own
        sheets,
        db,
        primary="db",
        outbox=SqliteOutbox(tmp_path / "db-outbox.sqlite", "phase3"),
        earlier_outboxes=[EarlierOutbox("file", SqliteOutbox(path, "phase3"), sheets, db)],
    )
    await phase3.open()
    try:
        # delivered during open: the newer write below is not overwritten by the older one
        assert [e.order_id for e in await db.fetch_ledger()] == ["o-1"]
        await phase3.save_position(position("2"))
        stored = await db.fetch_position("005930")
        assert stored is not None and stored.qty == 2
    finally:
        await phase3.close()
    left = SqliteOutbox(path, "check")
    await left.open()
    assert await left.depth() == (0, None)
    await left.close()


async def test_a_file_reused_in_the_next_phase_is_emptied_towards_its_old_target_first(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.sqlite"  # outbox = "file" in both phases
    sheets, db = MemoryAdapter(), Switchable()
    await phase_two_leftovers(path, sheets, db)
    db.down = False
    phase3 = HybridAdapter(
        sheets,
        db,
        primary="db",
        outbox=SqliteOutbox(path, "phase3", delivers_to="sheets"),
        earlier_outboxes=[
            EarlierOutbox("file", SqliteOutbox(path, "phase3"), sheets, db, current_target="sheets")
        ],
    )
    await phase3.open()
    try:
        assert [e.order_id for e in await db.fetch_ledger()] == ["o-1"]  # not sent to Sheets
        assert isinstance(phase3.outbox, SqliteOutbox)
        assert await phase3.outbox.recorded_target() == "sheets"
        await phase3.append_ledger(entry("o-2"))
        assert await phase3.flush(5)
        assert [e.order_id for e in await sheets.fetch_ledger()] == ["o-1", "o-2"]
    finally:
        await phase3.close()


async def test_a_hybrid_does_not_take_writes_while_older_ones_cannot_reach_its_primary(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.sqlite"
    sheets, db = MemoryAdapter(), Switchable()
    await phase_two_leftovers(path, sheets, db)  # the database stays down
    phase4 = HybridAdapter(
        sheets,
        db,
        DataSourceMode.DB_ONLY,
        earlier_outboxes=[EarlierOutbox("file", SqliteOutbox(path, "phase4"), sheets, db)],
        handover_timeout_s=0.3,
        relay_max_backoff_s=0.05,
    )
    with pytest.raises(BackendError, match="2 records of the earlier file outbox could not be"):
        await phase4.open()
    await phase4.close()
    assert await db.fetch_ledger() == []


async def test_records_for_a_side_no_longer_written_are_delivered_in_the_background(
    tmp_path: Path,
) -> None:
    sheets, db = Switchable(), MemoryAdapter()
    sheets.down = True
    phase3 = HybridAdapter(
        sheets,
        db,
        primary="db",
        outbox=SqliteOutbox(tmp_path / "db-outbox.sqlite", "phase3", delivers_to="sheets"),
    )
    await phase3.open()
    await phase3.append_ledger(entry("o-1"))
    await phase3.close()
    phase4 = HybridAdapter(  # DB_ONLY: nothing else writes to Sheets, so nothing waits for it
        sheets,
        db,
        DataSourceMode.DB_ONLY,
        earlier_outboxes=[
            EarlierOutbox("file", SqliteOutbox(tmp_path / "db-outbox.sqlite", "phase4"), sheets, db)
        ],
        relay_max_backoff_s=0.05,
    )
    await phase4.open()
    try:
        await phase4.append_ledger(entry("o-2"))  # open did not wait for Sheets
        health = await phase4.health_check()
        assert health.state is HealthState.DEGRADED
        assert "earlier file outbox: 1 records to deliver" in health.message
        sheets.down = False
        for _ in range(100):
            if await sheets.fetch_ledger():
                break
            await asyncio.sleep(0.02)
        assert [e.order_id for e in await sheets.fetch_ledger()] == ["o-1"]
        assert (await phase4.health_check()).state is HealthState.HEALTHY
    finally:
        await phase4.close()


def test_an_inspecting_stack_neither_relays_nor_takes_the_outbox_file(tmp_path: Path) -> None:
    config = tmp_path / "qts.toml"
    config.write_text(HYBRID.format(mode="HYBRID", primary="sheets"))

    async def run() -> None:
        async with open_stack(config, inspect_only=True) as inspecting:
            hybrid = inspecting.adapter
            assert isinstance(hybrid, HybridAdapter) and hybrid.relay is not None
            assert isinstance(hybrid.outbox, SqliteOutbox) and not hybrid.outbox.owns_file
            with pytest.raises(BackendError, match="belongs to another running process"):
                await hybrid.append_ledger(entry("o-1"))
            # a trading process starting now still gets the file
            async with open_stack(config) as trading:
                assert isinstance(trading.adapter, HybridAdapter)
                assert isinstance(trading.adapter.outbox, SqliteOutbox)
                assert trading.adapter.outbox.owns_file
                assert await trading.adapter.append_ledger(entry("o-1"))
            assert hybrid.relay.delivered == 0

    asyncio.run(run())
