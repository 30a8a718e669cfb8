"""A dead or hanging Redis never holds a caller longer than its budget (throwaway servers).

With redis-py's defaults a refused connection takes seconds to fail (retries
with backoff) and a silent server longer; here every call is bounded by
``socket_timeout_ms`` (100 ms by default), a refused connection fails at once,
and the same client works again when the server is back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis_support import OpenClient, wait_until

from qts_data.errors import BackendError, Failure
from qts_data.testing.servers import RedisProcess
from qts_data_redis_cache.client import RedisCacheClient

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

#: Generous bound for a call that must fail "within the socket timeout" (100 ms) on a loaded CI machine.
FAST = 0.5


def calls(client: RedisCacheClient) -> dict[str, Callable[[], Awaitable[Any]]]:
    """One call of each shape: plain commands, HSET+PEXPIRE, pipelines, a transaction, SCAN."""
    return {
        "get": lambda: client.get("k"),
        "set": lambda: client.set("k", b"v", ttl_ms=1000),
        "hgetall": lambda: client.hgetall("h"),
        "hset+ttl": lambda: client.hset("h", {"f": b"v"}, ttl_ms=1000),
        "zrange": lambda: client.zrange("z"),
        "pipeline": lambda: client.pipeline().get("k").hgetall("h").execute(),
        "transaction": lambda: client.pipeline(transaction=True).set("k", b"1").execute(),
        "mget": lambda: client.mget(["k", "x"]),
        "scan": lambda: collect(client.scan_iter("*")),
        "publish": lambda: client.publish("c", b"m"),
    }


async def collect(items: Any) -> list[Any]:
    return [item async for item in items]


async def timed_failure(call: Callable[[], Awaitable[Any]]) -> tuple[float, BackendError]:
    started = time.perf_counter()
    with pytest.raises(BackendError) as caught:
        await call()
    return time.perf_counter() - started, caught.value


async def test_a_frozen_server_fails_every_call_within_the_socket_timeout(
    open_clients: OpenClient, throwaway_redis: RedisProcess
) -> None:
    client = await open_clients(url=throwaway_redis.url, pool_min=3)
    await client.set("k", b"v")
    throwaway_redis.freeze()
    try:
        for name, call in calls(client).items():
            elapsed, error = await timed_failure(call)
            assert elapsed < FAST, f"{name} took {elapsed:.3f} s on a frozen server"
            assert elapsed >= 0.09, f"{name} failed before the socket timeout: {error}"
            # The first call is sent on a pooled connection and may still run; the later
            # ones wait on a reconnect (the server accepts, then says nothing): not sent.
            expected = (
                {Failure.TIMEOUT} if name == "get" else {Failure.TIMEOUT, Failure.UNREACHABLE}
            )
            assert error.failure in expected, f"{name}: {error}"
            assert error.address == f"127.0.0.1:{throwaway_redis.port}"
            assert "within 100 ms" in str(error)
            assert "\n" not in str(error)
        # Every pooled connection is now dropped: new connections also give up in time.
        elapsed, error = await timed_failure(calls(client)["get"])
        assert elapsed < FAST
    finally:
        throwaway_redis.thaw()
    assert await client.get("k") == b"v"


async def test_a_killed_server_fails_calls_at_once_and_the_client_recovers_on_restart(
    open_clients: OpenClient, throwaway_redis: RedisProcess
) -> None:
    client = await open_clients(url=throwaway_redis.url, pool_min=3)
    await client.set("k", b"v")
    throwaway_redis.kill()
    await asyncio.sleep(0.05)
    for name, call in calls(client).items():
        elapsed, error = await timed_failure(call)
        assert elapsed < FAST, f"{name} took {elapsed:.3f} s on a dead server"
        assert error.failure is Failure.UNREACHABLE, f"{name}: {error}"
        assert error.address == f"127.0.0.1:{throwaway_redis.port}"
        assert error.backend is not None and error.operation is not None
    throwaway_redis.start()  # same port, empty (no persistence)
    # The first call after the restart works: stale pooled connections are noticed and replaced.
    assert await client.get("k") is None
    await client.set("k", b"again")
    results = await asyncio.gather(*(client.get("k") for _ in range(20)))
    assert results == [b"again"] * 20


async def test_open_fails_fast_when_redis_is_down_unless_lazy(
    open_clients: OpenClient, throwaway_redis: RedisProcess
) -> None:
    throwaway_redis.kill()
    client = RedisCacheClient(url=throwaway_redis.url)
    started = time.perf_counter()
    with pytest.raises(BackendError, match="connect") as caught:
        await client.open()
    assert time.perf_counter() - started < FAST
    assert f"127.0.0.1:{throwaway_redis.port}" in str(caught.value)
    lazy = await open_clients(url=throwaway_redis.url, lazy_connect=True)
    elapsed, _ = await timed_failure(lambda: lazy.get("k"))
    assert elapsed < FAST
    throwaway_redis.start()
    await lazy.set("k", b"v")
    assert await lazy.get("k") == b"v"


async def test_when_every_connection_hangs_the_next_caller_fails_after_the_pool_timeout(
    open_clients: OpenClient, throwaway_redis: RedisProcess
) -> None:
    client = await open_clients(
        url=throwaway_redis.url,
        pool_min=3,
        pool_max=3,
        pool_timeout_ms=50,
        socket_timeout_ms=2000,
    )
    await client.set("k", b"v")
    throwaway_redis.freeze()
    try:
        holders = [asyncio.ensure_future(client.get("k")) for _ in range(3)]
        await asyncio.sleep(0.02)
        elapsed, error = await timed_failure(lambda: client.get("k"))
        assert 0.045 <= elapsed < 0.3, elapsed
        assert "no Redis connection came free for 50 ms" in str(error)
        assert "all 3 of pool_max in use" in str(error)
    finally:
        throwaway_redis.thaw()
    assert await asyncio.gather(*holders) == [b"v"] * 3


async def test_a_queue_that_moves_is_waited_out(
    open_clients: OpenClient, throwaway_redis: RedisProcess
) -> None:
    """pool_timeout_ms detects a stuck pool; a burst larger than the pool is served."""
    # With the default pool_timeout_ms, a burst on two connections that takes longer than
    # it (sized from this host's measured rate) is served rather than shed.
    client = await open_clients(url=throwaway_redis.url, pool_min=2, pool_max=2)
    timeout_s = client.settings.pool_timeout_ms / 1000
    probe = 1000
    started = time.perf_counter()
    await asyncio.gather(*(client.set(f"p{i}", b"") for i in range(probe)))
    rate = probe / (time.perf_counter() - started)
    burst = min(200_000, int(rate * timeout_s * 1.5) + 1)
    started = time.perf_counter()
    await asyncio.gather(*(client.set(f"k{i}", str(i)) for i in range(burst)))
    elapsed = time.perf_counter() - started
    keys = [f"k{i}" for i in range(burst)]
    assert await client.mget(keys) == [str(i).encode() for i in range(burst)]
    assert elapsed > timeout_s, (burst, elapsed)  # the burst outlasted the timeout


async def test_a_cancelled_call_leaves_no_reply_behind_for_the_next_one(
    open_clients: OpenClient, throwaway_redis: RedisProcess
) -> None:
    """The cache manager abandons calls over budget: the next call must not read their reply,
    and the connection is kept (its pending reply is read first) rather than reopened."""
    client = await open_clients(url=throwaway_redis.url, pool_min=1, pool_max=1)
    await client.set("a", b"A")
    await client.set("b", b"B")

    def connections_made() -> int:
        reply = throwaway_redis.command("INFO", "stats")
        assert isinstance(reply, bytes)
        line = next(x for x in reply.decode().splitlines() if x.startswith("total_connections"))
        return int(line.split(":")[1])

    throwaway_redis.freeze()
    try:
        abandoned = asyncio.ensure_future(client.get("a"))
        await asyncio.sleep(0.02)
        abandoned.cancel()
        with pytest.raises(asyncio.CancelledError):
            await abandoned
    finally:
        throwaway_redis.thaw()
    assert await client.get("b") == b"B"  # after GET a's late reply was read and dropped
    assert await client.hgetall("h") == {}
    before = connections_made()
    for i in range(50):  # abandon calls mid-flight on a live server, then check the replies
        task = asyncio.ensure_future(client.get("a") if i % 2 else client.hgetall("a"))
        await asyncio.sleep(0)
        task.cancel()
        assert await client.get("b") == b"B"
        assert await client.pipeline().get("a").get("b").execute() == [b"A", b"B"]
    assert connections_made() - before <= 1  # the probes of this test; no reconnects


async def test_pubsub_survives_a_server_restart(
    open_clients: OpenClient, throwaway_redis: RedisProcess
) -> None:
    publisher = await open_clients(url=throwaway_redis.url, pool_min=1)
    subscriber = await open_clients(
        url=throwaway_redis.url, pool_min=1, health_check_interval_s=0.2
    )
    received: list[bytes | None] = []
    subscription = await subscriber.subscribe("inv", received.append)
    await publisher.publish("inv", b"one")
    await wait_until(lambda: received == [b"one"])
    throwaway_redis.kill()
    await wait_until(lambda: received == [b"one", None])
    throwaway_redis.start()
    await wait_until(lambda: received == [b"one", None, None])  # resubscribed
    assert await publisher.publish("inv", b"two") == 1
    await wait_until(lambda: received[-1] == b"two")
    assert received == [b"one", None, None, b"two"]
    await subscription.close()


async def test_pubsub_notices_a_frozen_server_and_recovers_after_it_thaws(
    open_clients: OpenClient, throwaway_redis: RedisProcess
) -> None:
    client = await open_clients(url=throwaway_redis.url, pool_min=1, health_check_interval_s=0.2)
    received: list[bytes | None] = []
    await client.subscribe("inv", received.append)
    throwaway_redis.freeze()
    started = time.monotonic()
    try:
        await wait_until(lambda: received == [None], timeout=5)
        assert time.monotonic() - started < 1.5  # a quiet interval, then an unanswered PING
        assert (await client.health_check()).message
    finally:
        throwaway_redis.thaw()
    await wait_until(lambda: received == [None, None], timeout=10)
    await client.publish("inv", b"back")
    await wait_until(lambda: received[-1] == b"back")


async def test_subscribing_to_a_dead_or_frozen_server_fails_fast(
    open_clients: OpenClient, throwaway_redis: RedisProcess
) -> None:
    client = await open_clients(url=throwaway_redis.url, pool_min=1)
    throwaway_redis.freeze()
    try:
        elapsed, error = await timed_failure(lambda: client.subscribe("c", lambda m: None))
    finally:
        throwaway_redis.thaw()
    assert elapsed < FAST  # connect_timeout_ms + 2 * socket_timeout_ms at most
    assert "SUBSCRIBE" in str(error)
    throwaway_redis.kill()
    elapsed, error = await timed_failure(lambda: client.subscribe("c", lambda m: None))
    assert elapsed < FAST
    assert "SUBSCRIBE" in str(error)
