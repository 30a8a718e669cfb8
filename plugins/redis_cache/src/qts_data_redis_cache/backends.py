"""Where commands go: one Redis server (:class:`StandaloneBackend`) or a Redis Cluster (:class:`ClusterBackend`).

Both speak raw RESP2 replies (no redis-py response callbacks: the client
decodes), bound the commands in flight with a :class:`~qts_data_redis_cache.gate.SlotGate`
(``pool_max``, checkout wait ``pool_timeout_ms``), and turn every connection
failure and timeout into a one-line :class:`~qts_data.errors.BackendError`.
Error replies (``ResponseError``) are left to the client, which knows the key.

Timeouts and retries. redis-py's own retries are off everywhere
(``Retry(NoBackoff(), 0)``, cluster retries 0): with its defaults a refused
connection takes seconds to fail and a silent server longer. What bounds a call
on a standalone server: ``socket_timeout_ms`` for the whole command - connecting
if needed (TCP/TLS within ``connect_timeout_ms``, then the handshake), the write
and the reply - under one :class:`~qts_data_redis_cache.deadline.Deadline`
(a loop too busy to read a reply in time does not fail the command); and the wait for a free connection, which
fails after ``pool_timeout_ms`` without any command completing (see
:mod:`~qts_data_redis_cache.gate`). On a cluster, redis-py applies
``socket_timeout_ms`` to each write and read and ``connect_timeout_ms`` to each
connect. No PING precedes commands (``health_check_interval=0``): a connection
the server closed is found by a non-blocking look at its buffer before each use
and reconnected, so a restarted server is used again without an error. When
the close is noticed only by the command itself (the server's FIN or RST had
not arrived yet), a command that is safe to repeat (:func:`repeatable`) is sent
once more on a fresh connection, within the same ``socket_timeout_ms``; any
other command fails with ``Failure.DISCONNECTED``, since it may have run.

The standalone pool is this module's own (an idle list plus the gate) over
redis-py's ``Connection`` objects, which do the parsing (hiredis), TLS, AUTH
and SELECT. redis-py's ``BlockingConnectionPool`` is not used: its checkout and
release (locks, a condition, metrics hooks) plus a timer task per write cost
about a third of a local HGETALL.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection, SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    DataError,
    RedisClusterException,
    RedisError,
    ResponseError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)
from redis.utils import HIREDIS_AVAILABLE

from qts_data.config.secrets import mask
from qts_data.errors import BackendError, Failure, NotSupportedError
from qts_data_redis_cache.deadline import Deadline
from qts_data_redis_cache.gate import GateClosed, GateTimeout, SlotGate
from qts_data_redis_cache.scripts import IDEMPOTENT
from qts_data_redis_cache.settings import Endpoint, RedisCacheSettings

__all__ = [
    "RAW_COMMANDS",
    "ClusterBackend",
    "StandaloneBackend",
    "connection_kwargs",
    "exchange",
    "make_backend",
    "repeatable",
]

#: The commands whose replies the client decodes itself (raw on the cluster client too).
RAW_COMMANDS = (
    "GET",
    "SET",
    "DEL",
    "EXISTS",
    "PEXPIRE",
    "PTTL",
    "HSET",
    "HGET",
    "HGETALL",
    "HDEL",
    "HLEN",
    "ZADD",
    "ZRANGE",
    "ZREVRANGE",
    "ZRANGEBYSCORE",
    "ZREM",
    "ZCARD",
    "MGET",
    "SCAN",
    "PUBLISH",
)

#: Failures of the transport (never an error reply): mapped to BackendError.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    RedisError,
    RedisClusterException,
    OSError,
    asyncio.TimeoutError,
)

#: A connection that was closed or reset under a command (as opposed to a timeout, or an
#: error reply). redis-py wraps socket errors in its ConnectionError; OSError covers the rest.
LOST_CONNECTION: tuple[type[BaseException], ...] = (RedisConnectionError, OSError)

#: Commands that leave the same state however often they run: reads, DEL (a removed cache
#: entry is reloaded from its source), PUBLISH (an invalidation received twice is harmless).
_REPEATABLE = frozenset(
    {
        "GET",
        "MGET",
        "EXISTS",
        "PTTL",
        "HGET",
        "HGETALL",
        "HLEN",
        "ZRANGE",
        "ZREVRANGE",
        "ZRANGEBYSCORE",
        "ZCARD",
        "SCAN",
        "PING",
        "INFO",
        "DEL",
        "PUBLISH",
    }
)
_ABSOLUTE_EXPIRY = ("PXAT", "EXAT")


def repeatable(command: Sequence[Any]) -> bool:
    """True when running ``command`` a second time cannot make anything older or less true.

    Reads, ``DEL`` and ``PUBLISH`` are; ``SET`` is when its expiry is absolute (``PXAT``/
    ``EXAT``: a late second run expires when the first would have); so are the versioned
    writes (:mod:`~qts_data_redis_cache.scripts`). A relative TTL
    (``PX``, ``PEXPIRE``) is not: run again later, it would keep the value for longer
    than its kind allows.
    """
    name = command[0]
    if name in _REPEATABLE:
        return True
    if name == "SET":
        return any(part in _ABSOLUTE_EXPIRY for part in command[3:])
    if name in ("EVALSHA", "EVAL"):  # the versioned writes of qts_data_redis_cache.scripts
        return len(command) > 1 and command[1] in IDEMPOTENT
    return False


#: Most connections being opened at once by one client (the rest of a burst waits, within
#: its own timeout, for one of these or for a connection to come back to the pool).
CONNECTS_AT_ONCE = 4

#: With hiredis a read cancelled mid-way loses nothing (the parser keeps what it was
#: fed), so an abandoned command's reply can be read later instead of reconnecting.
_RESUMABLE_READS = HIREDIS_AVAILABLE
_DISCONNECT_ON_ERROR = not _RESUMABLE_READS

# redis-py 8 renamed the stale-connection probe; 5.x has only the old name.
_can_read: Any = getattr(Connection, "can_read", None) or Connection.can_read_destructive


async def _drop_if_stale(conn: Any) -> None:
    """Disconnect a connection the server closed (EOF, reset) or with unread data; the next
    write reconnects. (redis-py >= 8 raises ConnectionError for EOF without disconnecting.)"""
    try:
        stale = await _can_read(conn)
    except RedisConnectionError:
        stale = True
    if stale:
        await conn.disconnect(nowait=True)


def _closed_under(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection was closed or reset (not that it timed out)."""
    return not isinstance(exc, (TimeoutError, RedisTimeoutError, asyncio.TimeoutError))


