"""The Redis cache client: :class:`~qts_data.interfaces.CacheClient` on redis.asyncio (hiredis).

Keys are sent as ``prefix + key`` (hash tags such as ``{005930}`` in the core's
keys are kept as they are, so the keys of one symbol share a cluster slot);
TTLs are milliseconds (``SET PX``, ``PEXPIRE``, ``PTTL``); replies are decoded
here, identically in both modes and in pipelines: hash field names and
sorted-set members as ``str``, values as ``bytes``, scores as ``float``.

The per-call path is a prefix concatenation, one backend call (see
:mod:`~qts_data_redis_cache.backends`) and the decoding: no logging, no
validation models, no extra round trip.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.utils import HIREDIS_AVAILABLE

from qts_data.config.secrets import register_secret, register_secrets_in
from qts_data.contracts import HealthState, HealthStatus
from qts_data.errors import BackendError, CacheTypeError, Failure
from qts_data.interfaces import CacheClient, CachePipeline, MessageHandler, Subscription, Value
from qts_data_redis_cache.backends import (
    TRANSPORT_ERRORS,
    ClusterBackend,
    StandaloneBackend,
    make_backend,
    one_line,
)
from qts_data_redis_cache.pubsub import RedisSubscription
from qts_data_redis_cache.scripts import HSET_IF_NEWER, ZREPLACE_IF_NEWER, Script
from qts_data_redis_cache.settings import RedisCacheSettings

__all__ = ["RedisCacheClient", "RedisPipeline"]

_decode = bytes.decode
_GLOB_SPECIAL = str.maketrans({c: "\\" + c for c in "\\*?[]"})


# -- argument checks (the same rules as the memory client) -------------------------------------
def _value(value: object) -> bytes | str:
    if type(value) is bytes or type(value) is str:
        return value
    if isinstance(value, (bytes, str)):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"cache values are bytes or str, got {type(value).__name__}")


def _ttl(ttl_ms: Any) -> int:
    """A positive whole number of ms (a fraction is rounded up)."""
    if type(ttl_ms) is not int:
        if isinstance(ttl_ms, bool) or not isinstance(ttl_ms, (int, float)):
            raise TypeError(f"ttl_ms must be a number of milliseconds, got {ttl_ms!r}")
        if not math.isfinite(ttl_ms):
            raise ValueError(f"ttl_ms must be a finite number of milliseconds, got {ttl_ms!r}")
        ttl_ms = math.ceil(ttl_ms)
    if ttl_ms <= 0:
        raise ValueError(f"ttl_ms must be a positive number of milliseconds, got {ttl_ms!r}")
    return int(ttl_ms)


def _expire_ms(ttl_ms: Any) -> int:
    """Like :func:`_ttl`, but zero or less is allowed (``expire`` then deletes the key)."""
    if type(ttl_ms) is int:
        return ttl_ms
    if isinstance(ttl_ms, bool) or not isinstance(ttl_ms, (int, float)) or math.isnan(ttl_ms):
        raise TypeError(f"ttl_ms must be a number of milliseconds, got {ttl_ms!r}")
    if ttl_ms <= 0:
        return 0
    return _ttl(ttl_ms)


def _hash_args(key: str, mapping: Mapping[str, Value]) -> list[Any]:
    args: list[Any] = ["HSET", key]
    for field, value in mapping.items():
        if type(field) is not str and not isinstance(field, str):
            raise TypeError(f"hash fields are str, got {type(field).__name__}")
        args.append(field)
        args.append(_value(value))
    return args


def _zset_args(key: str, mapping: Mapping[str, float]) -> list[Any]:
    args: list[Any] = ["ZADD", key]
    for member, score in mapping.items():
        if not isinstance(member, str):
            raise TypeError(f"sorted-set members are str, got {type(member).__name__}")
        number = float(score)
        if math.isnan(number):
            raise ValueError(f"score of member {member!r} is not a number")
        args.append(number)
        args.append(member)
    return args


# -- reply decoding (client methods and pipelines alike) ---------------------------------------
def _hash(reply: list[bytes]) -> dict[str, bytes]:
    it = iter(reply)
    return dict(zip(map(_decode, it), it, strict=False))


def _pairs(reply: list[bytes]) -> list[tuple[str, float]]:
    it = iter(reply)
    return [(member.decode(), float(score)) for member, score in zip(it, it, strict=False)]


def _ttl_reply(reply: int) -> int | None:
    if reply == -1:
        return None
    return int(reply)


def _first(chunk: list[Any]) -> Any:
    return chunk[0]


def _first_int(chunk: list[Any]) -> int:
    return int(chunk[0])


def _first_bool(chunk: list[Any]) -> bool:
    return bool(chunk[0] == 1)


def _nothing(chunk: list[Any]) -> None:
    return None


def _zero(chunk: list[Any]) -> int:
    return 0


def _total(chunk: list[Any]) -> int:
    return sum(int(count) for count in chunk)


def _hash_chunk(chunk: list[Any]) -> dict[str, bytes]:
    return _hash(chunk[0])


def _pairs_chunk(chunk: list[Any]) -> list[tuple[str, float]]:
    return _pairs(chunk[0])


def glob_escape(text: str) -> str:
    """``text`` as a Redis glob that matches it literally."""
    return text.translate(_GLOB_SPECIAL)


class RedisCacheClient(CacheClient):
    """A :class:`CacheClient` on a Redis server or a Redis Cluster.

    ``RedisCacheClient(settings)`` or ``RedisCacheClient(url=..., prefix=...)``
    (keyword arguments are :class:`RedisCacheSettings` fields). Construction
    does not touch the network; :meth:`open` connects.
    """

    in_process = False

    def __init__(self, settings: RedisCacheSettings | None = None, /, **fields: Any) -> None:
        if settings is None:
            settings = RedisCacheSettings.model_validate(fields)
        elif fields:
            settings = RedisCacheSettings.model_validate({**settings.model_dump(), **fields})
        register_secrets_in(settings)
        self.settings = settings
        self.endpoint = settings.endpoint()
        register_secret(self.endpoint.password)
        self._prefix = settings.prefix
        self._backend: StandaloneBackend | ClusterBackend | None = None
        self._call: Callable[..., Any] = self._not_open
        self._subscriptions: set[RedisSubscription] = set()

    @property
    def label(self) -> str:
        return f"redis_cache {self.name!r}" if self.name else "redis_cache"

    @property
    def mode(self) -> str:
        return "cluster" if self.settings.cluster else "standalone"

    @property
    def prefix(self) -> str:
        return self._prefix

    # -- lifecycle ------------------------------------------------------------------------------
    async def open(self) -> None:
        """Create the pool (or the cluster client) and open ``pool_min`` connections.

        Raises :class:`BackendError` when Redis cannot be reached or refuses the
        credentials, unless ``lazy_connect`` is set.
        """
        if self._backend is not None:
            return
        backend = make_backend(self.settings)
        backend.label = self.label
        await backend.open(connect=not self.settings.lazy_connect)
        self._backend = backend
        self._call = backend.call

    async def close(self) -> None:
        subscriptions, self._subscriptions = list(self._subscriptions), set()
        for subscription in subscriptions:
            await subscription.close()
        backend, self._backend = self._backend, None
        self._call = self._not_open
        if backend is not None:
            await backend.close()

    async def _not_open(self, *args: Any) -> Any:
        raise self._closed(str(args[0]) if args else None)

    def _closed(self, operation: str | None) -> BackendError:
        return BackendError(
            f"{self.label}: the client is not open (call open() first)",
            backend=self.label,
            operation=operation,
            failure=Failure.CLOSED,
        )

    def _live(self) -> StandaloneBackend | ClusterBackend:
        backend = self._backend
        if backend is None:
            raise self._closed(None)
        return backend

    def _refused(self, exc: Exception, command: str, key: str, expected: str) -> Exception:
        """An error reply as the interface's error: CacheTypeError for WRONGTYPE, else BackendError."""
        if not isinstance(exc, ResponseError):
            if isinstance(exc, TRANSPORT_ERRORS):  # in place of a reply (cluster pipelines)
                return BackendError(
                    one_line(f"{self.label}: {command} on key {key!r} failed: {exc}"),
                    backend=self.label,
                    operation=command,
                    failure=Failure.TIMEOUT
                    if isinstance(exc, (TimeoutError, RedisTimeoutError))
                    else Failure.DISCONNECTED,
                )
            return exc
        text = str(exc)
        if text.startswith("WRONGTYPE"):
            return CacheTypeError(
                f"WRONGTYPE Operation against a key holding the wrong kind of value: "
                f"key {key!r} does not hold a {expected} ({command})"
            )
        code = getattr(exc, "status_code", None)  # redis-py strips a known code (OOM, READONLY...)
        if code and not text.startswith(code):
            text = f"{code} {text}"
        return BackendError(
            one_line(f"{self.label}: Redis refused {command} on key {key!r}: {text}"),
            backend=self.label,
            operation=command,
            failure=Failure.REFUSED,
        )

    # -- strings ----------------------------------------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        try:
            reply: bytes | None = await self._call("GET", self._prefix + key)
        except ResponseError as exc:
            raise self._refused(exc, "GET", key, "string") from None
        return reply

    async def set(self, key: str, value: Value, ttl_ms: int | None = None) -> None:
        data = _value(value)
        try:
            if ttl_ms is None:
                await self._call("SET", self._prefix + key, data)
            else:
                await self._call("SET", self._prefix + key, data, "PX", _ttl(ttl_ms))
        except ResponseError as exc:
            raise self._refused(exc, "SET", key, "string") from None

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        prefix = self._prefix
        try:
            return await self._live().delete([prefix + key for key in keys])
        except ResponseError as exc:
            raise self._refused(exc, "DEL", keys[0], "key") from None

    async def exists(self, key: str) -> bool:
        try:
            reply = await self._call("EXISTS", self._prefix + key)
        except ResponseError as exc:
            raise self._refused(exc, "EXISTS", key, "key") from None
        return bool(reply == 1)

    async def expire(self, key: str, ttl_ms: int) -> bool:
        try:
            reply = await self._call("PEXPIRE", self._prefix + key, _expire_ms(ttl_ms))
        except ResponseError as exc:
            raise self._refused(exc, "PEXPIRE", key, "key") from None
        return bool(reply == 1)

    async def ttl_ms(self, key: str) -> int | None:
        try:
            reply = await self._call("PTTL", self._prefix + key)
        except ResponseError as exc:
            raise self._refused(exc, "PTTL", key, "key") from None
        return _ttl_reply(reply)

    async def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        """Native MGET (per hash slot on a cluster). A key of another type reads as None."""
        if not keys:
            return []
        prefix = self._prefix
        try:
            return await self._live().mget([prefix + key for key in keys])
        except ResponseError as exc:
            raise self._refused(exc, "MGET", keys[0], "string") from None

    # -- hashes -------------------------------------------------------------------------------------
    async def hset(self, key: str, mapping: Mapping[str, Value], ttl_ms: int | None = None) -> int:
        full = self._prefix + key
        args = _hash_args(full, mapping)
        ttl = None if ttl_ms is None else _ttl(ttl_ms)
        try:
            if len(args) == 2:  # nothing to set: only the type is checked (HSET needs a field)
                await self._call("HLEN", full)
                return 0
            if ttl is None:
                return int(await self._call(*args))
            # One round trip, no MULTI: HSET then PEXPIRE.
            replies = await self._live().pipeline([tuple(args), ("PEXPIRE", full, ttl)], False)
        except ResponseError as exc:
            raise self._refused(exc, "HSET", key, "hash") from None
        if isinstance(replies[0], Exception):
            raise self._refused(replies[0], "HSET", key, "hash")
        return int(replies[0])

    async def hset_if_newer(
        self, key: str, mapping: Mapping[str, Value], *, version_field: str, expire_at_ms: int
    ) -> bool:
        """One script run on the server (see :mod:`~qts_data_redis_cache.scripts`)."""
        full = self._prefix + key
        pairs = _hash_args(full, mapping)[2:]
        args = (version_field, int(mapping[version_field]), int(expire_at_ms), *pairs)
        try:
            return bool(await self._script(HSET_IF_NEWER, (full,), args) == 1)
        except ResponseError as exc:
            raise self._refused(exc, "HSET", key, "hash") from None

    async def zreplace_if_newer(
        self,
        key: str,
        mapping: Mapping[str, float],
        *,
        version_key: str,
        version: int,
        expire_at_ms: int,
    ) -> bool:
        """One script run on the server (see :mod:`~qts_data_redis_cache.scripts`)."""
        prefix = self._prefix
        args = [int(version), int(expire_at_ms), *_zset_args(key, mapping)[2:]]
        try:
            keys = (prefix + key, prefix + version_key)
            return bool(await self._script(ZREPLACE_IF_NEWER, keys, args) == 1)
        except ResponseError as exc:
            raise self._refused(exc, "ZADD", key, "sorted set") from None

    async def _script(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await self._call("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:  # a restarted (or flushed) server: send the source once
            return await self._call("EVAL", script.source, len(keys), *keys, *args)

    async def hget(self, key: str, field: str) -> bytes | None:
        try:
            reply: bytes | None = await self._call("HGET", self._prefix + key, field)
        except ResponseError as exc:
            raise self._refused(exc, "HGET", key, "hash") from None
        return reply

    async def hgetall(self, key: str) -> dict[str, bytes]:
        try:
            reply = await self._call("HGETALL", self._prefix + key)
        except ResponseError as exc:
            raise self._refused(exc, "HGETALL", key, "hash") from None
        it = iter(reply)
        return dict(zip(map(_decode, it), it, strict=False))

    async def hdel(self, key: str, *fields: str) -> int:
        try:
            if not fields:
                await self._call("HLEN", self._prefix + key)
                return 0
            return int(await self._call("HDEL", self._prefix + key, *fields))
        except ResponseError as exc:
            raise self._refused(exc, "HDEL", key, "hash") from None

    # -- sorted sets ----------------------------------------------------------------------------------
    async def zadd(self, key: str, mapping: Mapping[str, float], ttl_ms: int | None = None) -> int:
        full = self._prefix + key
        args = _zset_args(full, mapping)
        ttl = None if ttl_ms is None else _ttl(ttl_ms)
        try:
            if len(args) == 2:
                await self._call("ZCARD", full)
                return 0
            if ttl is None:
                return int(await self._call(*args))
            replies = await self._live().pipeline([tuple(args), ("PEXPIRE", full, ttl)], False)
        except ResponseError as exc:
            raise self._refused(exc, "ZADD", key, "zset") from None
        if isinstance(replies[0], Exception):
            raise self._refused(replies[0], "ZADD", key, "zset")
        return int(replies[0])

    async def zrange(
        self, key: str, start: int = 0, stop: int = -1, *, desc: bool = False
    ) -> list[tuple[str, float]]:
        command = "ZREVRANGE" if desc else "ZRANGE"
        try:
            reply = await self._call(command, self._prefix + key, start, stop, "WITHSCORES")
        except ResponseError as exc:
            raise self._refused(exc, command, key, "zset") from None
        return _pairs(reply)

    async def zrangebyscore(
        self, key: str, min_score: float, max_score: float
    ) -> list[tuple[str, float]]:
        try:
            reply = await self._call(
                "ZRANGEBYSCORE",
                self._prefix + key,
                float(min_score),
                float(max_score),
                "WITHSCORES",
            )
        except ResponseError as exc:
            raise self._refused(exc, "ZRANGEBYSCORE", key, "zset") from None
        return _pairs(reply)

    async def zrem(self, key: str, *members: str) -> int:
        try:
            if not members:
                await self._call("ZCARD", self._prefix + key)
                return 0
            return int(await self._call("ZREM", self._prefix + key, *members))
        except ResponseError as exc:
            raise self._refused(exc, "ZREM", key, "zset") from None

    async def zcard(self, key: str) -> int:
        try:
            return int(await self._call("ZCARD", self._prefix + key))
        except ResponseError as exc:
            raise self._refused(exc, "ZCARD", key, "zset") from None

    # -- keyspace -----------------------------------------------------------------------------------
    async def scan_iter(self, match: str = "*", count: int = 500) -> AsyncIterator[str]:
        """Keys matching ``match`` under the prefix (yielded without it): SCAN until the
        cursor is back to 0 (on a cluster, on every master). Never ``KEYS``."""
        backend = self._live()
        cut = len(self._prefix.encode())
        pattern = glob_escape(self._prefix) + match
        async for raw in backend.scan(pattern, max(int(count), 1)):
            yield raw[cut:].decode()

    def pipeline(self, transaction: bool = False) -> RedisPipeline:
        return RedisPipeline(self, transaction)

    async def _pipeline(self, commands: list[tuple[Any, ...]], transaction: bool) -> list[Any]:
        return await self._live().pipeline(commands, transaction)

    # -- shards -----------------------------------------------------------------------------------
    def shard_of(self, key: str) -> str | None:
        """On a cluster, the master serving ``key`` now (``host:port``) from the client's slot
        map: one CRC16 and a dict lookup, no I/O. None on a standalone server, or before the
        slot map is known. After a failover the slots map to the promoted replica once the
        client has re-learned the topology (it does so on its own while a node fails)."""
        backend = self._backend
        if backend is None:
            return None
        return backend.shard_of(self._prefix + key)

    def shards(self) -> list[str]:
        """The masters of the slot map (``host:port``); empty on a standalone server."""
        backend = self._backend
        return [] if backend is None else backend.shards()

    def _slot_groups(self, keys: list[str]) -> list[list[str]]:
        backend = self._backend
        if backend is None:
            return [keys]
        return backend.slot_groups(keys)

    # -- pub/sub ------------------------------------------------------------------------------------
    async def publish(self, channel: str, message: Value) -> int:
        try:
            return await self._live().publish(self._prefix + channel, _value(message))
        except ResponseError as exc:
            raise self._refused(exc, "PUBLISH", channel, "channel") from None

    async def subscribe(self, channel: str, handler: MessageHandler) -> Subscription:
        """Listen on ``prefix + channel`` over a dedicated connection (see :mod:`.pubsub`)."""
        subscription = RedisSubscription(
            self._live(),
            self._prefix + channel,
            handler,
            self.settings.health_check_interval_s,
            on_close=self._subscriptions.discard,
        )
        await subscription.start()
        self._subscriptions.add(subscription)
        return subscription

    # -- health -----------------------------------------------------------------------------------
    async def health_check(self) -> HealthStatus:
        """PING latency, server version, mode, pool use. Keys are not counted (no KEYS)."""
        component = self.name or "redis_cache"
        details: dict[str, Any] = {
            "mode": self.mode,
            "url": self.endpoint.masked_url,
            "prefix": self._prefix,
            "parser": "hiredis" if HIREDIS_AVAILABLE else "python",
            "tls": self.endpoint.tls,
        }
        backend = self._backend
        if backend is None:
            return HealthStatus(
                component=component,
                state=HealthState.UNHEALTHY,
                message="not open",
                details=details,
            )
        started = time.perf_counter()
        try:
            await backend.ping()
            latency_ms = (time.perf_counter() - started) * 1000
            details.update(await backend.server_info())
        except Exception as exc:
            return HealthStatus(
                component=component,
                state=HealthState.UNHEALTHY,
                latency_ms=(time.perf_counter() - started) * 1000,
                message=one_line(str(exc) or type(exc).__name__),
                details=details,
            )
        pool = backend.stats()
        details["pool"] = pool
        details["subscriptions"] = len(self._subscriptions)
        details["subscriptions_lost"] = sum(1 for s in self._subscriptions if not s.active)
        state, message = HealthState.HEALTHY, ""
        if pool["waiting"] or pool["in_use"] >= pool["pool_max"]:
            state, message = HealthState.DEGRADED, "every pooled connection is in use"
        elif latency_ms > self.settings.socket_timeout_ms / 2:
            state, message = HealthState.DEGRADED, f"PING took {latency_ms:.1f} ms"
        elif details["subscriptions_lost"]:
            state, message = HealthState.DEGRADED, "a subscription is being re-established"
        return HealthStatus(
            component=component,
            state=state,
            latency_ms=latency_ms,
            message=message,
            details=details,
        )

    def describe(self) -> dict[str, Any]:
        s = self.settings
        described: dict[str, Any] = {
            "url": self.endpoint.masked_url,
            "mode": self.mode,
            "prefix": s.prefix,
            "pool_min": s.pool_min,
            "pool_max": s.pool_max,
            "pool_timeout_ms": s.pool_timeout_ms,
            "socket_timeout_ms": s.socket_timeout_ms,
            "connect_timeout_ms": s.connect_timeout_ms,
            "tls": self.endpoint.tls,
        }
        if self.endpoint.username:
            described["username"] = self.endpoint.username
        if s.cluster:
            described["startup_nodes"] = [f"{h}:{p}" for h, p in s.startup_nodes()]
            described["read_from_replicas"] = s.read_from_replicas
        return described


class RedisPipeline(CachePipeline):
    """Commands queued locally, sent in one round trip by :meth:`execute`.

    ``transaction=False``: no MULTI; on a cluster the commands are split by node
    and sent to each node at once. ``transaction=True``: MULTI/EXEC (on a
    cluster the keys must share one hash slot). Results are what the client
    methods return; every command runs, then the first error is raised.
    """

    __slots__ = ("_client", "_commands", "_ops", "transaction")

    def __init__(self, client: RedisCacheClient, transaction: bool = False) -> None:
        self._client = client
        self.transaction = transaction
        self._commands: list[tuple[Any, ...]] = []
        #: (raw commands, fold of their replies, command name, key, expected type) per queued call.
        self._ops: list[tuple[int, Callable[[list[Any]], Any], str, str, str]] = []

    def __len__(self) -> int:
        return len(self._ops)

    def _queue(
        self,
        fold: Callable[[list[Any]], Any],
        command: str,
        key: str,
        expected: str,
        *commands: tuple[Any, ...],
    ) -> RedisPipeline:
        self._commands.extend(commands)
        self._ops.append((len(commands), fold, command, key, expected))
        return self

    def get(self, key: str) -> RedisPipeline:
        return self._queue(_first, "GET", key, "string", ("GET", self._client.prefix + key))

    def set(self, key: str, value: Value, ttl_ms: int | None = None) -> RedisPipeline:
        full = self._client.prefix + key
        data = _value(value)
        if ttl_ms is None:
            return self._queue(_nothing, "SET", key, "string", ("SET", full, data))
        return self._queue(_nothing, "SET", key, "string", ("SET", full, data, "PX", _ttl(ttl_ms)))

    def delete(self, *keys: str) -> RedisPipeline:
        prefix = self._client.prefix
        groups = self._client._slot_groups([prefix + key for key in keys]) if keys else []
        return self._queue(
            _total, "DEL", keys[0] if keys else "", "key", *(("DEL", *group) for group in groups)
        )

    def expire(self, key: str, ttl_ms: int) -> RedisPipeline:
        full = self._client.prefix + key
        return self._queue(
            _first_bool, "PEXPIRE", key, "key", ("PEXPIRE", full, _expire_ms(ttl_ms))
        )

    def hset(
        self, key: str, mapping: Mapping[str, Value], ttl_ms: int | None = None
    ) -> RedisPipeline:
        full = self._client.prefix + key
        args = _hash_args(full, mapping)
        ttl = None if ttl_ms is None else _ttl(ttl_ms)
        if len(args) == 2:
            return self._queue(_zero, "HSET", key, "hash", ("HLEN", full))
        if ttl is None:
            return self._queue(_first_int, "HSET", key, "hash", tuple(args))
        return self._queue(_first_int, "HSET", key, "hash", tuple(args), ("PEXPIRE", full, ttl))

    def hgetall(self, key: str) -> RedisPipeline:
        full = self._client.prefix + key
        return self._queue(_hash_chunk, "HGETALL", key, "hash", ("HGETALL", full))

    def zadd(
        self, key: str, mapping: Mapping[str, float], ttl_ms: int | None = None
    ) -> RedisPipeline:
        full = self._client.prefix + key
        args = _zset_args(full, mapping)
        ttl = None if ttl_ms is None else _ttl(ttl_ms)
        if len(args) == 2:
            return self._queue(_zero, "ZADD", key, "zset", ("ZCARD", full))
        if ttl is None:
            return self._queue(_first_int, "ZADD", key, "zset", tuple(args))
        return self._queue(_first_int, "ZADD", key, "zset", tuple(args), ("PEXPIRE", full, ttl))

    def zrange(
        self, key: str, start: int = 0, stop: int = -1, *, desc: bool = False
    ) -> RedisPipeline:
        full = self._client.prefix + key
        command = "ZREVRANGE" if desc else "ZRANGE"
        return self._queue(
            _pairs_chunk, command, key, "zset", (command, full, start, stop, "WITHSCORES")
        )

    def zrem(self, key: str, *members: str) -> RedisPipeline:
        full = self._client.prefix + key
        if not members:
            return self._queue(_zero, "ZREM", key, "zset", ("ZCARD", full))
        return self._queue(_first_int, "ZREM", key, "zset", ("ZREM", full, *members))

    async def execute(self) -> list[Any]:
        commands, ops = self._commands, self._ops
        self._commands, self._ops = [], []
        if not ops:
            return []
        replies = await self._client._pipeline(commands, self.transaction) if commands else []
        client = self._client
        results: list[Any] = []
        error: Exception | None = None
        at = 0
        for count, fold, command, key, expected in ops:
            chunk = replies[at : at + count]
            at += count
            failed = next((reply for reply in chunk if isinstance(reply, Exception)), None)
            if failed is None:
                results.append(fold(chunk))
                continue
            mapped = client._refused(failed, command, key, expected)
            results.append(mapped)
            if error is None:
                error = mapped
        if error is not None:
            raise error
        return results
