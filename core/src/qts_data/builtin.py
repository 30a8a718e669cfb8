"""The core's own plugin ``core``: the compositions, the logging sink and the synthetic market source. Always loaded."""

from __future__ import annotations

from qts_data.compositions.cached import CachedSettings, make_cached
from qts_data.compositions.hybrid import HybridSettings, make_hybrid
from qts_data.compositions.tiered import TieredSettings, make_tiered
from qts_data.events.logging_sink import LoggingSinkSettings, make_logging_sink
from qts_data.plugins import Register, hookimpl
from qts_data.sources.synthetic import SyntheticSourceSettings, make_synthetic_source


@hookimpl
def qts_data_adapters(register: Register) -> None:
    register(
        "cached", make_cached, settings=CachedSettings, description="an adapter fronted by a cache"
    )
    register(
        "hybrid",
        make_hybrid,
        settings=HybridSettings,
        description="Sheets and a database: SHEETS_ONLY / HYBRID / DB_ONLY",
    )
    register(
        "tiered",
        make_tiered,
        settings=TieredSettings,
        description="market data in tiers: memory, compressed disk, a store, an upstream source",
    )


@hookimpl
def qts_data_event_sinks(register: Register) -> None:
    register(
        "logging",
        make_logging_sink,
        settings=LoggingSinkSettings,
        description="events to the Python log",
    )


@hookimpl
def qts_data_market_sources(register: Register) -> None:
    register(
        "synthetic",
        make_synthetic_source,
        settings=SyntheticSourceSettings,
        description="reproducible candles for any symbol (demos, tests, benchmarks)",
    )
