"""Tiered market-data storage as users configure it: stacks from configuration, the CLI, `demo --persist`."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timedelta, timezone
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli
from qts_data import open_stack
from qts_data.compositions.tiered import TieredAdapter
from qts_data.contracts import Interval
from qts_data.errors import ConfigError
from qts_data.plugins.registry import ComponentKind
from qts_data.sources import SyntheticMarketSource

SQLITE_INSTALLED = any(ep.name == "sqlite" for ep in entry_points(group="qts_data"))


def tiered_config(tmp_path: Path, **market: Any) -> dict[str, Any]:
    return {
        "stack": {"adapter": "market"},
        "adapters": {
            "store": {"type": "memory"},
            "market": {
                "type": "tiered",
                "store": "store",
                "source": "exchange",
                "disk_path": str(tmp_path / "cache"),
                **market,
            },
        },
        "sources": {"exchange": {"type": "synthetic", "seed": 3}},
    }


async def test_a_configured_tiered_stack_reads_through_its_tiers(tmp_path: Path) -> None:
    async with open_stack(tiered_config(tmp_path, memory_candles=500)) as stack:
        tiered = stack.adapter
        assert isinstance(tiered, TieredAdapter)
        source = stack.components[(ComponentKind.SOURCE, "exchange")]
        assert isinstance(source, SyntheticMarketSource) and tiered.source is source
        assert tiered.memory.max_candles == 500
        end = Interval.H1.floor(datetime.now(timezone.utc))
        first = await tiered.fetch_candles("KRW-BTC", end - timedelta(days=2), end, Interval.H1)
        second = await tiered.fetch_candles("KRW-BTC", end - timedelta(days=2), end, Interval.H1)
        assert (first.metadata.source, second.metadata.source) == ("upstream", "memory")
        assert first.metadata.data_count == 48 and source.calls == 1
        assert list((tmp_path / "cache" / "1h").rglob("*.json.gz"))
        health = await stack.health()
        assert health.state.value == "HEALTHY"
        market = next(c for c in health.components if c.name == "market")
        assert market.status.details["tiers"]["cache_hits"] == 1


def test_a_tiered_source_must_name_a_configured_source(tmp_path: Path) -> None:
    config = tiered_config(tmp_path)
    config["adapters"]["market"]["source"] = "exchnage"
    with pytest.raises(
        ConfigError,
        match=r"adapters\.market\.source: no market-data source named 'exchnage' \(did you mean 'exchange'\?\)",
    ):
        open_stack(config)


def test_tiered_settings_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"adapters\.market\.memory_candels: unknown key"):
        open_stack(tiered_config(tmp_path, memory_candels=10))
    with pytest.raises(ConfigError, match=r"adapters\.market\.disk_days"):
        open_stack(tiered_config(tmp_path, disk_days=0))
    bad_source = tiered_config(tmp_path)
    bad_source["sources"]["exchange"]["latency_ms"] = -1
    with pytest.raises(ConfigError, match=r"sources\.exchange\.latency_ms"):
        open_stack(bad_source)


def test_the_core_lists_the_tiered_adapter_and_the_synthetic_source() -> None:
    result = run_cli("plugins", "--json")
    assert result.code == 0, result.err
    core = next(p for p in json.loads(result.out) if p["name"] == "core")
    components = {(c["kind"], c["name"]) for c in core["components"]}
    assert {("adapter", "tiered"), ("source", "synthetic")} <= components


def upstream_calls(out: str) -> int:
    found = re.search(r"upstream calls this run: (\d+)", out)
    assert found, out
    return int(found.group(1))


@pytest.mark.slow
@pytest.mark.skipif(
    not SQLITE_INSTALLED, reason="the sqlite plugin (qts-data-sqlite) is not installed"
)
def test_demo_persist_second_run_starts_from_what_the_first_stored(tmp_path: Path) -> None:
    database = tmp_path / "demo.sqlite3"
    first = run_cli(
        "demo", "--persist", str(database), "--hours", "0.5", "--trades", "50", timeout=120
    )
    assert first.code == 0, first.err
    assert database.exists() and (tmp_path / "demo.sqlite3.cache").is_dir()
    assert "0 ledger entries from earlier runs" in first.out
    assert "tiered reads" in first.out
    calls_first = upstream_calls(first.out)
    assert calls_first > 0
    second = run_cli(
        "demo", "--persist", str(database), "--hours", "0.5", "--trades", "50", timeout=120
    )
    assert second.code == 0, second.err
    assert "50 ledger entries from earlier runs" in second.out
    assert upstream_calls(second.out) < calls_first
    # the cold reads of the second run come from the disk and the store, not upstream
    cold = [line for line in second.out.splitlines() if "│ cold" in line]
    assert cold and all(
        ("disk" in line or "store" in line) and "upstream" not in line.split("│")[3]
        for line in cold
    )


@pytest.mark.skipif(SQLITE_INSTALLED, reason="the sqlite plugin is installed")
def test_demo_persist_without_the_sqlite_plugin_names_the_package(tmp_path: Path) -> None:
    result = run_cli("demo", "--persist", str(tmp_path / "demo.sqlite3"))
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qts-data: error: "), result.err
    assert "pip install qts-data-sqlite" in lines[0]


def test_demo_persist_and_config_together_are_refused(tmp_path: Path) -> None:
    result = run_cli(
        "demo", "--persist", str(tmp_path / "d.sqlite3"), "--config", str(tmp_path / "x.toml")
    )
    assert result.code == 2
    assert result.err.strip() == "qts-data: error: demo: give --config or --persist, not both"


def test_require_sqlite_names_the_package_when_the_plugin_is_missing() -> None:
    from qts_data.demo.persist import require_sqlite
    from qts_data.errors import PluginError
    from qts_data.plugins.manager import PluginHost

    with pytest.raises(
        PluginError,
        match=r"the sqlite plugin is not installed: pip install qts-data-sqlite \(from a clone of qts-data: pip install \./plugins/sqlite\)$",
    ):
        require_sqlite(PluginHost(environ={}, entry_points=[]))


def test_the_persistent_demo_stack_is_tiered_over_sqlite(tmp_path: Path) -> None:
    from qts_data.demo.persist import persistent_config

    config = persistent_config(tmp_path / "d.sqlite3")
    assert config["adapters"]["db"] == {"type": "sqlite", "path": str(tmp_path / "d.sqlite3")}
    market = config["adapters"]["market"]
    assert (market["type"], market["store"], market["source"]) == ("tiered", "db", "exchange")
    assert market["disk_path"] == f"{tmp_path / 'd.sqlite3'}.cache"
    assert config["sources"]["exchange"]["type"] == "synthetic"


LOCK_HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")  # the write lock, held until this process ends
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.mark.slow
@pytest.mark.skipif(
    not SQLITE_INSTALLED, reason="the sqlite plugin (qts-data-sqlite) is not installed"
)
async def test_a_write_locked_store_still_serves_upstream_candles_and_stores_them_later(
    tmp_path: Path,
) -> None:
    import sys
    import time

    database = tmp_path / "market.sqlite3"
    config = {
        "stack": {"adapter": "market"},
        "adapters": {
            # A short lock wait, so the store refuses the candles while the lock is held.
            "store": {"type": "sqlite", "path": str(database), "busy_timeout_ms": 300},
            "market": {"type": "tiered", "store": "store", "source": "exchange"},
        },
        "sources": {"exchange": {"type": "synthetic", "seed": 3}},
    }
    start = datetime(2026, 1, 5, tzinfo=timezone.utc)
    async with open_stack(config) as stack:
        tiered = stack.adapter
        assert isinstance(tiered, TieredAdapter)
        holder = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            LOCK_HOLDER,
            str(database),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert holder.stdin is not None and holder.stdout is not None
        try:
            assert (await holder.stdout.readline()).strip() == b"locked"
            began = time.monotonic()
            response = await tiered.fetch_candles(
                "KRW-BTC", start, start + timedelta(hours=6), "1h"
            )
            waited = time.monotonic() - began
            assert response.success, response.error
            assert len(response.data) == 6
            assert waited < 3
            assert tiered.counters.unpersisted_candles == 6
            # The first background retry (1 s later) meets the lock too.
            await asyncio.sleep(1.5)
            assert tiered.counters.persisted_later == 0
        finally:
            holder.stdin.close()
            await asyncio.wait_for(holder.wait(), 10)
        # The lock is gone: what the store refused is persisted in the background.
        deadline = time.monotonic() + 20
        while tiered.counters.persisted_later < 6:
            assert time.monotonic() < deadline, tiered.counters.as_dict()
            await asyncio.sleep(0.1)
        assert tiered.counters.unpersisted_candles == 6
        stored = await tiered.store.fetch_ohlcv("KRW-BTC", start, start + timedelta(hours=6), "1h")
        assert [c.time for c in stored] == [c.time for c in response.data]
