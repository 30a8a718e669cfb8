"""Connections a server restart closed: dropped, and a safe command sent once more.

Two ways a pooled connection goes bad under the client. A restarted server's
close (FIN) has usually arrived before the next command, and the look at the
connection before each use finds it. When it has not (a close lost by a NAT or
a proxy, or in flight while the command is written), the command itself meets
the closed connection: a command that is safe to repeat goes out once more on
a fresh connection; any other fails with ``Failure.DISCONNECTED``, since it may
have run. The second case is made on purpose by a TCP relay in front of a real
Redis that drops the server side of its connections and keeps the client side
open and silent until the client writes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis_support import OpenClient, wait_until

from qts_data.errors import BackendError, Failure
from qts_data.testing.servers import RedisProcess
from qts_data_redis_cache.backends import repeatable
from qts_data_redis_cache.client import RedisCacheClient

pytestmark = [pytest.mark.slow]


async def test_the_first_read_and_publish_after_a_restart_succeed(
    open_clients: OpenClient, throwaway_redis: RedisProcess
) -> None:
    client = await open_clients(url=throwaway_redis.url, pool_min=3)
    subscriber = await open_clients(
        url=throwaway_redis.url, pool_min=1, health_check_interval_s=0.2
    )
    received: list[bytes | None] = []
    await subscriber.subscribe("inv", received.append)
    await client.set("k", b"v")
    await client.hset("h", {"f": b"1"})
    throwaway_redis.kill()
    throwaway_redis.start()  # same port, empty; no call in between: the pool is all stale
    # Each of these meets a connection the restart closed, and none of them fails.
    assert await client.get("k") is None
    assert await client.hgetall("h") == {}
    assert await client.pipeline().get("k").hgetall("h").execute() == [None, {}]
    await wait_until(lambda: received == [None, None])  # the subscriber lost and resubscribed
    assert await client.publish("inv", b"after") == 1
    await wait_until(lambda: received[-1] == b"after")


class SeveringRelay:
    """A TCP relay to a real Redis. :meth:`sever` closes the server side of every
    connection it relays, silently: the client side stays open, and is reset when the
    client next writes to it, so the close is noticed only by a command."""

    def __init__(self, port: int) -> None:
        self.upstream_port = port
        self.accepted = 0
        self._severed: list[asyncio.Event] = []
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}/0"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for event in self._severed:
                event.set()

    def sever(self) -> None:
        for event in self._severed:
            event.set()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        severed = asyncio.Event()
        self._severed.append(severed)

        async def to_server() -> None:
            while data := await reader.read(65536):
                if severed.is_set():
                    writer.transport.abort()  # a write to a connection the server no longer has
                    return
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def to_client() -> None:
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()
            if not severed.is_set():
                writer.close()

        async def cut() -> None:
            await severed.wait()
            up_writer.transport.abort()

        tasks = [asyncio.ensure_future(job()) for job in (to_server, to_client, cut)]
        await asyncio.wait(tasks[:1])
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            up_writer.transport.abort()


@pytest_asyncio.fixture
async def relay(throwaway_redis: RedisProcess) -> AsyncIterator[SeveringRelay]:
    relay = SeveringRelay(throwaway_redis.port)
    await relay.start()
    try:
        yield relay
    finally:
        await relay.close()


async def test_a_close_noticed_only_by_a_safe_command_is_retried_once_on_a_fresh_connection(
    open_clients: OpenClient, relay: SeveringRelay
) -> None:
    client: RedisCacheClient = await open_clients(url=relay.url, pool_min=1, pool_max=1)
    await client.set("k", b"v")
    await client.hset("h", {"f": b"1"})
    safe = {
        "GET": (lambda: client.get("k"), b"v"),
        "HGETALL": (lambda: client.hgetall("h"), {"f": b"1"}),
        "EXISTS": (lambda: client.exists("k"), True),
        "MGET": (lambda: client.mget(["k", "h"]), [b"v", None]),
        "pipeline of reads": (
            lambda: client.pipeline().get("k").hgetall("h").execute(),
            [b"v", {"f": b"1"}],
        ),
        "DEL": (lambda: client.delete("gone"), 0),
        "PUBLISH": (lambda: client.publish("nobody", b"m"), 0),
    }
    for name, (call, expected) in safe.items():
        before = relay.accepted
        relay.sever()
        assert await call() == expected, name
        assert relay.accepted == before + 1, f"{name}: one fresh connection"


async def test_a_close_noticed_by_a_command_that_is_not_safe_to_repeat_fails_it_as_disconnected(
    open_clients: OpenClient, relay: SeveringRelay
) -> None:
    client: RedisCacheClient = await open_clients(url=relay.url, pool_min=1, pool_max=1)
    await client.set("k", b"v")
    unsafe = {
        "SET with a relative TTL": lambda: client.set("k", b"new", ttl_ms=60_000),
        "HSET": lambda: client.hset("k2", {"f": b"x"}),
        "a pipeline with a write": lambda: client.pipeline().get("k").set("k", b"new").execute(),
    }
    for name, call in unsafe.items():
        relay.sever()
        with pytest.raises(BackendError) as caught:
            await call()
        assert caught.value.failure is Failure.DISCONNECTED, f"{name}: {caught.value}"
        assert caught.value.backend == client.label
        # Not sent again: the value is the one before (the relay never passed the write on).
        assert await client.get("k") == b"v", name


def test_which_commands_are_safe_to_repeat() -> None:
    assert repeatable(("GET", "k"))
    assert repeatable(("PUBLISH", "c", b"m"))
    assert repeatable(("SET", "k", b"v", "PXAT", 1_900_000_000_000))
    assert not repeatable(("SET", "k", b"v", "PX", 1000))
    assert not repeatable(("SET", "k", b"v"))
    assert not repeatable(("HSET", "h", "f", b"v"))
    assert not repeatable(("PEXPIRE", "k", 1000))
    assert not repeatable(("INCR", "k"))
