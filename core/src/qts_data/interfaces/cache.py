"""The cache client: a Redis-shaped key-value store with millisecond TTLs (seeds/000 §3.6)."""

from __future__ import annotations

import abc
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from typing import Any, ClassVar

from qts_data.interfaces.component import Component

#: Values are bytes; ``str`` is accepted on write and encoded as UTF-8.
Value = bytes | str


class CachePipeline(abc.ABC):
    """Commands queued and sent together; ``execute`` returns their results in order.

    Without ``transaction`` the commands are sent in one round trip but other
    clients' commands may interleave; with it they apply atomically (MULTI/EXEC).
    Queue methods return the pipeline so calls can be chained. Each result is
    what the matching client method returns (``set`` and ``hset`` results are
    not specified beyond that); every command runs, then the first error raises.
    """

    @abc.abstractmethod
    def get(self, key: str) -> CachePipeline: ...
    @abc.abstractmethod
    def set(self, key: str, value: Value, ttl_ms: int | None = None) -> CachePipeline: ...
    @abc.abstractmethod
    def delete(self, *keys: str) -> CachePipeline: ...
    @abc.abstractmethod
    def expire(self, key: str, ttl_ms: int) -> CachePipeline: ...
    @abc.abstractmethod
    def hset(
        self, key: str, mapping: Mapping[str, Value], ttl_ms: int | None = None
    ) -> CachePipeline: ...
    @abc.abstractmethod
    def hgetall(self, key: str) -> CachePipeline: ...
    @abc.abstractmethod
    def zadd(
        self, key: str, mapping: Mapping[str, float], ttl_ms: int | None = None
    ) -> CachePipeline: ...
    @abc.abstractmethod
    def zrange(
        self, key: str, start: int = 0, stop: int = -1, *, desc: bool = False
    ) -> CachePipeline: ...
    @abc.abstractmethod
    def zrem(self, key: str, *members: str) -> CachePipeline: ...
    @abc.abstractmethod
    async def execute(self) -> list[Any]:
        """Send the queued commands; the queue is empty afterwards."""

    async def __aenter__(self) -> CachePipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if exc[0] is None:
            await self.execute()


#: Called with each message of a subscribed channel, and with None when the
#: subscription was lost (messages may have been missed; delivery resumes after).
MessageHandler = Callable[[bytes | None], None]


class Subscription(abc.ABC):
    """A live subscription to a channel; ``close`` ends it."""

    @abc.abstractmethod
    async def close(self) -> None: ...


