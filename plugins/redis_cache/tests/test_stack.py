"""redis_cache in a stack composed by configuration, over the memory adapter (tox: redis_cache-memory)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qts_data import open_stack
from qts_data.contracts import HealthState

pytest.importorskip("qts_data_memory", reason="a stack needs a store: install qts-data-memory")

pytestmark = pytest.mark.asyncio

CONFIG = """
[stack]
adapter = "main"
cache = "hot"

[adapters.store]
type = "memory"

[adapters.main]
type = "cached"
adapter = "store"
cache = "hot"

[caches.hot]
type = "redis_cache"
url = "{url}"
prefix = "{prefix}"
pool_min = 2

[cache.ttl_ms]
position = 60000
"""


async def test_a_cached_stack_serves_positions_from_redis(
    tmp_path: Path, redis_url: str, redis_key_prefix: str
) -> None:
    path = tmp_path / "qts.toml"
    path.write_text(CONFIG.format(url=redis_url, prefix=redis_key_prefix))
    async with open_stack(path) as stack:
        await stack.adapter.update_position("005930", "10", "71000")
        for _ in range(5):
            position = await stack.adapter.fetch_position("005930")
            assert position is not None
            assert position.symbol == "005930"
        health = await stack.health()
        assert health.state is HealthState.HEALTHY
        hot = next(c for c in health.components if c.kind == "cache" and c.name == "hot")
        assert hot.type == "redis_cache"
        assert hot.status.state is HealthState.HEALTHY
        assert hot.status.details["mode"] == "standalone"
        client = stack.cache.client
        assert client is not None
        assert [key async for key in client.scan_iter("*")], "nothing was written to Redis"
