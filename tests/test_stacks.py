"""Stacks from configuration: the embedded default, `cached` and `hybrid` compositions of memory components."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from qts_data import BackendError, open_stack
from qts_data.cache import CacheKind
from qts_data.compositions import CachedAdapter
from qts_data.contracts import (
    HealthState,
    LedgerEntry,
    Position,
    Priority,
    RiskConfig,
    SafetyState,
    StrategyParam,
)
from qts_data.plugins import ComponentKind
from qts_data_memory.adapter import MemoryAdapter
from qts_data_memory.sink import MemoryEventSink

T = datetime(2024, 5, 2, 1, 0, tzinfo=timezone.utc)

CACHED = """
[stack]
adapter = "main"
cache = "hot"
sinks = ["events"]

[adapters.store]
type = "memory"

[adapters.main]
type = "cached"
adapter = "store"
cache = "hot"

[caches.hot]
type = "memory"
max_entries = 1000

[sinks.events]
type = "memory"

[cache.ttl_ms]
position = 60000
"""


def entry(order_id: str, side: str = "BUY") -> LedgerEntry:
    return LedgerEntry(
        timestamp=T, symbol="005930", side=side, qty="1", price="71000", order_id=order_id
    )


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "qts.toml"
    path.write_text(text)
    return path


async def test_default_stack_is_memory_behind_memory_cache() -> None:
    async with open_stack() as stack:
        assert isinstance(stack.adapter, CachedAdapter)
        assert isinstance(stack.adapter.inner, MemoryAdapter)
        await stack.adapter.update_position("005930", "10", "71000")
        assert [p.symbol for p in await stack.adapter.fetch_positions()] == ["005930"]
        health = await stack.health()
        assert health.state is HealthState.HEALTHY
        assert {(c.kind, c.name) for c in health.components} == {
            ("adapter", "store"),
            ("adapter", "main"),
            ("cache", "hot"),
        }


async def test_cached_stack_from_toml_serves_reads_from_the_cache(tmp_path: Path) -> None:
    async with open_stack(write_config(tmp_path, CACHED)) as stack:
        await stack.adapter.update_position("005930", "10", "71000")
        for _ in range(10):
            assert (await stack.adapter.fetch_position("005930")) is not None
        stats = stack.cache.stats()["position"]
        assert stats.hits == 10
        assert stats.misses == 0
        assert stack.cache.ttl_ms(CacheKind.POSITION) == 60000


async def test_cached_reads_see_writes_made_through_the_composition(tmp_path: Path) -> None:
    async with open_stack(write_config(tmp_path, CACHED)) as stack:
        adapter = stack.adapter
        await adapter.update_position("A", "1", "10")
        assert [p.qty for p in await adapter.fetch_positions()] == [Decimal(1)]
        await adapter.update_position("A", "2", "10")
        assert [p.qty for p in await adapter.fetch_positions()] == [Decimal(2)]
        await adapter.save_risk_config(RiskConfig(config_key="max", value="1"))
        assert [r.value for r in await adapter.fetch_risk_configs()] == [Decimal(1)]
        await adapter.save_risk_config(RiskConfig(config_key="max", value="2"))
        assert [r.value for r in await adapter.fetch_risk_configs()] == [Decimal(2)]
        await adapter.save_strategy_param(
            StrategyParam(strategy_id="s", param_name="w", value="1", value_type="int")
        )
        assert [p.value for p in await adapter.fetch_strategy_params("s")] == ["1"]
        await adapter.save_strategy_param(
            StrategyParam(strategy_id="s", param_name="w", value="5", value_type="int")
        )
        assert [p.value for p in await adapter.fetch_strategy_params("s")] == ["5"]
        assert [p.value for p in await adapter.fetch_strategy_params()] == ["5"]


class FailingWrites(MemoryAdapter):
    async def save_position(self, position: Position) -> None:
        raise RuntimeError("database write failed")


async def test_write_through_with_a_failing_database_write_leaves_no_newer_value() -> None:
    from qts_data.cache import CacheManager
    from qts_data_memory.cache import MemoryCacheClient

    inner = FailingWrites()
    cache = CacheManager(MemoryCacheClient())
    adapter = CachedAdapter(inner, cache)
    await MemoryAdapter.save_position(inner, Position(symbol="A", qty="1", avg_price="10"))
    assert (await adapter.fetch_position("A")) is not None  # cached: qty 1
    with pytest.raises(RuntimeError, match="database write failed"):
        await adapter.update_position("A", "99", "10")
    cached = await adapter.fetch_position("A")
    assert cached is not None
    assert cached.qty == Decimal(1)
    assert cache.stats()["position"].invalidations >= 1


async def test_safety_lockdown_stops_cache_writes_and_fail_bypasses_the_cache(
    tmp_path: Path,
) -> None:
    async with open_stack(write_config(tmp_path, CACHED)) as stack:
        adapter, cache = stack.adapter, stack.cache
        await stack.safety.set_state(SafetyState.LOCKDOWN, "drill")
        await adapter.update_position("A", "1", "10")
        assert cache.stats()["position"].skipped_writes == 1
        assert (await adapter.fetch_position("A")) is not None  # read continues (from the adapter)
        await stack.safety.set_state(SafetyState.FAIL, "drill")
        hits_before = cache.stats()["position"].hits
        for _ in range(3):
            await adapter.fetch_position("A")
        assert cache.stats()["position"].hits == hits_before  # bypassed
        await stack.safety.set_state(SafetyState.NORMAL, "all clear")
        await adapter.fetch_position("A")
        await adapter.fetch_position("A")
        assert cache.stats()["position"].hits == hits_before + 1  # resumed without a restart
        sink = stack.components[(ComponentKind.SINK, "events")]
        assert isinstance(sink, MemoryEventSink)
        assert await stack.events.drain(5)
        changes = [
            (e.priority, e.payload["current"]) for e in sink.events if e.type == "safety.changed"
        ]
        assert changes == [
            (Priority.P0, "LOCKDOWN"),
            (Priority.P0, "FAIL"),
            (Priority.P1, "NORMAL"),
        ]


async def test_environment_overrides_any_key(tmp_path: Path) -> None:
    stack = open_stack(
        write_config(tmp_path, CACHED), environ={"QTS_DATA__CACHE__TTL_MS__POSITION": "250"}
    )
    assert stack.cache.ttl_ms(CacheKind.POSITION) == 250
    assert stack.config.raw.overrides == ["cache.ttl_ms.position"]


class BrokenOpen(MemoryEventSink):
    async def open(self) -> None:
        raise ConnectionError("broker down")


async def test_an_optional_component_that_fails_to_open_degrades_the_stack(tmp_path: Path) -> None:
    stack = open_stack(write_config(tmp_path, CACHED))
    key = next(k for k in stack.components if k[1] == "events")
    stack.components[key] = BrokenOpen()
    stack.components[key].name = "events"
    async with stack:
        await stack.adapter.update_position("A", "1", "1")  # the stack works
        health = await stack.health()
        assert health.state is HealthState.DEGRADED
        broken = next(c for c in health.components if c.name == "events")
        assert broken.status.state is HealthState.UNHEALTHY
        assert "broker down" in broken.status.message


async def test_a_required_component_that_fails_to_open_fails_the_stack_and_closes_the_rest(
    tmp_path: Path,
) -> None:
    closed: list[str] = []

    class Tracking(MemoryAdapter):
        async def close(self) -> None:
            closed.append(self.name)

    class Refusing(MemoryAdapter):
        async def open(self) -> None:
            raise ConnectionError("connection refused to postgresql://qts:s3cr3tpass@db/qts")

    stack = open_stack(
        write_config(
            tmp_path,
            CACHED.replace(
                '[adapters.store]\ntype = "memory"',
                '[adapters.store]\ntype = "memory"\n[adapters.other]\ntype = "memory"',
            ),
        )
    )
    keys = {k[1]: k for k in stack.components}
    stack.components[keys["store"]] = Tracking()
    stack.components[keys["store"]].name = "store"
    stack.components[keys["other"]] = Refusing()
    stack.components[keys["other"]].name = "other"
    with pytest.raises(BackendError) as info:
        await stack.open()
    assert "adapters.other (memory) failed to open" in str(info.value)
    assert "s3cr3tpass" not in str(info.value)
    assert closed == ["store"]


async def test_events_reach_every_sink_even_when_one_fails() -> None:
    from qts_data.events import EventDispatcher, EventSettings

    class Failing(MemoryEventSink):
        async def deliver(self, events: Sequence[Any]) -> None:
            raise RuntimeError("sink broken")

    good, bad = MemoryEventSink(), Failing()
    good.name, bad.name = "good", "bad"
    bus = EventDispatcher([bad, good], EventSettings(retry_attempts=0))
    await bus.start()
    await bus.emit(Priority.P1, "test.event", "test", n=1)
    await bus.emit(Priority.P1, "test.event", "test", n=2)
    await bus.drain(5)
    await bus.stop()
    assert [e.payload["n"] for e in good.events] == [1, 2]
    summary = bus.summary()["sinks"]
    assert summary["bad"]["failed_events"] == 2
    assert summary["bad"]["last_error"] == "RuntimeError: sink broken"
    assert summary["good"]["delivered"] == 2