def _retry_on_cluster(exc: BaseException, command: Sequence[Any]) -> bool:
    """Whether a cluster command that lost its connection (not while connecting, not by a
    timeout) is sent once more: redis-py reconnects (and re-learns the slots) for it."""
    return _closed_under(exc) and not _while_connecting(exc) and repeatable(command)


def _while_connecting(exc: BaseException) -> bool:
    """Whether redis-py raised ``exc`` while connecting, for the paths where redis-py
    connects on its own (the cluster client): a refused or unresolvable address under its
    ConnectionError, or its connect timeout ("Timeout connecting to server")."""
    context = exc.__cause__ or exc.__context__
    if isinstance(exc, OSError) or isinstance(context, OSError):
        errors = (ConnectionRefusedError, socket.gaierror)
        return isinstance(exc, errors) or isinstance(context, errors)
    return isinstance(exc, RedisTimeoutError) and "connecting" in str(exc)


def _shared_context_ssl_class() -> type[SSLConnection]:
    """An SSLConnection class whose instances share one SSL context.

    redis-py builds an ``ssl.SSLContext`` per connection (the system CA store,
    the CA file, the client certificate: tens of ms of CPU each); this class is
    made per client, so its connections load them once.
    """

    class SharedContextSSLConnection(SSLConnection):
        shared: ClassVar[Any] = None

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            cls = type(self)
            if cls.shared is None:
                cls.shared = self.ssl_context
            else:
                self.ssl_context = cls.shared

    return SharedContextSSLConnection


def _raw(response: Any, **options: Any) -> Any:
    return response


def one_line(text: str) -> str:
    """``text`` masked (secrets, URL passwords) and folded onto one line."""
    return " ".join(mask(text).split())


def connection_kwargs(
    settings: RedisCacheSettings, endpoint: Endpoint, *, per_read_timeout: bool
) -> dict[str, Any]:
    """Keyword arguments of redis-py connections (and of ``RedisCluster``), timeouts explicit.

    ``per_read_timeout``: redis-py times each write and read (the cluster client);
    otherwise the caller times each command as a whole (the standalone pool).
    """
    kwargs: dict[str, Any] = {
        "username": endpoint.username,
        "password": endpoint.password,
        "socket_timeout": settings.socket_timeout_ms / 1000 if per_read_timeout else None,
        "socket_connect_timeout": settings.connect_timeout_ms / 1000,
        "socket_keepalive": True,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
        "protocol": 2,
        "client_name": settings.client_name,
    }
    if endpoint.tls:
        kwargs.update(
            ssl_ca_certs=settings.ssl_ca_certs,
            ssl_certfile=settings.ssl_certfile,
            ssl_keyfile=settings.ssl_keyfile,
            ssl_cert_reqs=settings.ssl_cert_reqs,
            # No verification means no name to check (redis-py < 6 would refuse the pair).
            ssl_check_hostname=settings.ssl_check_hostname and settings.ssl_cert_reqs != "none",
        )
    return kwargs


