"""What the redis_cache client adds to the conformance suite, on the machine's Redis and on
throwaway servers: the key prefix, hash tags, the commands it sends, errors, pub/sub, health."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio as aredis

from qts_data.contracts import HealthState
from qts_data.errors import BackendError, CacheTypeError, Failure
from qts_data.testing.servers import RedisProcess
from qts_data_redis_cache.client import RedisCacheClient

pytestmark = pytest.mark.asyncio

OpenClient = Callable[..., Any]


@pytest_asyncio.fixture
async def raw(redis_url: str) -> AsyncIterator[aredis.Redis]:
    """Plain redis-py on the machine's Redis, to look behind the client."""
    client = aredis.Redis.from_url(redis_url, protocol=2)
    try:
        yield client
    finally:
        await client.aclose()


def command_calls(server: RedisProcess) -> dict[str, int]:
    """``INFO commandstats`` of a throwaway server: calls per command (lower case)."""
    reply = server.command("INFO", "commandstats")
    assert isinstance(reply, bytes)
    calls: dict[str, int] = {}
    for line in reply.decode().splitlines():
        if line.startswith("cmdstat_"):
            name, _, stats = line.partition(":")
            calls[name.removeprefix("cmdstat_")] = int(stats.split(",")[0].split("=")[1])
    return calls


# -- keys ------------------------------------------------------------------------------------------
async def test_keys_are_stored_under_the_prefix_with_their_hash_tags(
    open_clients: OpenClient, raw: aredis.Redis, redis_url: str, redis_key_prefix: str
) -> None:
    client = await open_clients(url=redis_url, prefix=redis_key_prefix, pool_min=1)
    key = "qts:v1:price:{005930}"
    await client.hset(key, {"v": b"71000"})
    assert await raw.hgetall(redis_key_prefix + key) == {b"v": b"71000"}
    assert await raw.exists(key) == 0
    assert [k async for k in client.scan_iter("qts:*")] == [key]


async def test_scan_matches_the_prefix_literally_and_yields_keys_without_it(
    open_clients: OpenClient, raw: aredis.Redis, redis_url: str, redis_key_prefix: str
) -> None:
    prefix = redis_key_prefix + "g[l]o*b?\\:"
    client = await open_clients(url=redis_url, prefix=prefix, pool_min=1)
    await client.set("k1", b"1")
    await client.set("k2", b"2")
    # Would match the prefix if its glob characters were not escaped.
    await raw.set(redis_key_prefix + "glo-b!\\:k3", b"3")
    await raw.set(redis_key_prefix + "g[l]o*b?\\:", b"4")  # the prefix itself: key ""
    assert sorted([k async for k in client.scan_iter()]) == ["", "k1", "k2"]
    assert [k async for k in client.scan_iter("k?", count=1)] in (["k1", "k2"], ["k2", "k1"])


async def test_commands_sent(open_clients: OpenClient, throwaway_redis: RedisProcess) -> None:
    """No MULTI unless a transaction is asked for; SCAN, never KEYS; MGET for mget."""
    client = await open_clients(url=throwaway_redis.url, prefix="p:", pool_min=1)
    await client.hset("h", {"f": b"1"}, ttl_ms=60_000)
    await client.zadd("z", {"m": 1.0}, ttl_ms=60_000)
    await client.pipeline().set("a", b"1").get("a").hgetall("h").execute()
    for i in range(30):
        await client.set(f"s:{i}", b"v")
    assert len([k async for k in client.scan_iter("s:*", count=5)]) == 30
    assert await client.mget(["a", "h", "missing"]) == [b"1", None, None]
    calls = command_calls(throwaway_redis)
    assert "multi" not in calls
    assert "exec" not in calls
    assert "keys" not in calls
    assert calls["scan"] > 1
    assert calls["pexpire"] == 2
    assert calls["mget"] == 1
    await client.pipeline(transaction=True).set("a", b"2").get("a").execute()
    calls = command_calls(throwaway_redis)
    assert calls["multi"] == calls["exec"] == 1


# -- values, errors ----------------------------------------------------------------------------------
async def test_replies_have_the_interface_types(
    open_clients: OpenClient, redis_url: str, redis_key_prefix: str
) -> None:
    client = await open_clients(url=redis_url, prefix=redis_key_prefix, pool_min=1)
    await client.hset("h", {"é": "₩", "b": bytearray(b"x")})
    assert await client.hgetall("h") == {"é": "₩".encode(), "b": b"x"}
    await client.zadd("z", {"m": 2, "n": float("inf"), "o": -1.5})
    assert await client.zrange("z") == [("o", -1.5), ("m", 2.0), ("n", float("inf"))]
    results = await client.pipeline().hgetall("h").zrange("z", 0, 0, desc=True).execute()
    assert results == [{"é": "₩".encode(), "b": b"x"}, [("n", float("inf"))]]
    assert await client.hset("h", {}) == 0
    assert await client.hdel("h") == 0
    assert await client.zrem("z") == 0
    assert await client.delete() == 0
    await client.set("ttl", b"v", ttl_ms=50.2)
    remaining = await client.ttl_ms("ttl")
    assert remaining is not None
    assert 0 < remaining <= 51


