"""The hook specifications: how a plugin registers the components it provides.

Each hook receives a ``register`` callback and calls it once per component:

.. code-block:: python

    from qts_data.plugins import hookimpl

    @hookimpl
    def qts_data_adapters(register):
        register("my_store", make_my_store, settings=MyStoreSettings)

``make_my_store(settings, ctx)`` is called only when a configured stack uses
the component, so a plugin imports its backend library (asyncpg, redis, ...)
inside the factory, never at module level. ``settings`` is a validated
instance of the pydantic model given at registration (importable without the
backend library); ``ctx`` is a :class:`~qts_data.plugins.registry.BuildContext`.

The component name is the plugin's canonical name (its entry-point name), or
``"<plugin>.<variant>"`` when one plugin provides several of one kind.

Hooks are called once per process, at discovery. They are never on the path
of a data operation.
"""

from __future__ import annotations

import pluggy

from qts_data.plugins.registry import Register

PROJECT = "qts_data"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def qts_data_adapters(register: Register) -> None:
    """Register data-source adapter factories (:class:`~qts_data.interfaces.DataSourceAdapter`).

    Implemented by store plugins (memory, timescale, sheets, ...) and by the core's
    compositions (``cached``, ``hybrid``). Called once, at plugin discovery.
    """


@hookspec
def qts_data_cache_clients(register: Register) -> None:
    """Register cache client factories (:class:`~qts_data.interfaces.CacheClient`).

    Implemented by cache plugins (memory, redis_cache). Called once, at plugin discovery.
    """


@hookspec
def qts_data_event_sinks(register: Register) -> None:
    """Register event sink factories (:class:`~qts_data.interfaces.EventSink`).

    Implemented by plugins that forward events (logging, memory, Redis Streams, brokers).
    Called once, at plugin discovery.
    """


@hookspec
def qts_data_safety_listeners(register: Register) -> None:
    """Register safety listener factories (:class:`~qts_data.interfaces.SafetyListener`).

    Implemented by plugins that react to safety-state changes. Called once, at plugin discovery.
    """


@hookspec
def qts_data_market_sources(register: Register) -> None:
    """Register upstream market-data source factories (:class:`~qts_data.interfaces.MarketDataSource`).

    Implemented by plugins that fetch candles from an exchange or vendor; the
    ``tiered`` composition asks them for what no tier holds. Called once, at plugin discovery.
    """


#: Hook name -> component kind it registers.
HOOK_KINDS = {
    "qts_data_adapters": "adapter",
    "qts_data_cache_clients": "cache",
    "qts_data_event_sinks": "sink",
    "qts_data_safety_listeners": "listener",
    "qts_data_market_sources": "source",
}
