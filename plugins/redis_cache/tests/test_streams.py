"""The Redis Streams event sink against the machine's Redis: the event-sink conformance suite
and the length cap (a whole stack publishing to it: tests/redis/test_event_stream.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import pytest
import redis.asyncio as aioredis

from qts_data.contracts import Event, Priority
from qts_data.testing import EventSinkConformance
from qts_data_redis_cache.settings import RedisStreamSettings
from qts_data_redis_cache.streams import RedisStreamSink


async def read_stream(url: str, key: str) -> list[Event]:
    raw = aioredis.Redis.from_url(url)
    try:
        entries = await raw.xrange(key)
    finally:
        await raw.aclose()
    events = []
    for _id, fields in entries:
        f = {k.decode(): v.decode() for k, v in fields.items()}
        events.append(
            Event(
                priority=Priority[f["priority"]],
                type=f["type"],
                source=f["source"],
                payload=json.loads(f["payload"]),
                key=f["key"] or None,
                time_ns=int(datetime.fromisoformat(f["time"]).timestamp() * 1e9),
                seq=int(f["seq"]),
            )
        )
    return events


class TestRedisStreamSink(EventSinkConformance):
    @pytest.fixture
    def make_event_sink(
        self, redis_url: str, redis_key_prefix: str
    ) -> Callable[[], RedisStreamSink]:
        return lambda: RedisStreamSink(RedisStreamSettings(url=redis_url, prefix=redis_key_prefix))

    async def delivered(self, sink: RedisStreamSink) -> list[Event]:  # type: ignore[override]
        return await read_stream(
            sink.settings.url.get_secret_value(), sink.client.prefix + sink.stream
        )


async def test_the_stream_is_capped(redis_url: str, redis_key_prefix: str) -> None:
    sink = RedisStreamSink(
        RedisStreamSettings(url=redis_url, prefix=redis_key_prefix, maxlen=50, approximate=False)
    )
    await sink.open()
    try:
        for batch in range(5):
            await sink.deliver(
                [
                    Event(priority=Priority.P3, type="tick", payload={"n": batch * 40 + i})
                    for i in range(40)
                ]
            )
        events = await read_stream(redis_url, sink.client.prefix + sink.stream)
        assert len(events) == 50
        assert [e.payload["n"] for e in events] == list(range(150, 200))
    finally:
        await sink.close()
