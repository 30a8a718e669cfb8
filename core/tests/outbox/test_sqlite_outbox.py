"""The outbox conformance suite against :class:`~qts_data.outbox.SqliteOutbox`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

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
