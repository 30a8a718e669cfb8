"""The tiered composition keeps the adapter contract: the core's conformance suite over it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from qts_data.compositions.tiered import TieredAdapter
from qts_data.sources import SyntheticMarketSource, SyntheticSourceSettings
from qts_data.testing import AdapterConformance
from qts_data_memory.adapter import SHEETS, MemoryAdapter


class TestTieredOverMemory(AdapterConformance):
    raw_sheet_names = tuple(SHEETS)

    @pytest.fixture
    def make_adapter(self) -> Callable[[], TieredAdapter]:
        return lambda: TieredAdapter(MemoryAdapter())


class TestTieredWithDiskAndAnEmptyUpstream(AdapterConformance):
    """Every tier in the path; the source knows no symbol, so the suite's data is all there is."""

    raw_sheet_names = tuple(SHEETS)

    @pytest.fixture
    def make_adapter(self, tmp_path: Path) -> Callable[[], TieredAdapter]:
        def make() -> TieredAdapter:
            source = SyntheticMarketSource(SyntheticSourceSettings(symbols=[]))
            return TieredAdapter(MemoryAdapter(), source, disk_path=str(tmp_path / "cache"))

        return make
