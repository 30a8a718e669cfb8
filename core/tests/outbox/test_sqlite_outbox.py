"""The outbox conformance suite against :class:`~qts_data.outbox.SqliteOutbox`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from qts_data.errors import BackendError
from qts_data.outbox import Outbox, SqliteOutbox
from qts_data.testing import OutboxConformance


class TestSqliteOutboxConformance(OutboxConformance):
    @pytest.fixture
    def make_outbox(self, tmp_path: Path) -> Callable[[str], Outbox]:
        path = tmp_path / "outbox" / "outbox.db"  # shared by every outbox of the test
        return lambda owner: SqliteOutbox(path, owner)


class TestDurableSqliteOutboxConformance(OutboxConformance):
    @pytest.fixture
    def make_outbox(self, tmp_path: Path) -> Callable[[str], Outbox]:
        return lambda owner: SqliteOutbox(tmp_path / "outbox.db", owner, durable="full")


async def test_the_file_belongs_to_one_process_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    owner, reader = SqliteOutbox(path, "trading"), SqliteOutbox(path, "verify")
    await owner.open()
    await reader.open()  # a second opener (another process) reads but does not write
    try:
        intent = await owner.add("ledger", "o-1", "{}")
        assert owner.owns_file and await owner.claim_delivery()
        assert not reader.owns_file and not await reader.claim_delivery()
        assert await reader.depth() == (1, (await owner.peek(1, states=["intent"]))[0].created_us)
        assert await reader.pending_keys() == [("ledger", "o-1")]
        assert await reader.leftover_intents() == []  # the owner's intent is alive, not left over
        with pytest.raises(BackendError, match="belongs to another running process"):
            await reader.add("ledger", "o-2", "{}")
        assert await owner.pending_keys() == [("ledger", "o-1")]
    finally:
        await reader.close()
        await owner.close()  # its process ends: the next opener owns the file
    successor = SqliteOutbox(path, "restarted")
    await successor.open()
    try:
        assert successor.owns_file
        assert [r.id for r in await successor.leftover_intents()] == [intent]
    finally:
        await successor.close()