def _release(node: Any, conn: Any) -> None:
    """Give a connection back to a cluster node's pool (``ClusterNode.release`` since redis-py 6.2)."""
    release = getattr(node, "release", None)
    if release is not None:
        release(conn)
    else:
        node._free.append(conn)


async def exchange(conn: Any, commands: Sequence[tuple[Any, ...]], transaction: bool) -> list[Any]:
    """Send ``commands`` in one write on ``conn`` and read every reply (errors in place).

    With ``transaction`` they are wrapped in MULTI/EXEC and the replies are
    EXEC's; when Redis refused to queue one (EXECABORT), nothing ran and every
    command's result is an error.
    """
    if conn.is_connected:
        await _drop_if_stale(conn)
    sent: Sequence[tuple[Any, ...]] = (
        [("MULTI",), *commands, ("EXEC",)] if transaction else commands
    )
    await conn.send_packed_command(conn.pack_commands(sent))
    replies: list[Any] = []
    for _ in sent:
        try:
            replies.append(await conn.read_response())
        except ResponseError as exc:
            replies.append(exc)
    if not transaction:
        return replies
    outcome = replies[-1]
    if isinstance(outcome, Exception):  # EXECABORT: nothing ran
        return [r if isinstance(r, Exception) else outcome for r in replies[1:-1]]
    if outcome is None:  # pragma: no cover - only after a WATCH, which is never sent
        raise BackendError("the transaction was aborted by the server (EXEC returned nil)")
    return list(outcome)


class _Backend:
    """What both backends share: the gate, the labels, the error messages."""

    mode = ""
    #: redis-py times each write and read (else each command is timed as a whole here).
    per_read_timeout = False

    def __init__(self, settings: RedisCacheSettings, endpoint: Endpoint) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self.address = endpoint.address
        self.label = "redis_cache"
        self.gate = SlotGate(settings.pool_max, settings.pool_timeout_ms / 1000)
        self.timeout_s = settings.socket_timeout_ms / 1000
        self._kwargs = connection_kwargs(settings, endpoint, per_read_timeout=self.per_read_timeout)
        self._connection_class: Any = _shared_context_ssl_class() if endpoint.tls else Connection

    def failure(
        self,
        command: Any,
        exc: BaseException,
        address: str | None = None,
        *,
        connecting: bool | None = None,
    ) -> BackendError:
        """A one-line, masked BackendError for a failed command, with its fields.

        ``connecting``: whether the failure happened while (re)connecting; ``None``
        when the caller cannot tell (redis-py's cluster client connects on its own).
        """
        where = address or self.address
        name = command.decode() if isinstance(command, bytes) else str(command)
        fields: dict[str, Any] = {"backend": self.label, "operation": name, "address": where}
        if isinstance(exc, GateTimeout):
            gate = self.gate
            return BackendError(
                f"{self.label}: no Redis connection came free for {self.settings.pool_timeout_ms} ms "
                f"(pool_timeout_ms; all {gate.limit} of pool_max in use, {gate.queued()} waiting)",
                failure=Failure.BUSY,
                **fields,
            )
        if isinstance(exc, GateClosed):
            return BackendError(
                f"{self.label}: the Redis cache client is closed", failure=Failure.CLOSED, **fields
            )
        detail = str(exc)
        if connecting is None:
            connecting = _while_connecting(exc)
        timed_out = isinstance(exc, (RedisTimeoutError, asyncio.TimeoutError, TimeoutError))
        if connecting:
            kind = Failure.UNREACHABLE
            if isinstance(exc, RedisTimeoutError):  # redis-py's own connect timeout
                detail = (
                    f"{detail} within {self.settings.connect_timeout_ms} ms (connect_timeout_ms)"
                )
            elif timed_out:  # the command's timer ran out while connecting
                detail = (
                    f"no connection within {self.settings.socket_timeout_ms} ms (socket_timeout_ms)"
                )
        elif timed_out:
            kind = Failure.TIMEOUT
            detail = (
                f"{detail or 'no reply'} within {self.settings.socket_timeout_ms} ms "
                "(socket_timeout_ms)"
            )
        elif isinstance(exc, LOST_CONNECTION):
            kind = Failure.DISCONNECTED
        else:  # an answer it could not use: an error reply, "cluster mode is not enabled"...
            kind = Failure.REFUSED
        if not detail:
            detail = type(exc).__name__
        if connecting and not timed_out:
            detail = f"cannot connect: {detail}"
        return BackendError(
            one_line(f"{self.label}: {name} on Redis {where} failed: {detail}"),
            failure=kind,
            **fields,
        )

    def new_connection(self, host: str | None = None, port: int | None = None) -> Any:
        """An unconnected redis-py connection outside the pool (pub/sub)."""
        kwargs = dict(self._kwargs)
        kwargs.update(
            host=host or self.endpoint.host,
            port=port or self.endpoint.port,
            db=self.endpoint.db,
        )
        return self._connection_class(**kwargs)

    def stats(self) -> dict[str, Any]:
        return {
            "in_use": self.gate.in_use,
            "waiting": self.gate.queued(),
            "pool_max": self.gate.limit,
        }


