"""health_check: what it reports, and DEGRADED past the alert thresholds of seeds/002 §7.3."""

from __future__ import annotations

import asyncio

import asyncpg
from timescale_support import make

from qts_data.contracts import HealthState
from qts_data_timescale.adapter import TimescaleAdapter


async def test_a_healthy_adapter_reports_latency_pool_versions_and_schema(
    adapter: TimescaleAdapter,
) -> None:
    await adapter.fetch_positions()
    status = await adapter.health_check()
    assert status.state is HealthState.HEALTHY, status.message
    assert status.latency_ms is not None and status.latency_ms > 0
    details = status.details
    assert details["server_version"]
    assert details["timescaledb"] is None  # plain PostgreSQL on this machine
    assert (details["flavour"], details["schema_version"]) == ("plain", 4)
    assert details["pool"]["max"] == 4
    assert 0 <= details["pool_use"] <= 1
    assert details["query_p99_ms"] > 0


async def _hold_lock(dsn: str, table: str, seconds: float, locked: asyncio.Event) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            locked.set()
            await asyncio.sleep(seconds)
    finally:
        await conn.close()


async def test_a_query_p99_over_500_ms_degrades(empty_database: str) -> None:
    adapter = make(empty_database)
    await adapter.open()
    try:
        locked = asyncio.Event()
        holder = asyncio.ensure_future(_hold_lock(empty_database, "positions", 0.7, locked))
        await locked.wait()
        await adapter.fetch_positions()  # waits for the lock: > 500 ms
        await holder
        status = await adapter.health_check()
    finally:
        await adapter.close()
    assert status.state is HealthState.DEGRADED
    assert "query p99" in status.message and "> 500 ms" in status.message


async def test_pool_use_over_90_percent_degrades(empty_database: str) -> None:
    adapter = make(empty_database, pool_max_size=1, pool_min_size=1)
    await adapter.open()
    try:
        locked = asyncio.Event()
        holder = asyncio.ensure_future(_hold_lock(empty_database, "risk_configs", 2.5, locked))
        await locked.wait()
        busy = asyncio.ensure_future(adapter.fetch_risk_configs())  # holds the only connection
        await asyncio.sleep(0.1)
        status = await adapter.health_check()
        await holder
        await busy
    finally:
        await adapter.close()
    assert status.state is HealthState.DEGRADED
    assert "pool use 100% > 90%" in status.message
    assert "pool exhausted" in status.message
    assert status.details["pool"] == {"in_use": 1, "size": 1, "max": 1}


async def test_a_closed_adapter_is_unhealthy(empty_database: str) -> None:
    adapter = make(empty_database)
    status = await adapter.health_check()
    assert status.state is HealthState.UNHEALTHY
    assert status.message == "not open"
