"""Fixtures of the redis_cache tests: a Redis Cluster shared by the session, client helpers."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio

from qts_data.testing.servers import RedisProcess, RedisProcessFactory
from qts_data_redis_cache.client import RedisCacheClient


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[list[RedisProcess]]:
    """A real three-master Redis Cluster on loopback ports, started once per session.

    Tests share it through prefixes of their own; none may stop or reconfigure it.
    """
    factory = RedisProcessFactory()
    try:
        yield factory.cluster(masters=3)
    finally:
        factory.close_all()


@pytest.fixture
def unique_prefix() -> str:
    """A key prefix of this test's own (on throwaway servers, which are discarded whole)."""
    return f"qts-test:{secrets.token_hex(4)}:"


@pytest_asyncio.fixture
async def open_clients() -> AsyncIterator[Callable[..., Any]]:
    """``await open_client(**settings)``: an opened RedisCacheClient, closed after the test."""
    made: list[RedisCacheClient] = []

    async def open_client(**settings: Any) -> RedisCacheClient:
        client = RedisCacheClient(**settings)
        made.append(client)
        await client.open()
        return client

    try:
        yield open_client
    finally:
        for client in made:
            await client.close()