class CacheClient(Component, abc.ABC):
    """A remote or in-process cache. Keys are strings; values and hash fields hold bytes.

    TTLs are in milliseconds; ``None`` means no expiry. A write to a key replaces
    its TTL (like Redis' SET); ``hset``/``zadd`` keep the key's TTL unless one is
    given; a TTL must be positive (``expire`` with 0 or less deletes the key, as
    in Redis). Reading or writing a key of another type raises
    :class:`~qts_data.errors.CacheTypeError`. ``scan_iter`` matches Redis globs
    (``*``, ``?``, ``[...]``) and may yield a key more than once.
    """

    #: True for a cache inside this process (no network): the cache manager then
    #: spends no time budget or circuit breaker on it.
    in_process: ClassVar[bool] = False

    # -- strings ---------------------------------------------------------------
    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None: ...

    @abc.abstractmethod
    async def set(self, key: str, value: Value, ttl_ms: int | None = None) -> None: ...

    @abc.abstractmethod
    async def delete(self, *keys: str) -> int:
        """Remove keys of any type; returns how many existed."""

    @abc.abstractmethod
    async def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    async def expire(self, key: str, ttl_ms: int) -> bool:
        """Set a key's TTL; False when the key does not exist."""

    @abc.abstractmethod
    async def ttl_ms(self, key: str) -> int | None:
        """Remaining TTL in ms; None when the key has no TTL; -2 when the key does not exist."""

    # -- hashes ----------------------------------------------------------------
    @abc.abstractmethod
    async def hset(self, key: str, mapping: Mapping[str, Value], ttl_ms: int | None = None) -> int:
        """Set fields; returns how many fields were new."""

    @abc.abstractmethod
    async def hget(self, key: str, field: str) -> bytes | None: ...

    @abc.abstractmethod
    async def hgetall(self, key: str) -> dict[str, bytes]:
        """Every field; an empty dict for a missing key."""

    @abc.abstractmethod
    async def hdel(self, key: str, *fields: str) -> int: ...

    # -- sorted sets (order books: ``book:{symbol}:{side}``) --------------------
    @abc.abstractmethod
    async def zadd(self, key: str, mapping: Mapping[str, float], ttl_ms: int | None = None) -> int:
        """Add or rescore members; returns how many were new."""

    @abc.abstractmethod
    async def zrange(
        self, key: str, start: int = 0, stop: int = -1, *, desc: bool = False
    ) -> list[tuple[str, float]]:
        """Members with scores by rank (inclusive ``stop``; negative counts from the end)."""

    @abc.abstractmethod
    async def zrangebyscore(
        self, key: str, min_score: float, max_score: float
    ) -> list[tuple[str, float]]:
        """Members with ``min_score <= score <= max_score``, ascending."""

    @abc.abstractmethod
    async def zrem(self, key: str, *members: str) -> int: ...

    @abc.abstractmethod
    async def zcard(self, key: str) -> int: ...

    # -- keyspace ----------------------------------------------------------------
    @abc.abstractmethod
    def scan_iter(self, match: str = "*", count: int = 500) -> AsyncIterator[str]:
        """Every key matching a glob pattern, without blocking the server (never ``KEYS``)."""

    @abc.abstractmethod
    def pipeline(self, transaction: bool = False) -> CachePipeline: ...

    # -- pub/sub (invalidation of near caches in other processes) ----------------
    @abc.abstractmethod
    async def publish(self, channel: str, message: Value) -> int:
        """Send a message to every subscriber of ``channel``; returns how many received it."""

    @abc.abstractmethod
    async def subscribe(self, channel: str, handler: MessageHandler) -> Subscription:
        """Call ``handler`` with every message of ``channel`` until the subscription is closed.

        When the connection carrying the subscription is lost, ``handler(None)``
        is called (messages may have been missed) and the client keeps trying to
        resubscribe.
        """

    # -- shards (a cache spread over several servers, e.g. the masters of a Redis Cluster) ------
    def shard_of(self, key: str) -> str | None:
        """The shard that serves ``key`` now (a Redis Cluster: its slot's master,
        ``host:port``), or None when the cache is one shard (the default) or the client does
        not know yet. Called before every cache call the manager makes: it must be O(1) and
        do no I/O (it reads what the client already knows, e.g. its slot map). The cache
        manager keeps one circuit breaker per shard, so a failing shard bypasses only its
        own keys."""
        return None

    def shards(self) -> Collection[str]:
        """The shards serving keys now (empty for a cache of one shard); cheap, no I/O."""
        return ()

    async def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        """Several strings in one round trip (clients may override with a native MGET)."""
        pipe = self.pipeline()
        for key in keys:
            pipe.get(key)
        return list(await pipe.execute())

    # -- versioned writes (a write executed late never makes the cache older) ------------------
    async def hset_if_newer(
        self, key: str, mapping: Mapping[str, Value], *, version_field: str, expire_at_ms: int
    ) -> bool:
        """Replace the hash at ``key`` by ``mapping``, expiring at ``expire_at_ms`` (Unix time
        in ms), unless the hash there is newer: its ``version_field`` holds a larger integer
        than ``mapping[version_field]``. Nothing is written once ``expire_at_ms`` has passed.
        True when written.

        A write that timed out may still be executed by the server later; this makes such a
        write harmless: it cannot replace a newer version, and it expires when it would have
        (a relative TTL would start counting only when it is executed). Clients do it in one
        atomic step on the server (a script); this default, for clients that do not, reads
        and then writes, and is atomic only where nothing runs between the two.
        """
        version = int(mapping[version_field])
        ttl_ms = expire_at_ms - time.time_ns() // 1_000_000
        if ttl_ms <= 0:
            return False
        current = await self.hget(key, version_field)
        if current is not None and int(current) > version:
            return False
        pipe = self.pipeline(transaction=True)
        pipe.delete(key)
        pipe.hset(key, mapping, ttl_ms)
        await pipe.execute()
        return True

    async def zreplace_if_newer(
        self,
        key: str,
        mapping: Mapping[str, float],
        *,
        version_key: str,
        version: int,
        expire_at_ms: int,
    ) -> bool:
        """Replace the sorted set at ``key`` by ``mapping`` and the string at ``version_key`` by
        ``version``, both expiring at ``expire_at_ms``, unless ``version_key`` holds a larger
        integer; nothing once ``expire_at_ms`` has passed. True when written. The same
        guarantees and the same default as :meth:`hset_if_newer` (both keys must share a
        Redis Cluster hash slot)."""
        ttl_ms = expire_at_ms - time.time_ns() // 1_000_000
        if ttl_ms <= 0:
            return False
        current = await self.get(version_key)
        if current is not None and int(current) > version:
            return False
        pipe = self.pipeline(transaction=True)
        pipe.delete(key)
        if mapping:
            pipe.zadd(key, mapping, ttl_ms)
        pipe.set(version_key, str(version), ttl_ms)
        await pipe.execute()
        return True
