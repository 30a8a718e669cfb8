"""qts-data-memory: the in-memory adapter, cache client and event sink (plugin ``memory``).

Importing this module is cheap: the hooks register factories and settings
models only; the implementations are imported when a stack builds one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from qts_data.plugins import BuildContext, NoSettings, Register, Settings, hookimpl

if TYPE_CHECKING:
    from qts_data_memory.adapter import MemoryAdapter
    from qts_data_memory.cache import MemoryCacheClient, MemoryPipeline
    from qts_data_memory.sink import MemoryEventSink

__version__ = "0.1.0"

#: The plugin's canonical name (its entry-point name) and the name of each component.
PLUGIN = "memory"

__all__ = [
    "PLUGIN",
    "MemoryAdapter",
    "MemoryCacheClient",
    "MemoryCacheSettings",
    "MemoryEventSink",
    "MemoryPipeline",
    "MemorySinkSettings",
    "__version__",
]


class MemoryCacheSettings(Settings):
    """``[caches.NAME] plugin = "memory"``."""

    max_entries: int = Field(default=100_000, gt=0, description="keys held before LRU eviction")
    sweep_batch: int = Field(
        default=32, gt=0, description="most expired keys reclaimed per write by the active sweep"
    )


class MemorySinkSettings(Settings):
    """``[sinks.NAME] plugin = "memory"``."""

    capacity: int = Field(default=10_000, gt=0, description="events kept (a ring buffer)")


def make_adapter(settings: NoSettings, ctx: BuildContext) -> MemoryAdapter:
    from qts_data_memory.adapter import MemoryAdapter

    return MemoryAdapter()


def make_cache_client(settings: MemoryCacheSettings, ctx: BuildContext) -> MemoryCacheClient:
    from qts_data_memory.cache import MemoryCacheClient

    return MemoryCacheClient(settings.max_entries, sweep_batch=settings.sweep_batch)


def make_event_sink(settings: MemorySinkSettings, ctx: BuildContext) -> MemoryEventSink:
    from qts_data_memory.sink import MemoryEventSink

    return MemoryEventSink(settings.capacity)


@hookimpl
def qts_data_adapters(register: Register) -> None:
    register(
        PLUGIN,
        make_adapter,
        settings=NoSettings,
        description="in-process store of every kind of data (nothing persists)",
    )


@hookimpl
def qts_data_cache_clients(register: Register) -> None:
    register(
        PLUGIN,
        make_cache_client,
        settings=MemoryCacheSettings,
        description="in-process cache: millisecond TTLs, LRU eviction at max_entries",
    )


@hookimpl
def qts_data_event_sinks(register: Register) -> None:
    register(
        PLUGIN,
        make_event_sink,
        settings=MemorySinkSettings,
        description="keeps the last `capacity` events in memory",
    )


_LAZY = {
    "MemoryAdapter": "qts_data_memory.adapter",
    "MemoryCacheClient": "qts_data_memory.cache",
    "MemoryPipeline": "qts_data_memory.cache",
    "MemoryEventSink": "qts_data_memory.sink",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
