"""Fixtures of the timescale plugin's tests: a migrated database of the run's own on the
machine's PostgreSQL (emptied before each test that asks for it), adapters over it, and a
TimescaleDB engine of the run (:mod:`qts_data_timescale.testing.engine`, installed from npm
into a cache folder on first use) on a free loopback port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from timescale_support import TABLES, make, migrated

from qts_data.testing import PostgresDatabaseFactory, run_psql
from qts_data_timescale.adapter import TimescaleAdapter
from qts_data_timescale.testing import fixtures


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


#: The TimescaleDB engine of the session (started on first use, stopped at the end).
timescaledb_engine = fixtures.timescaledb_engine


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Install the engine before the first test, or stop the run saying what is missing."""
    fixtures.prepare_engine(config, items)
