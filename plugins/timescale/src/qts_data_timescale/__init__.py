"""qts-data-timescale: the PostgreSQL / TimescaleDB adapter (plugin ``timescale``).

Importing this module is cheap: the hook registers a factory and a settings
model; asyncpg and the adapter are imported when a stack builds the adapter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qts_data.plugins import BuildContext, Register, hookimpl
from qts_data_timescale.settings import TimescaleSettings

if TYPE_CHECKING:
    from qts_data_timescale.adapter import TimescaleAdapter

__version__ = "0.1.0"

#: The plugin's canonical name (its entry-point name) and its adapter's name.
PLUGIN = "timescale"

__all__ = ["PLUGIN", "TimescaleAdapter", "TimescaleSettings", "__version__"]


def make_adapter(settings: TimescaleSettings, ctx: BuildContext) -> TimescaleAdapter:
    from qts_data_timescale.adapter import TimescaleAdapter

    return TimescaleAdapter(settings)


@hookimpl
def qts_data_adapters(register: Register) -> None:
    register(
        PLUGIN,
        make_adapter,
        settings=TimescaleSettings,
        description="PostgreSQL with TimescaleDB where present (asyncpg): every kind of data, "
        "versioned schema, binary-COPY tick ingest, read replica",
    )


def __getattr__(name: str) -> Any:
    if name == "TimescaleAdapter":
        from qts_data_timescale.adapter import TimescaleAdapter

        return TimescaleAdapter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
