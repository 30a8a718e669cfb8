"""Subscriptions: one dedicated connection per subscribed channel, read by a background task.

* Messages are handed to the handler in order, on the event loop.
* A quiet connection is probed: after ``health_check_interval_s`` without
  traffic a PING is sent; no answer within another interval (a frozen server,
  a dead network path) counts as a loss, as does a closed or reset connection.
* On a loss the handler gets ``None`` (invalidations may have been missed),
  the task resubscribes with a backoff of 50 ms doubling up to 2 s, and once
  subscribed again the handler gets ``None`` a second time: what a near cache
  stored while the channel was down may have missed invalidations too.
* On a Redis Cluster a PUBLISH reaches the subscribers of every node (the
  cluster bus relays it), so one connection to any node is enough; it goes to
  the master of the channel's hash slot first, then to the other nodes in turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from qts_data.interfaces import MessageHandler, Subscription
from qts_data_redis_cache.backends import (
    TRANSPORT_ERRORS,
    ClusterBackend,
    StandaloneBackend,
)
from qts_data_redis_cache.deadline import Deadline

__all__ = ["RedisSubscription"]

log = logging.getLogger("qts_data.redis_cache")

#: First wait before resubscribing after a loss, and the longest one (seconds).
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 2.0


async def _drop(conn: Any) -> None:
    with contextlib.suppress(Exception):
        await conn.disconnect(nowait=True)


class RedisSubscription(Subscription):
    """A live subscription to one channel (the name as sent, prefix included)."""

    def __init__(
        self,
        backend: StandaloneBackend | ClusterBackend,
        channel: str,
        handler: MessageHandler,
        interval_s: float,
        on_close: Callable[[RedisSubscription], None] | None = None,
    ) -> None:
        self.channel = channel
        self._backend = backend
        self._handler = handler
        self._interval = interval_s
        self._on_close = on_close
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        #: How many times the subscription was lost (and the handler told so).
        self.losses = 0

    @property
    def active(self) -> bool:
        """Subscribed right now (False while resubscribing after a loss, and after close)."""
        return self._conn is not None and not self._closed

    async def start(self) -> None:
        """Subscribe (raises BackendError when that fails), then listen in a background task."""
        self._conn = await self._subscribe(0)
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"redis_cache subscription {self.channel}"
        )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        conn, self._conn = self._conn, None
        if conn is not None:
            await _drop(conn)
        if self._on_close is not None:
            self._on_close(self)

    # -- internals ---------------------------------------------------------------------------------
    async def _subscribe(self, attempt: int) -> Any:
        """A new connection, subscribed: within ``connect_timeout_ms + 2 * socket_timeout_ms``."""
        settings = self._backend.settings
        budget = (settings.connect_timeout_ms + 2 * settings.socket_timeout_ms) / 1000
        conn = self._backend.subscriber_connection(self.channel, attempt)
        try:
            async with Deadline(budget):
                await conn.connect()
                await conn.send_command("SUBSCRIBE", self.channel)
                while (await conn.read_response())[0] != b"subscribe":
                    pass
            return conn
        except BaseException as exc:
            await _drop(conn)
            if isinstance(exc, TRANSPORT_ERRORS):
                address = f"{conn.host}:{conn.port}"
                raise self._backend.failure("SUBSCRIBE", exc, address) from None
            raise

    async def _listen(self, conn: Any) -> None:
        """Deliver messages until the connection is lost (returns or raises)."""
        interval = self._interval
        while True:
            reply = await conn.read_response(timeout=interval)
            if reply is None:  # quiet for a whole interval: is the server still there?
                async with Deadline(interval):
                    await conn.send_command("PING")
                reply = await conn.read_response(timeout=interval)
                if reply is None:
                    return
            if reply[0] == b"message":
                self._deliver(reply[2])

    async def _run(self) -> None:
        conn = self._conn
        while True:
            try:
                await self._listen(conn)
            except TRANSPORT_ERRORS:
                pass
            self._conn = None
            await _drop(conn)
            self.losses += 1
            self._deliver(None)
            conn = await self._resubscribe()
            self._conn = conn
            self._deliver(None)

    async def _resubscribe(self) -> Any:
        delay = RETRY_FIRST_S
        attempt = 1
        while True:
            await asyncio.sleep(delay)
            try:
                return await self._subscribe(attempt)
            except Exception:
                attempt += 1
                delay = min(delay * 2, RETRY_MAX_S)

    def _deliver(self, message: bytes | None) -> None:
        try:
            self._handler(message)
        except Exception:
            log.exception("redis_cache: the handler of channel %s failed", self.channel)
