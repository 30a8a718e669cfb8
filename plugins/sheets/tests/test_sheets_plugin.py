"""The plugin: registration, lazy import of gspread, stacks from configuration, settings errors,
and the operations Sheets does not support."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from typing import Any

import pytest

from qts_data import open_stack
from qts_data.contracts import OHLCV, ExecutionLog, TickData
from qts_data.errors import ConfigError, NotSupportedError
from qts_data.interfaces import Capability
from qts_data.plugins import ComponentKind
from qts_data.plugins.manager import PluginHost
from qts_data_sheets import SheetsSettings
from qts_data_sheets.adapter import SheetsAdapter
from qts_data_sheets.testing import SheetsStandIn

T0 = datetime(2024, 1, 2, tzinfo=timezone.utc)

PROBE = """
import json, sys
import qts_data_sheets
from qts_data.plugins.manager import PluginHost
from qts_data.plugins import ComponentKind
host = PluginHost().load()
spec = host.spec(ComponentKind.ADAPTER, "sheets")
settings = spec.settings.model_validate({"spreadsheet_id": "x", "credentials_env": "X"})
heavy = ["gspread", "google.auth", "google.oauth2", "requests", "qts_data_sheets.adapter",
         "qts_data_sheets.client"]
print(json.dumps([m for m in heavy if m in sys.modules]))
"""


def test_importing_the_plugin_and_discovering_it_imports_no_backend_library() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("QTS_DATA")},
    )
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_the_plugin_registers_the_sheets_adapter_with_its_settings() -> None:
    host = PluginHost(environ={}).load()
    record = host.record("sheets")
    assert record is not None and record.status == "loaded", record
    spec = host.spec(ComponentKind.ADAPTER, "sheets")
    assert spec.plugin == "sheets"
    assert spec.settings is SheetsSettings
    assert "no ticks" in spec.description


async def test_a_stack_from_configuration_uses_the_stand_in(
    sheets_standin: SheetsStandIn, spreadsheet: str
) -> None:
    config: dict[str, Any] = {
        "stack": {"adapter": "legacy"},
        "adapters": {
            "legacy": {
                "type": "sheets",
                "spreadsheet_id": spreadsheet,
                "api_base_url": sheets_standin.base_url,
                "timeout_s": 5,
            }
        },
    }
    async with open_stack(config, environ={}) as stack:
        await stack.adapter.update_position("005930", 10, 71000)
        assert [p.symbol for p in await stack.adapter.fetch_positions()] == ["005930"]
        health = await stack.health()
        assert health is not None
    assert sheets_standin.data_rows(spreadsheet, "Position") == 1


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"headers": {"positions": {"price": "x"}}}, "unknown field(s) in header mapping: price"),
        ({"headers": {"positions": {"qty": "symbol"}}}, "two fields use the header 'symbol'"),
        ({"worksheets": {"orders": "Orders"}}, "worksheets.orders"),
        ({"worksheets": {"ledger": "Position"}}, "two roles use the same worksheet: Position"),
        ({"timezone": "Asia/Busan"}, "unknown time zone 'Asia/Busan'"),
        ({"requests_per_minute": 0}, "requests_per_minute"),
        ({"api_base_url": "localhost:8080"}, "api_base_url must be http(s)://host[:port]"),
        ({"spreadsheet_id": ""}, "spreadsheet_id"),
    ],
)
def test_bad_settings_are_config_errors_naming_the_key(
    settings: dict[str, Any], expected: str
) -> None:
    body = {"type": "sheets", "spreadsheet_id": "abc", "credentials_env": "X", **settings}
    with pytest.raises(ConfigError) as info:
        open_stack({"stack": {"adapter": "legacy"}, "adapters": {"legacy": body}}, environ={})
    assert "adapters.legacy" in str(info.value)
    assert expected in str(info.value)


def test_worksheets_given_in_part_keep_the_other_defaults() -> None:
    settings = SheetsSettings(
        spreadsheet_id="x", credentials_env="X", worksheets={"ledger": "거래내역"}
    )
    assert settings.worksheets == {
        "positions": "Position",
        "ledger": "거래내역",
        "strategies": "Strategy",
        "risk_configs": "Risk_Config",
    }


async def test_tick_data_is_not_supported_as_the_seed_says(adapter: SheetsAdapter) -> None:
    assert Capability.TICKS not in adapter.capabilities
    with pytest.raises(NotSupportedError) as info:
        await adapter.fetch_tick_data("005930", T0, T0)
    message = str(info.value)
    assert message.startswith("Google Sheets does not support tick data: fetch_tick_data")
    assert isinstance(info.value, NotImplementedError)  # what the seed's adapter raised
    tick = TickData(time=T0, symbol="A", price=1, volume=1)
    with pytest.raises(NotSupportedError, match="does not support tick data: ingest_ticks"):
        await adapter.ingest_ticks([tick])
    candle = OHLCV(time=T0, symbol="A", open=1, high=1, low=1, close=1, volume=1)
    with pytest.raises(NotSupportedError, match="does not support candles: upsert_ohlcv"):
        await adapter.upsert_ohlcv([candle])
    with pytest.raises(NotSupportedError, match="does not support candles: fetch_ohlcv"):
        await adapter.fetch_ohlcv("A", T0, T0)
    log = ExecutionLog(time=T0, order_id="o", symbol="A", stage="s", success=True)
    with pytest.raises(
        NotSupportedError, match="does not support execution logs: store_execution_result"
    ):
        await adapter.store_execution_result(log)
    with pytest.raises(NotSupportedError, match="fetch_execution_logs"):
        await adapter.fetch_execution_logs()


async def test_operations_before_open_say_so(
    sheets_standin: SheetsStandIn, spreadsheet: str
) -> None:
    from qts_data.errors import QtsDataError
    from qts_data_sheets.testing.fixtures import standin_settings

    adapter = SheetsAdapter(SheetsSettings(**standin_settings(sheets_standin, spreadsheet)))
    with pytest.raises(QtsDataError, match="not open"):
        await adapter.fetch_positions()
    health = await adapter.health_check()
    assert health.state.value == "UNHEALTHY" and health.message == "not open"
    await adapter.close()
