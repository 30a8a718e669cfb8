"""Redis Cluster specifics on a real three-master cluster: slots, masters, pub/sub across nodes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from redis.crc import key_slot

from qts_data.contracts import HealthState
from qts_data.errors import BackendError, Failure, NotSupportedError
from qts_data.testing.servers import RedisProcess, RedisProcessFactory
from qts_data_redis_cache.client import RedisCacheClient

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

OpenClient = Callable[..., Any]


def master_of(nodes: list[RedisProcess], key: str) -> RedisProcess:
    """The node of ``nodes`` (in slot order, equal shares) that holds ``key``."""
    slot = key_slot(key.encode())
    return nodes[slot * len(nodes) // 16384]


def keys_on_every_master(nodes: list[RedisProcess], prefix: str, count: int = 30) -> list[str]:
    keys = [f"k:{i}" for i in range(count)]
    holders = {master_of(nodes, prefix + key).port for key in keys}
    assert len(holders) == len(nodes), "the test keys do not cover every master"
    return keys


async def test_keys_spread_over_the_masters_are_scanned_deleted_and_read_per_slot(
    open_clients: OpenClient, redis_cluster: list[RedisProcess], unique_prefix: str
) -> None:
    client = await open_clients(url=redis_cluster[0].url, cluster=True, prefix=unique_prefix)
    keys = keys_on_every_master(redis_cluster, unique_prefix)
    async with client.pipeline() as pipe:  # one pipeline, split by node
        for key in keys:
            pipe.set(key, key)
    for node in redis_cluster:  # really spread: each master holds some
        held = node.command("SCAN", 0, "MATCH", unique_prefix + "*", "COUNT", 1000)
        assert isinstance(held, list)
        assert held[1], f"master {node.port} holds none of the keys"
    assert sorted([k async for k in client.scan_iter("k:*", count=7)]) == sorted(keys)
    assert await client.mget([*keys, "missing"]) == [k.encode() for k in keys] + [None]
    assert await client.pipeline().delete(*keys[:10], "missing").execute() == [10]
    assert await client.delete(*keys) == len(keys) - 10
    assert [k async for k in client.scan_iter("k:*")] == []


async def test_a_symbols_keys_share_a_slot_through_their_hash_tag(
    open_clients: OpenClient, redis_cluster: list[RedisProcess], unique_prefix: str
) -> None:
    client = await open_clients(url=redis_cluster[0].url, cluster=True, prefix=unique_prefix)
    keys = ["qts:v1:price:{005930}", "qts:v1:book:{005930}:bid", "qts:v1:pos:{005930}"]
    assert len({key_slot((unique_prefix + key).encode()) for key in keys}) == 1
    pipe = client.pipeline(transaction=True)
    pipe.hset(keys[0], {"v": b"71000"}, ttl_ms=100).zadd(keys[1], {"70900": 70900.0})
    pipe.hset(keys[2], {"qty": b"10"}).hgetall(keys[0]).zrange(keys[1])
    assert (await pipe.execute())[3:] == [{"v": b"71000"}, [("70900", 70900.0)]]
    assert await client.delete(*keys) == 3


async def test_a_transaction_across_slots_is_refused_before_anything_is_sent(
    open_clients: OpenClient, redis_cluster: list[RedisProcess], unique_prefix: str
) -> None:
    client = await open_clients(url=redis_cluster[0].url, cluster=True, prefix=unique_prefix)
    pipe = client.pipeline(transaction=True).set("{a}x", b"1").set("{b}y", b"2")
    with pytest.raises(NotSupportedError, match=r"one hash slot.*'\{a\}x'|one hash slot"):
        await pipe.execute()
    assert await client.mget(["{a}x", "{b}y"]) == [None, None]
    assert await client.pipeline(transaction=True).execute() == []


async def test_a_message_published_on_any_node_reaches_the_subscriber(
    open_clients: OpenClient, redis_cluster: list[RedisProcess], unique_prefix: str
) -> None:
    subscriber = await open_clients(url=redis_cluster[1].url, cluster=True, prefix=unique_prefix)
    publisher = await open_clients(url=redis_cluster[2].url, cluster=True, prefix=unique_prefix)
    received: list[bytes | None] = []
    await subscriber.subscribe("inv", received.append)
    assert await publisher.publish("inv", b"via client") == 1  # sent to the channel's slot master
    for node in redis_cluster:  # PUBLISH on each node is relayed over the cluster bus
        node.command("PUBLISH", unique_prefix + "inv", f"via {node.port}")
    expected = [b"via client", *(f"via {node.port}".encode() for node in redis_cluster)]
    deadline = asyncio.get_running_loop().time() + 5
    while received != expected:
        assert asyncio.get_running_loop().time() < deadline, received
        await asyncio.sleep(0.01)


async def test_health_check_reports_the_cluster(
    open_clients: OpenClient, redis_cluster: list[RedisProcess], unique_prefix: str
) -> None:
    client = await open_clients(
        url=redis_cluster[0].url,
        cluster=True,
        cluster_nodes=[f"127.0.0.1:{node.port}" for node in redis_cluster[1:]],
        prefix=unique_prefix,
    )
    status = await client.health_check()
    assert status.state is HealthState.HEALTHY, status.message
    assert status.details["mode"] == "cluster"
    assert status.details["masters"] == 3
    assert status.details["server_mode"] == "cluster"
    assert client.describe()["startup_nodes"] == [
        f"127.0.0.1:{node.port}" for node in redis_cluster
    ]


async def test_a_cluster_url_on_a_standalone_server_is_an_error(
    throwaway_redis: RedisProcess,
) -> None:
    client = RedisCacheClient(url=throwaway_redis.url, cluster=True)
    with pytest.raises(BackendError) as caught:
        await client.open()
    assert caught.value.failure is Failure.REFUSED, caught.value
    assert caught.value.operation == "CLUSTER SLOTS"
    await client.close()


async def test_a_frozen_or_killed_master_fails_its_keys_fast_and_the_others_keep_working(
    open_clients: OpenClient, redis_process_factory: RedisProcessFactory, unique_prefix: str
) -> None:
    nodes = redis_process_factory.cluster(masters=3)
    client = await open_clients(url=nodes[0].url, cluster=True, prefix=unique_prefix)
    by_master: dict[int, str] = {}
    for i in range(200):
        by_master.setdefault(master_of(nodes, f"{unique_prefix}k{i}").port, f"k{i}")
    for key in by_master.values():
        await client.set(key, key)
    victim, healthy = nodes[2], nodes[0]

    async def timed(key: str) -> tuple[float, object]:
        started = time.perf_counter()
        try:
            outcome: object = await client.get(key)
        except BackendError as exc:
            outcome = exc
        return time.perf_counter() - started, outcome

    victim.freeze()
    try:
        for _ in range(3):
            elapsed, outcome = await timed(by_master[victim.port])
            assert isinstance(outcome, BackendError)
            assert elapsed < 0.5, elapsed  # a read timeout, maybe a topology refresh: ~100-200 ms
            assert "within 100 ms" in str(outcome)
        elapsed, outcome = await timed(by_master[healthy.port])
        assert outcome == by_master[healthy.port].encode()
        assert elapsed < 0.5, elapsed
    finally:
        victim.thaw()
    assert await client.get(by_master[victim.port]) == by_master[victim.port].encode()
    victim.kill()
    for _ in range(3):
        elapsed, outcome = await timed(by_master[victim.port])
        assert isinstance(outcome, BackendError)
        assert elapsed < 0.5, elapsed
    assert await client.get(by_master[healthy.port]) == by_master[healthy.port].encode()


async def test_shard_of_names_the_master_of_the_key_slot_without_any_io(
    open_clients: OpenClient, redis_cluster: list[RedisProcess], unique_prefix: str
) -> None:
    client = await open_clients(url=redis_cluster[0].url, cluster=True, prefix=unique_prefix)
    names = {f"127.0.0.1:{node.port}" for node in redis_cluster}
    assert set(client.shards()) == names
    for key in keys_on_every_master(redis_cluster, unique_prefix):
        master = master_of(redis_cluster, unique_prefix + key)
        assert client.shard_of(key) == f"127.0.0.1:{master.port}"
    assert client.shard_of("pos:{A}") == client.shard_of("book:{A}:bid")


async def test_shard_of_is_none_on_a_standalone_server_or_before_open(
    open_clients: OpenClient, throwaway_redis: RedisProcess, redis_cluster: list[RedisProcess]
) -> None:
    client = await open_clients(url=throwaway_redis.url)
    assert client.shard_of("pos:{A}") is None and client.shards() == []
    unopened = RedisCacheClient(url=redis_cluster[0].url, cluster=True)
    assert unopened.shard_of("pos:{A}") is None and unopened.shards() == []


async def test_after_a_master_fails_the_slot_map_follows_the_failover_without_traffic(
    open_clients: OpenClient, redis_process_factory: RedisProcessFactory, unique_prefix: str
) -> None:
    """One failed command is all the dead master gets (the cache manager's breaker keeps the
    rest away): the client re-learns the slot map on its own until it names the promoted
    replica, then stops watching once every master answers."""
    masters = redis_process_factory.cluster(
        3, "--cluster-node-timeout", "2000", "--cluster-require-full-coverage", "no", replicas=1
    )
    victim = masters[2]
    (replica,) = redis_process_factory.replicas_of(victim)
    client = await open_clients(url=masters[0].url, cluster=True, prefix=unique_prefix)
    key = next(f"k{i}" for i in range(200) if master_of(masters, f"{unique_prefix}k{i}") is victim)
    await client.set(key, b"kept")
    await asyncio.sleep(0.2)  # replicated (asynchronously)
    assert client.shard_of(key) == f"127.0.0.1:{victim.port}"
    victim.kill()
    killed = time.monotonic()
    with pytest.raises(BackendError):
        await client.get(key)
    promoted = None
    while client.shard_of(key) != f"127.0.0.1:{replica.port}":
        if promoted is None and replica.command("ROLE")[0] == b"master":  # type: ignore[index]
            promoted = time.monotonic()
        assert time.monotonic() < killed + 30, "the slot map never named the promoted replica"
        await asyncio.sleep(0.05)
    followed = time.monotonic()
    assert promoted is None or followed - promoted < 2.0, (followed - killed, promoted - killed)
    assert f"127.0.0.1:{victim.port}" not in client.shards()
    assert await client.get(key) == b"kept"
    backend = client._backend
    deadline = time.monotonic() + 10
    while backend._watch is not None:  # every master answers: the watch ends
        assert time.monotonic() < deadline, "the topology watch did not end"
        await asyncio.sleep(0.05)