async def test_bad_arguments_are_refused_before_sending(
    open_clients: OpenClient, redis_url: str, redis_key_prefix: str
) -> None:
    client = await open_clients(url=redis_url, prefix=redis_key_prefix, pool_min=1)
    with pytest.raises(TypeError, match="bytes or str"):
        await client.set("k", 5)
    with pytest.raises(ValueError, match="positive"):
        await client.set("k", b"v", ttl_ms=0)
    with pytest.raises(ValueError, match="positive"):
        client.pipeline().hset("h", {"f": b"v"}, ttl_ms=-5)
    with pytest.raises(ValueError, match="not a number"):
        await client.zadd("z", {"m": float("nan")})
    with pytest.raises(TypeError, match="members are str"):
        await client.zadd("z", {b"m": 1.0})
    with pytest.raises(TypeError, match="fields are str"):
        await client.hset("h", {1: b"v"})
    assert await client.exists("k") is False
    assert await client.exists("h") is False


async def test_wrong_type_errors_name_the_key_and_the_rest_of_a_pipeline_runs(
    open_clients: OpenClient, redis_url: str, redis_key_prefix: str
) -> None:
    client = await open_clients(url=redis_url, prefix=redis_key_prefix, pool_min=1)
    await client.set("s", b"v")
    with pytest.raises(CacheTypeError, match=r"key 's' does not hold a hash \(HGETALL\)"):
        await client.hgetall("s")
    with pytest.raises(CacheTypeError, match="key 's'"):
        await client.zadd("s", {"m": 1.0}, ttl_ms=1000)
    assert await client.ttl_ms("s") is not None  # PEXPIRE ran after the refused ZADD (no MULTI)
    for transaction in (False, True):
        pipe = client.pipeline(transaction=transaction)
        pipe.set("a", b"1").hgetall("s").set("b", b"2")
        with pytest.raises(CacheTypeError, match="key 's'"):
            await pipe.execute()
        assert await client.mget(["a", "b"]) == [b"1", b"2"]
        await client.delete("a", "b")
        assert len(pipe) == 0


async def test_an_error_reply_other_than_wrongtype_is_a_backend_error(
    open_clients: OpenClient, throwaway_redis: RedisProcess
) -> None:
    client = await open_clients(url=throwaway_redis.url, pool_min=1)
    await client.set("before", b"v")
    throwaway_redis.command("CONFIG", "SET", "maxmemory", "1")
    throwaway_redis.command("CONFIG", "SET", "maxmemory-policy", "noeviction")
    with pytest.raises(BackendError, match=r"refused SET on key 'k': ") as caught:
        await client.set("k", b"v" * 100)
    assert caught.value.failure is Failure.REFUSED
    assert (caught.value.operation, caught.value.backend) == ("SET", client.label)
    assert await client.get("before") == b"v"  # reads still work


async def test_calls_outside_open_and_close_are_backend_errors(redis_url: str) -> None:
    client = RedisCacheClient(url=redis_url, pool_min=1)
    with pytest.raises(BackendError, match="not open"):
        await client.get("k")
    with pytest.raises(BackendError, match="not open"):
        await client.pipeline().get("k").execute()
    await client.close()  # closing an unopened client is fine
    await client.open()
    await client.open()  # opening twice is a no-op
    assert await client.get("qts-test:nothing-here") is None
    await client.close()
    with pytest.raises(BackendError, match="not open"):
        await client.delete("k")


# -- pub/sub -----------------------------------------------------------------------------------------
async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the condition did not come true in time")
        await asyncio.sleep(0.01)


async def test_a_message_published_by_one_client_reaches_a_subscriber_of_another(
    open_clients: OpenClient, raw: aredis.Redis, redis_url: str, redis_key_prefix: str
) -> None:
    publisher = await open_clients(url=redis_url, prefix=redis_key_prefix, pool_min=1)
    subscriber = await open_clients(url=redis_url, prefix=redis_key_prefix, pool_min=1)
    received: list[bytes | None] = []
    subscription = await subscriber.subscribe("inv", received.append)
    assert redis_key_prefix.encode() + b"inv" in await raw.pubsub_channels(redis_key_prefix + "*")
    assert await publisher.publish("inv", "k1") == 1
    assert await publisher.publish("other", b"x") == 0
    await publisher.publish("inv", b"k2")
    await wait_for(lambda: len(received) == 2)
    assert received == [b"k1", b"k2"]
    await subscription.close()
    await subscription.close()
    assert await publisher.publish("inv", b"k3") == 0
    await asyncio.sleep(0.05)
    assert received == [b"k1", b"k2"]


