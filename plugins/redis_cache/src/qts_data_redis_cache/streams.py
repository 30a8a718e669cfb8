"""The ``redis_cache`` event sink: events appended to a Redis Stream (XADD with a length cap),
so that other processes and machines can consume them (XREAD / consumer groups).

Each event is one stream entry with the fields ``priority``, ``type``,
``source``, ``key``, ``time`` (ISO 8601), ``seq`` and ``payload`` (JSON). A
batch is sent in one round trip (a pipeline, no MULTI). The stream is capped
at ``maxlen`` entries (``~``: approximately, which Redis trims cheaply).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from qts_data.contracts import Event, HealthStatus
from qts_data.interfaces import EventSink
from qts_data_redis_cache.client import RedisCacheClient
from qts_data_redis_cache.settings import RedisStreamSettings


def entry_fields(event: Event) -> list[Any]:
    return [
        "priority", event.priority.name,
        "type", event.type,
        "source", event.source,
        "key", event.key or "",
        "time", event.time.isoformat(),
        "seq", str(event.seq),
        "payload", json.dumps(event.payload, default=str, separators=(",", ":")),
    ]  # fmt: skip


class RedisStreamSink(EventSink):
    """Appends events to the stream ``settings.stream`` (under the client's key prefix)."""

    def __init__(self, settings: RedisStreamSettings) -> None:
        self.settings = settings
        self.client = RedisCacheClient(settings.connection())
        self.stream = settings.stream
        self.appended = 0

    async def open(self) -> None:
        await self.client.open()

    async def close(self) -> None:
        await self.client.close()

    async def deliver(self, events: Sequence[Event]) -> None:
        if not events:
            return
        key = self.client.prefix + self.stream
        trim: list[Any] = [
            "MAXLEN",
            "~" if self.settings.approximate else "=",
            self.settings.maxlen,
        ]
        commands = [("XADD", key, *trim, "*", *entry_fields(event)) for event in events]
        await self.client._pipeline(commands, False)
        self.appended += len(events)

    async def health_check(self) -> HealthStatus:
        status = await self.client.health_check()
        return status.model_copy(
            update={
                "component": self.name or "redis_cache",
                "details": {**status.details, "stream": self.stream, "appended": self.appended},
            }
        )

    def describe(self) -> dict[str, Any]:
        return {**self.client.describe(), "stream": self.stream, "maxlen": self.settings.maxlen}
