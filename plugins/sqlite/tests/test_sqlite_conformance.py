"""The core's adapter conformance suite, on a database file and on ":memory:"."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from qts_data.testing import AdapterConformance
from qts_data_sqlite.adapter import SHEETS, SqliteAdapter


class TestSqliteFileAdapterConformance(AdapterConformance):
    raw_sheet_names = tuple(SHEETS)

    @pytest.fixture
    def make_adapter(
        self, make_file_adapter: Callable[[], SqliteAdapter]
    ) -> Callable[[], SqliteAdapter]:
        return make_file_adapter


class TestSqliteMemoryAdapterConformance(AdapterConformance):
    raw_sheet_names = tuple(SHEETS)

    @pytest.fixture
    def make_adapter(self) -> Callable[[], SqliteAdapter]:
        return lambda: SqliteAdapter(":memory:")