class StandaloneBackend(_Backend):
    """One Redis server through this module's bounded pool of redis-py connections."""

    mode = "standalone"

    def __init__(self, settings: RedisCacheSettings, endpoint: Endpoint) -> None:
        super().__init__(settings, endpoint)
        self._idle: list[Any] = []
        self._all: list[Any] = []
        #: Connections with replies still to read (commands abandoned mid-flight) -> how many.
        self._pending: dict[Any, int] = {}
        self._connecting = asyncio.Semaphore(CONNECTS_AT_ONCE)

    def _new(self) -> Any:
        conn = self._connection_class(
            host=self.endpoint.host, port=self.endpoint.port, db=self.endpoint.db, **self._kwargs
        )
        self._all.append(conn)
        return conn

    async def open(self, connect: bool) -> None:
        """Open ``pool_min`` connections now, unless ``connect`` is false.

        One after the other, each within ``connect_timeout_ms + socket_timeout_ms``:
        startup is not the latency-critical path, and TLS handshakes (and the
        certificate loading redis-py does per connection) are CPU-bound, so
        opening them all at once could miss a timeout on a busy machine. The
        first failure (refused, timed out, bad credentials, bad certificate)
        ends it with a BackendError.
        """
        if not connect:
            return
        budget = (self.settings.connect_timeout_ms + self.settings.socket_timeout_ms) / 1000
        for _ in range(self.settings.pool_min):
            conn = self._new()
            try:
                async with Deadline(budget):
                    await conn.connect()
            except BaseException as exc:
                await self.close()
                if isinstance(exc, TRANSPORT_ERRORS):
                    raise self.failure("connect", exc, connecting=True) from None
                raise
            self._idle.append(conn)

    async def close(self) -> None:
        self.gate.close()
        conns, self._all, self._idle = self._all, [], []
        self._pending.clear()
        await asyncio.gather(*(c.disconnect() for c in conns), return_exceptions=True)

    async def call(self, *args: Any) -> Any:
        """One command, its raw reply. The hot path: keep it short."""
        gate = self.gate
        if gate.free and not gate.waiters:
            gate.free -= 1
        else:
            try:
                await gate.wait()
            except (GateTimeout, GateClosed) as exc:
                raise self.failure(args[0], exc) from None
        idle = self._idle
        conn = idle.pop() if idle else self._new()
        sent = False
        connecting = False
        try:
            reused = await self._ready(conn)
            async with Deadline(self.timeout_s):
                if not reused:
                    connecting = True
                    await self._connect(conn)
                    connecting = False
                try:
                    await conn.send_command(*args)
                    sent = True
                    reply = await conn.read_response(disconnect_on_error=_DISCONNECT_ON_ERROR)
                except LOST_CONNECTION as exc:
                    if not (reused and _closed_under(exc) and repeatable(args)):
                        raise
                    # A pooled connection the server had closed (a restart) without the
                    # close having arrived before the look in _ready: once more, fresh.
                    await self._discard(conn)
                    sent = False
                    connecting = True
                    await self._connect(conn)
                    connecting = False
                    await conn.send_command(*args)
                    sent = True
                    reply = await conn.read_response(disconnect_on_error=_DISCONNECT_ON_ERROR)
            gate.served += 1
            return reply
        except ResponseError:
            gate.served += 1  # an error reply is a completed command
            raise
        except DataError:
            raise
        except asyncio.CancelledError:
            # Abandoned by the caller (a time budget) after the command went out: keep
            # the connection and read the reply before its next use (no reconnect storm).
            self._abandoned(conn, sent)
            raise
        except TRANSPORT_ERRORS as exc:
            await self._discard(conn)
            raise self.failure(args[0], exc, connecting=connecting) from None
        finally:
            idle.append(conn)
            gate.leave()

    async def _ready(self, conn: Any) -> bool:
        """Make a pooled ``conn`` fit for a command: read what abandoned commands left,
        drop it if the server closed it. True when it is still connected (reused).

        Outside the command's Deadline: the look for a close yields to the loop, and a
        busy loop's pause there is not the server's time (the command is not sent yet)."""
        if not conn.is_connected:
            return False
        if self._pending and conn in self._pending:
            async with Deadline(self.timeout_s):
                await self._drain(conn)
        await _drop_if_stale(conn)
        return bool(conn.is_connected)

    async def _connect(self, conn: Any) -> None:
        """(Re)connect, at most ``CONNECTS_AT_ONCE`` at a time: a connection costs about a
        millisecond of CPU (more with TLS), so a burst of callers on a cold pool would
        otherwise make every connect of the burst slow enough to miss its timeout."""
        self._pending.pop(conn, None)
        async with self._connecting:
            await conn.connect()

    def _abandoned(self, conn: Any, sent: bool) -> None:
        # Without hiredis the read disconnected the connection itself (not resumable).
        if sent and _RESUMABLE_READS and conn.is_connected:
            self._pending[conn] = self._pending.get(conn, 0) + 1

    async def _drain(self, conn: Any) -> None:
        """Read and drop the replies of commands abandoned on ``conn``."""
        pending = self._pending
        while pending.get(conn):
            try:
                await conn.read_response(disconnect_on_error=False)
            except ResponseError:
                pass
            pending[conn] -= 1
        pending.pop(conn, None)

    async def _discard(self, conn: Any) -> None:
        """Disconnect ``conn`` after a failure (it reconnects on its next use)."""
        self._pending.pop(conn, None)
        try:
            await conn.disconnect(nowait=True)
        except Exception:
            pass

    async def pipeline(self, commands: Sequence[tuple[Any, ...]], transaction: bool) -> list[Any]:
        """Raw replies of ``commands`` sent in one round trip on one connection."""
        gate = self.gate
        if gate.free and not gate.waiters:
            gate.free -= 1
        else:
            try:
                await gate.wait()
            except (GateTimeout, GateClosed) as exc:
                raise self.failure("pipeline", exc) from None
        idle = self._idle
        conn = idle.pop() if idle else self._new()
        connecting = False
        try:
            reused = await self._ready(conn)
            async with Deadline(self.timeout_s):
                if not reused:
                    connecting = True
                    await self._connect(conn)
                    connecting = False
                try:
                    replies = await exchange(conn, commands, transaction)
                except LOST_CONNECTION as exc:
                    if not (reused and _closed_under(exc) and all(map(repeatable, commands))):
                        raise
                    await self._discard(conn)
                    connecting = True
                    await self._connect(conn)
                    connecting = False
                    replies = await exchange(conn, commands, transaction)
            gate.served += 1
            return replies
        except (ResponseError, DataError, BackendError):
            raise
        except TRANSPORT_ERRORS as exc:
            await self._discard(conn)
            name = "MULTI/EXEC" if transaction else "pipeline"
            raise self.failure(name, exc, connecting=connecting) from None
        finally:
            idle.append(conn)
            gate.leave()

    def slot_groups(self, keys: Sequence[str]) -> list[list[str]]:
        """Keys that may share one multi-key command (all of them, on one server)."""
        return [list(keys)] if keys else []

    def shard_of(self, key: str) -> str | None:
        return None  # one server: one shard

    def shards(self) -> list[str]:
        return []

    async def delete(self, keys: Sequence[str]) -> int:
        return int(await self.call("DEL", *keys))

    async def mget(self, keys: Sequence[str]) -> list[Any]:
        return list(await self.call("MGET", *keys))

    async def publish(self, channel: str, message: bytes | str) -> int:
        return int(await self.call("PUBLISH", channel, message))

    async def scan(self, pattern: str, count: int) -> AsyncIterator[bytes]:
        cursor: Any = 0
        while True:
            cursor, keys = await self.call("SCAN", cursor, "MATCH", pattern, "COUNT", count)
            for key in keys:
                yield key
            if int(cursor) == 0:
                return

    def subscriber_connection(self, channel: str, attempt: int) -> Any:
        return self.new_connection()

    async def server_info(self) -> dict[str, Any]:
        raw = await self.call("INFO", "server")
        info = parse_info(raw)
        return {
            "version": info.get("redis_version", ""),
            "server_mode": info.get("redis_mode", ""),
        }

    async def ping(self) -> None:
        await self.call("PING")

    def stats(self) -> dict[str, Any]:
        return {
            **super().stats(),
            "connections": len(self._all),
            "connected": sum(1 for conn in self._all if conn.is_connected),
        }


