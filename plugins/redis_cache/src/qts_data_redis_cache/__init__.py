"""qts-data-redis-cache: the Redis cache client (plugin ``redis_cache``), standalone and Cluster.

Importing this module is cheap and does not import ``redis``: the hook
registers a factory and a settings model; the client (and redis-py with it) is
imported when a stack builds one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qts_data.plugins import BuildContext, Register, hookimpl
from qts_data_redis_cache.settings import RedisCacheSettings, RedisStreamSettings

if TYPE_CHECKING:
    from qts_data_redis_cache.client import RedisCacheClient, RedisPipeline

__version__ = "0.1.0"

#: The plugin's canonical name (its entry-point name) and the name of its component.
PLUGIN = "redis_cache"

__all__ = [
    "PLUGIN",
    "RedisCacheClient",
    "RedisCacheSettings",
    "RedisPipeline",
    "__version__",
    "make_cache_client",
]

_PATH_FIELDS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")


def make_cache_client(settings: RedisCacheSettings, ctx: BuildContext) -> RedisCacheClient:
    """Build the client; TLS file paths are taken relative to the configuration file."""
    from qts_data_redis_cache.client import RedisCacheClient

    paths = {
        name: ctx.resolve_path(value)
        for name in _PATH_FIELDS
        if (value := getattr(settings, name)) is not None
    }
    if paths:
        settings = settings.model_copy(update=paths)
    return RedisCacheClient(settings)


def make_event_sink(settings: RedisStreamSettings, ctx: BuildContext) -> Any:
    """The Redis Streams event sink (imports redis only now)."""
    from qts_data_redis_cache.streams import RedisStreamSink

    return RedisStreamSink(settings)


@hookimpl
def qts_data_event_sinks(register: Register) -> None:
    register(
        PLUGIN,
        make_event_sink,
        settings=RedisStreamSettings,
        description="events appended to a Redis Stream (XADD, length-capped) for other processes",
    )


@hookimpl
def qts_data_cache_clients(register: Register) -> None:
    register(
        PLUGIN,
        make_cache_client,
        settings=RedisCacheSettings,
        description="Redis or Redis Cluster (redis.asyncio, hiredis): ms TTLs, pipelines, pub/sub",
    )


_LAZY = {
    "RedisCacheClient": "qts_data_redis_cache.client",
    "RedisPipeline": "qts_data_redis_cache.client",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
