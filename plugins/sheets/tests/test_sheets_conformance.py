"""The core's adapter conformance suite, run against the sheets adapter over the local stand-in.

Every test gets a new spreadsheet holding only the four header rows. Strategy
and risk sheets are writable here (``writable_config``), so the whole suite
runs; their default, read-only behaviour is tested in test_config_sheets.py.
Ticks, candles and execution logs are not Sheets capabilities: the suite
checks that they raise NotSupportedError naming the operation.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from qts_data.testing import AdapterConformance
from qts_data_sheets import SheetsSettings
from qts_data_sheets.adapter import SheetsAdapter
from qts_data_sheets.testing import SheetsStandIn
from qts_data_sheets.testing.fixtures import create_default_spreadsheet, standin_settings


class TestSheetsAdapterConformance(AdapterConformance):
    raw_sheet_names = ("positions", "ledger", "strategies", "risk_configs")

    @pytest.fixture
    def make_adapter(self, sheets_standin: SheetsStandIn) -> Callable[[], SheetsAdapter]:
        def make() -> SheetsAdapter:
            sid = create_default_spreadsheet(sheets_standin)
            return SheetsAdapter(
                SheetsSettings(**standin_settings(sheets_standin, sid, writable_config=True))
            )

        return make
