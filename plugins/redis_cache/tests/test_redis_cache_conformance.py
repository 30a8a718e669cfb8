"""The core's cache-client conformance suite against real Redis: the machine's server and a
three-master Redis Cluster started for the session."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

import pytest
from redis.crc import key_slot

from qts_data.errors import NotSupportedError
from qts_data.interfaces import CacheClient
from qts_data.testing import CacheClientConformance
from qts_data.testing.servers import RedisProcess
from qts_data_redis_cache.client import RedisCacheClient

#: The suite checks behaviour, not latency (the fault tests check the timeouts): a loaded
#: machine must not turn 600 concurrent commands into a timeout at the defaults (100 ms).
PATIENT = {"socket_timeout_ms": 5000, "pool_timeout_ms": 5000, "connect_timeout_ms": 5000}


class TestRedisCacheConformance(CacheClientConformance):
    """The machine's Redis, under a key prefix of each test's own (removed afterwards)."""

    @pytest.fixture
    def make_cache_client(
        self, redis_url: str, redis_key_prefix: str
    ) -> Callable[[], RedisCacheClient]:
        return lambda: RedisCacheClient(url=redis_url, prefix=redis_key_prefix, **PATIENT)


class TestRedisClusterConformance(CacheClientConformance):
    """A Redis Cluster, every key of a test under one hash-tagged prefix (``qts-test:{…}:``).

    The hash tag of the prefix puts all of a test's keys in one slot, so the
    suite's transactions over several keys are possible (Redis Cluster runs
    MULTI/EXEC within one slot only).
    """

    @pytest.fixture
    def make_cache_client(
        self, redis_cluster: list[RedisProcess]
    ) -> Callable[[], RedisCacheClient]:
        prefix = f"qts-test:{{{secrets.token_hex(4)}}}:"
        url = redis_cluster[0].url
        return lambda: RedisCacheClient(url=url, cluster=True, prefix=prefix, **PATIENT)


class TestRedisClusterSpreadConformance(CacheClientConformance):
    """A Redis Cluster with a plain prefix: a test's keys spread over the three masters.

    This exercises what a hash-tagged prefix hides: SCAN on every master, DEL
    and MGET split by slot, pipelines split by node. Transactions over keys of
    several slots are refused (NotSupportedError) instead of running, so the
    suite's two multi-key transaction tests are replaced by ones that check the
    refusal and run the same transactions with hash-tagged keys.
    """

    @pytest.fixture
    def make_cache_client(
        self, redis_cluster: list[RedisProcess]
    ) -> Callable[[], RedisCacheClient]:
        prefix = f"qts-test:{secrets.token_hex(4)}:"
        url = redis_cluster[0].url
        return lambda: RedisCacheClient(url=url, cluster=True, prefix=prefix, **PATIENT)

    async def test_transaction_pipeline_returns_results_and_applies_all(
        self, cache_client: CacheClient
    ) -> None:
        assert isinstance(cache_client, RedisCacheClient)
        a, b = "a", "b"
        assert key_slot((cache_client.prefix + a).encode()) != key_slot(
            (cache_client.prefix + b).encode()
        )
        with pytest.raises(NotSupportedError, match="one hash slot"):
            await cache_client.pipeline(transaction=True).set(a, b"1").set(b, b"2").execute()
        assert await cache_client.exists(a) is False
        a, b = "{t}a", "{t}b"
        pipe = cache_client.pipeline(transaction=True)
        pipe.set(a, b"1").set(b, b"2").get(a).get(b).delete(a)
        results = await pipe.execute()
        assert results[2:] == [b"1", b"2", 1]
        assert await cache_client.get(a) is None
        assert await cache_client.get(b) == b"2"

    async def test_transaction_pipelines_are_not_interleaved(
        self, cache_client: CacheClient
    ) -> None:
        x, y = "{xy}x", "{xy}y"

        async def writer(i: int) -> None:
            value = str(i).encode()
            await cache_client.pipeline(transaction=True).set(x, value).set(y, value).execute()

        async def reader() -> list[object]:
            return await cache_client.pipeline(transaction=True).get(x).get(y).execute()

        await writer(-1)
        results = await asyncio.gather(*(job for i in range(30) for job in (writer(i), reader())))
        pairs = [r for r in results if r is not None]
        assert len(pairs) == 30
        for pair in pairs:
            assert isinstance(pair, list)
            assert pair[0] == pair[1], f"a transaction saw half of another: {pair!r}"