class ClusterBackend(_Backend):
    """A Redis Cluster through redis-py's cluster client (slots, MOVED/ASK, topology).

    Multi-key commands are split by hash slot (``DEL``/``MGET`` of keys in
    several slots become one command per slot, run concurrently); transactions
    must keep their keys in one slot (hash tags) and run as MULTI/EXEC on the
    slot's master; ``SCAN`` runs on every master to completion.
    """

    mode = "cluster"
    per_read_timeout = True
    #: While a node fails, how often the slot map is re-learned (see :meth:`_watch_topology`).
    topology_watch_interval_s = 0.25

    def __init__(self, settings: RedisCacheSettings, endpoint: Endpoint) -> None:
        super().__init__(settings, endpoint)
        self._watch: asyncio.Task[None] | None = None
        kwargs: dict[str, Any] = {
            key: value for key, value in self._kwargs.items() if not key.startswith("ssl_")
        }
        if endpoint.tls:
            kwargs["ssl"] = True
            kwargs.update(
                {key: value for key, value in self._kwargs.items() if key.startswith("ssl_")}
            )
        kwargs.update(
            startup_nodes=[ClusterNode(host, port) for host, port in settings.startup_nodes()],
            max_connections=settings.pool_max,
        )
        if settings.read_from_replicas:
            try:  # redis-py >= 5.3
                from redis.cluster import LoadBalancingStrategy

                kwargs["load_balancing_strategy"] = LoadBalancingStrategy.ROUND_ROBIN
            except ImportError:  # pragma: no cover
                kwargs["read_from_replicas"] = True
        accepted = inspect.signature(RedisCluster.__init__).parameters
        self.cluster: Any = RedisCluster(**{k: v for k, v in kwargs.items() if k in accepted})
        for command in RAW_COMMANDS:
            self.cluster.set_response_callback(command, _raw)
        self.address = "Cluster " + ",".join(f"{h}:{p}" for h, p in settings.startup_nodes())

    async def open(self, connect: bool) -> None:
        """Learn the topology (``CLUSTER SLOTS``) and open ``pool_min`` connections to each
        master now (one after the other), unless ``connect`` is false."""
        if not connect:
            return
        await self._topology()
        budget = (self.settings.connect_timeout_ms + self.settings.socket_timeout_ms) / 1000
        for node in self.cluster.get_primaries():
            conns = [node.acquire_connection() for _ in range(self.settings.pool_min)]
            try:
                for conn in conns:
                    async with Deadline(budget):
                        await conn.connect()
            except TRANSPORT_ERRORS as exc:
                await self.close()
                raise self.failure("connect", exc, node.name, connecting=True) from None
            finally:
                for conn in conns:
                    _release(node, conn)

    async def _topology(self) -> None:
        """Make sure the slot map is known (a no-op once it is; redis-py refreshes it after errors)."""
        try:
            await self.cluster.initialize()
        except TRANSPORT_ERRORS as exc:
            raise self.failure("CLUSTER SLOTS", exc) from None

    async def close(self) -> None:
        self.gate.close()
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
        try:
            await self.cluster.aclose()
        except TRANSPORT_ERRORS:
            pass

    # -- shards and the topology watch ---------------------------------------------------------------
    def shard_of(self, key: str) -> str | None:
        """The master of ``key``'s slot in the current slot map (no I/O), None if unknown."""
        nodes = self.cluster.nodes_manager.slots_cache.get(key_slot(key.encode()))
        return nodes[0].name if nodes else None

    def shards(self) -> list[str]:
        return [node.name for node in self.cluster.get_primaries()]

    def failure(
        self,
        command: Any,
        exc: BaseException,
        address: str | None = None,
        *,
        connecting: bool | None = None,
    ) -> BackendError:
        error = super().failure(command, exc, address, connecting=connecting)
        if error.failure in _NODE_TROUBLE:
            self.node_trouble()
        return error

    def node_trouble(self) -> None:
        """A node timed out, refused or dropped a connection: watch the topology (once)."""
        if self._watch is None and not self.gate.closed:
            self._watch = asyncio.get_running_loop().create_task(self._watch_topology())

    async def _watch_topology(self) -> None:
        """Re-learn the slot map every ``topology_watch_interval_s`` until every master in it
        answers PING.

        redis-py re-learns the slot map only after a command failed, but once the cache
        manager's breaker for a failing master opens, no command goes there any more: the
        map would keep naming the dead master for as long as the breaker waits, although
        its replica took over seconds before. With this watch the slots map to the
        promoted replica within one interval of the failover (its breaker is new), and a
        master that comes back ends the watch.
        """
        budget = (self.settings.connect_timeout_ms + self.settings.socket_timeout_ms) / 1000
        try:
            while not self.gate.closed:
                await asyncio.sleep(self.topology_watch_interval_s)
                try:
                    async with Deadline(budget * 4):
                        await self.cluster.nodes_manager.initialize()
                except TRANSPORT_ERRORS:
                    continue  # no node answered (in time): the current map keeps serving
                if await self._masters_answer(budget):
                    return
        finally:
            self._watch = None

    async def _masters_answer(self, budget: float) -> bool:
        async def answers(node: Any) -> bool:
            try:
                async with Deadline(budget):
                    await node.execute_command("PING")
            except TRANSPORT_ERRORS:
                return False
            return True

        primaries = self.cluster.get_primaries()
        return bool(primaries) and all(await asyncio.gather(*map(answers, primaries)))

    async def _enter(self, command: Any) -> None:
        try:
            await self.gate.wait()
        except (GateTimeout, GateClosed) as exc:
            raise self.failure(command, exc) from None

    async def call(self, *args: Any) -> Any:
        gate = self.gate
        if gate.free and not gate.waiters:
            gate.free -= 1
        else:
            await self._enter(args[0])
        try:
            try:
                reply = await self.cluster.execute_command(*args)
            except LOST_CONNECTION as exc:
                if not _retry_on_cluster(exc, args):
                    raise
                # redis-py dropped the node's connection (and the slot map): once more.
                reply = await self.cluster.execute_command(*args)
            gate.served += 1
            return reply
        except ResponseError:
            gate.served += 1
            raise
        except DataError:
            raise
        except TRANSPORT_ERRORS as exc:
            raise self.failure(args[0], exc) from None
        finally:
            gate.leave()

    async def call_on(self, node: Any, *args: Any) -> Any:
        """One command on one node (no redirection, no result merging)."""
        gate = self.gate
        if gate.free and not gate.waiters:
            gate.free -= 1
        else:
            await self._enter(args[0])
        try:
            reply = await node.execute_command(*args)
            gate.served += 1
            return reply
        except ResponseError:
            gate.served += 1
            raise
        except DataError:
            raise
        except TRANSPORT_ERRORS as exc:
            raise self.failure(args[0], exc, node.name) from None
        finally:
            gate.leave()

    def slot_groups(self, keys: Sequence[str]) -> list[list[str]]:
        """Keys grouped by hash slot (a multi-key command must stay within one)."""
        groups: dict[int, list[str]] = {}
        keyslot = self.cluster.keyslot
        for key in keys:
            groups.setdefault(keyslot(key), []).append(key)
        return list(groups.values())

    async def delete(self, keys: Sequence[str]) -> int:
        groups = self.slot_groups(keys)
        if len(groups) == 1:
            return int(await self.call("DEL", *groups[0]))
        counts = await asyncio.gather(*(self.call("DEL", *group) for group in groups))
        return sum(int(count) for count in counts)

    async def mget(self, keys: Sequence[str]) -> list[Any]:
        groups = self.slot_groups(list(dict.fromkeys(keys)))
        replies = await asyncio.gather(*(self.call("MGET", *group) for group in groups))
        values: dict[str, Any] = {}
        for group, reply in zip(groups, replies, strict=True):
            values.update(zip(group, reply, strict=True))
        return [values[key] for key in keys]

    def _node_for(self, key: str) -> Any:
        try:
            return self.cluster.get_node_from_key(key)
        except TRANSPORT_ERRORS as exc:
            raise self.failure("CLUSTER SLOTS", exc) from None

    async def publish(self, channel: str, message: bytes | str) -> int:
        # PUBLISH reaches the subscribers of every node (the cluster bus relays
        # it), but its count covers only the node it was sent to: send it to the
        # master of the channel's slot, where this client's subscribers listen.
        gate = self.gate
        if gate.free and not gate.waiters:
            gate.free -= 1
        else:
            await self._enter("PUBLISH")
        try:
            await self._topology()
            node = self._node_for(channel)
            try:
                reply = await self.cluster.execute_command(
                    "PUBLISH", channel, message, target_nodes=node
                )
            except LOST_CONNECTION as exc:
                if not _retry_on_cluster(exc, ("PUBLISH",)):
                    raise
                await self._topology()
                node = self._node_for(channel)
                reply = await self.cluster.execute_command(
                    "PUBLISH", channel, message, target_nodes=node
                )
            gate.served += 1
            return int(reply)
        except ResponseError:
            gate.served += 1
            raise
        except (DataError, BackendError):
            raise
        except TRANSPORT_ERRORS as exc:
            raise self.failure("PUBLISH", exc) from None
        finally:
            gate.leave()

    async def scan(self, pattern: str, count: int) -> AsyncIterator[bytes]:
        await self._topology()
        for node in self.cluster.get_primaries():
            cursor: Any = 0
            while True:
                cursor, keys = await self.call_on(
                    node, "SCAN", cursor, "MATCH", pattern, "COUNT", count
                )
                for key in keys:
                    yield key
                if int(cursor) == 0:
                    break

    async def pipeline(self, commands: Sequence[tuple[Any, ...]], transaction: bool) -> list[Any]:
        if transaction:
            return await self._transaction(commands)
        gate = self.gate
        if gate.free and not gate.waiters:
            gate.free -= 1
        else:
            await self._enter("pipeline")
        try:
            pipe = self.cluster.pipeline(transaction=False)
            for args in commands:
                pipe.execute_command(*args)
            replies = list(await pipe.execute(raise_on_error=False))
            gate.served += 1
            if any(isinstance(reply, TRANSPORT_ERRORS) for reply in replies):
                self.node_trouble()  # a node failed its part of the pipeline
            return replies
        except (ResponseError, DataError):
            raise
        except TRANSPORT_ERRORS as exc:
            raise self.failure("pipeline", exc) from None
        finally:
            gate.leave()

    async def _transaction(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        keys = [key for args in commands for key in _keys_of(args)]
        slots: dict[int, str] = {}
        for key in keys:
            slots.setdefault(self.cluster.keyslot(key), key)
        if len(slots) > 1:
            (slot_a, key_a), (slot_b, key_b) = list(slots.items())[:2]
            raise NotSupportedError(
                f"{self.label}: a transaction on a Redis Cluster must keep its keys in one hash "
                f"slot, but {key_a!r} is in slot {slot_a} and {key_b!r} in slot {slot_b}; give "
                "the keys a common hash tag (the part in braces, e.g. 'book:{005930}:bid') or "
                "use transaction=False"
            )
        if not keys:
            return []
        await self._topology()
        gate = self.gate
        if gate.free and not gate.waiters:
            gate.free -= 1
        else:
            await self._enter("MULTI/EXEC")
        node: Any = None
        try:
            node = self._node_for(keys[0])
            conn = node.acquire_connection()
            try:
                replies = await exchange(conn, commands, transaction=True)
            finally:
                _release(node, conn)
            gate.served += 1
        except (DataError, BackendError):
            raise
        except ResponseError as exc:
            raise self.failure("MULTI/EXEC", exc, getattr(node, "name", None)) from None
        except TRANSPORT_ERRORS as exc:
            raise self.failure("MULTI/EXEC", exc, getattr(node, "name", None)) from None
        finally:
            gate.leave()
        return replies

    def subscriber_connection(self, channel: str, attempt: int) -> Any:
        """A connection to the master of the channel's slot, then to the other nodes in turn."""
        nodes: list[Any] = []
        try:
            nodes.append(self.cluster.get_node_from_key(channel))
        except TRANSPORT_ERRORS:
            pass
        nodes += [node for node in self.cluster.get_nodes() if node not in nodes]
        if not nodes:
            return self.new_connection()
        node = nodes[attempt % len(nodes)]
        return self.new_connection(node.host, int(node.port))

    async def server_info(self) -> dict[str, Any]:
        await self._topology()
        primaries = self.cluster.get_primaries()
        info = parse_info(await self.call_on(primaries[0], "INFO", "server")) if primaries else {}
        return {
            "version": info.get("redis_version", ""),
            "server_mode": info.get("redis_mode", ""),
            "masters": len(primaries),
            "nodes": len(self.cluster.get_nodes()),
        }

    async def ping(self) -> None:
        await asyncio.gather(*(self.call_on(node, "PING") for node in self.cluster.get_primaries()))


#: The failures that say a node is in trouble (as opposed to an error reply, a busy pool).
_NODE_TROUBLE = frozenset({Failure.TIMEOUT, Failure.DISCONNECTED, Failure.UNREACHABLE})


def _keys_of(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """The keys of one of the client's commands (``DEL``/``MGET`` take several)."""
    if args[0] in ("DEL", "MGET"):
        return args[1:]
    return args[1:2]


def parse_info(raw: Any) -> dict[str, str]:
    """An ``INFO`` reply (raw bytes, or already parsed by redis-py) as a dict of strings."""
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    info: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and not key.startswith("#"):
            info[key.strip()] = value.strip()
    return info


def make_backend(settings: RedisCacheSettings) -> StandaloneBackend | ClusterBackend:
    endpoint = settings.endpoint()
    if settings.cluster:
        return ClusterBackend(settings, endpoint)
    return StandaloneBackend(settings, endpoint)