async def test_a_failing_handler_does_not_end_the_subscription(
    open_clients: OpenClient, redis_url: str, redis_key_prefix: str
) -> None:
    client = await open_clients(url=redis_url, prefix=redis_key_prefix, pool_min=1)
    received: list[bytes | None] = []

    def handler(message: bytes | None) -> None:
        received.append(message)
        if message == b"boom":
            raise RuntimeError("handler bug")

    await client.subscribe("c", handler)
    await client.publish("c", b"boom")
    await client.publish("c", b"after")
    await wait_for(lambda: len(received) == 2)
    assert received == [b"boom", b"after"]


async def test_closing_the_client_closes_its_subscriptions(
    redis_url: str, redis_key_prefix: str, raw: aredis.Redis
) -> None:
    client = RedisCacheClient(url=redis_url, prefix=redis_key_prefix, pool_min=1)
    await client.open()
    await client.subscribe("c", lambda message: None)
    assert await raw.pubsub_numsub(redis_key_prefix + "c") == [
        ((redis_key_prefix + "c").encode(), 1)
    ]
    await client.close()
    await wait_for_async(
        lambda: raw.pubsub_numsub(redis_key_prefix + "c"),
        [((redis_key_prefix + "c").encode(), 0)],
    )


async def wait_for_async(probe: Callable[[], Any], expected: object, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (value := await probe()) != expected:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still {value!r}, expected {expected!r}")
        await asyncio.sleep(0.01)


# -- health, pool --------------------------------------------------------------------------------------
async def test_health_check_reports_latency_version_mode_and_pool(
    open_clients: OpenClient, redis_url: str, redis_key_prefix: str
) -> None:
    client = await open_clients(url=redis_url, prefix=redis_key_prefix, pool_min=2)
    client.name = "hot"
    status = await client.health_check()
    assert status.state is HealthState.HEALTHY, status.message
    assert status.component == "hot"
    assert status.latency_ms is not None
    assert status.latency_ms < 100
    details = status.details
    assert details["mode"] == "standalone"
    assert details["version"].count(".") == 2
    assert details["parser"] == "hiredis"
    assert details["pool"]["connections"] == 2
    assert details["pool"]["pool_max"] == 50
    assert "keys" not in details
    unopened = RedisCacheClient(url=redis_url)
    assert (await unopened.health_check()).state is HealthState.UNHEALTHY


async def test_pool_min_connections_are_opened_eagerly_and_pool_max_bounds_them(
    open_clients: OpenClient, throwaway_redis: RedisProcess
) -> None:
    def connected_clients() -> int:
        reply = throwaway_redis.command("CLIENT", "LIST")
        assert isinstance(reply, bytes)
        return len(reply.decode().strip().splitlines()) - 1  # minus this probe

    client = await open_clients(url=throwaway_redis.url, pool_min=4, pool_max=6)
    assert connected_clients() == 4
    await asyncio.gather(*(client.set(f"k{i}", b"v") for i in range(300)))
    assert connected_clients() == 6
    assert client.describe()["pool_max"] == 6
    await client.close()
    await asyncio.sleep(0.05)
    assert connected_clients() == 0


# -- credentials ------------------------------------------------------------------------------------
async def test_acl_user_and_password_and_no_password_in_any_message(
    open_clients: OpenClient, throwaway_redis: RedisProcess
) -> None:
    secret = "Acl-S3cret-for-alice"
    throwaway_redis.command("ACL", "SETUSER", "alice", "on", f">{secret}", "~*", "&*", "+@all")
    address = f"127.0.0.1:{throwaway_redis.port}"
    client = await open_clients(url=f"redis://alice:{secret}@{address}/0", pool_min=2)
    await client.set("k", b"v")
    assert await client.get("k") == b"v"
    separate = await open_clients(
        url=f"redis://{address}/0", username="alice", password=secret, pool_min=1
    )
    assert await separate.get("k") == b"v"
    shown = [str(client.describe()), str(await client.health_check())]
    wrong = f"{secret}-but-wrong"
    bad = RedisCacheClient(url=f"redis://alice:{wrong}@{address}/0")
    with pytest.raises(BackendError) as caught:
        await bad.open()
    shown.append(str(caught.value))
    lazy = await open_clients(url=f"redis://alice:{wrong}@{address}/0", lazy_connect=True)
    with pytest.raises(BackendError) as caught:
        await lazy.get("k")
    shown.append(str(caught.value))
    with pytest.raises(BackendError) as caught:
        await lazy.subscribe("c", lambda message: None)
    shown += [str(caught.value), str(lazy.describe()), str(await lazy.health_check())]
    assert "alice:***@" in shown[0]
    assert any("invalid username-password pair" in text for text in shown)
    for text in shown:
        assert secret not in text
        assert "\n" not in text
