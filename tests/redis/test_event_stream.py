"""A stack whose events go to a Redis Stream (the redis_cache sink) beside the memory adapter."""

from __future__ import annotations

import redis.asyncio as aioredis

from qts_data import open_stack
from qts_data.contracts import Priority, SafetyState


async def test_a_stack_publishes_safety_changes_to_the_stream(
    redis_url: str, redis_key_prefix: str
) -> None:
    config = {
        "stack": {"adapter": "db", "sinks": ["stream"]},
        "adapters": {"db": {"type": "memory"}},
        "sinks": {
            "stream": {
                "type": "redis_cache",
                "url": redis_url,
                "prefix": redis_key_prefix,
                "stream": "ev",
            }
        },
    }
    async with open_stack(config) as stack:
        await stack.safety.set_state(SafetyState.LOCKDOWN, "drill")
        assert await stack.events.drain(5)
    raw = aioredis.Redis.from_url(redis_url)
    try:
        entries = await raw.xrange(redis_key_prefix + "ev")
    finally:
        await raw.aclose()
    fields = [{k.decode(): v.decode() for k, v in f.items()} for _, f in entries]
    changed = [f for f in fields if f["type"] == "safety.changed"]
    assert changed and changed[0]["priority"] == Priority.P0.name
    assert '"current":"LOCKDOWN"' in changed[0]["payload"]
