"""Fixtures of the timescale plugin's tests: a migrated database of the run's own on the
machine's PostgreSQL (emptied before each test that asks for it), adapters over it, and a
TimescaleDB engine (shared/timescaledb-wasm) on a free loopback port."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from timescale_support import TABLES, WASM_RUN, WasmEngine, make, migrated

from qts_data.testing import PostgresDatabaseFactory, find_free_port, run_psql
from qts_data_timescale.adapter import TimescaleAdapter


@pytest.fixture(scope="session")
def schema_database(make_postgres_database: PostgresDatabaseFactory) -> str:
    """A database of this run with the newest schema (plain PostgreSQL flavour)."""
    return asyncio.run(migrated(make_postgres_database()))


@pytest.fixture
def empty_database(schema_database: str) -> str:
    """``schema_database`` with every table emptied (sequences restarted)."""
    run_psql(schema_database, f"TRUNCATE {TABLES} RESTART IDENTITY")
    return schema_database


@pytest_asyncio.fixture
async def adapter(empty_database: str) -> AsyncIterator[TimescaleAdapter]:
    """An open adapter over the emptied database."""
    made = make(empty_database)
    await made.open()
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture(scope="session")
def timescaledb_engine() -> Iterator[WasmEngine]:
    """A TimescaleDB engine of this run (started once, stopped at the end)."""
    if not WASM_RUN.exists() or shutil.which("node") is None:
        pytest.fail(
            f"the TimescaleDB engine is needed: {WASM_RUN} and node (set QTS_TEST_TIMESCALEDB_WASM)",
            pytrace=False,
        )
    port = find_free_port()
    started = subprocess.run(
        [str(WASM_RUN), "start", str(port)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if started.returncode != 0:
        pytest.fail(f"the TimescaleDB engine did not start: {started.stderr}", pytrace=False)
    try:
        yield WasmEngine(port)
    finally:
        subprocess.run(
            [str(WASM_RUN), "stop", str(port)], capture_output=True, timeout=60, check=False
        )
