"""The stack of ``qts-data demo --persist PATH``: tiered storage over a SQLite file.

* ``adapters.db``: the ``sqlite`` store at ``PATH`` (plugin qts-data-sqlite);
* ``adapters.market``: ``tiered`` over it, with the disk tier in ``PATH.cache/``
  and the ``synthetic`` source upstream (at the demo instruments' price levels);
* ``adapters.main``: ``cached`` over ``market`` with the memory cache ``hot``,
  like the embedded default, so the demo's risk loop runs as it always does.

A second run on the same ``PATH`` starts from what the first one stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qts_data.demo.market import DEFAULT_INSTRUMENTS
from qts_data.errors import PluginError
from qts_data.plugins.manager import PluginHost, get_plugin_host
from qts_data.plugins.registry import ComponentKind

SQLITE_PLUGIN = "sqlite"
SQLITE_PACKAGE = "qts-data-sqlite"


def disk_cache_path(path: str | Path) -> str:
    """The disk tier's folder next to the database: ``PATH.cache``."""
    return f"{Path(path).expanduser().resolve()}.cache"


def persistent_config(path: str | Path, *, seed: int = 7) -> dict[str, Any]:
    """The stack configuration (a mapping for ``open_stack``) of a persistent demo at ``path``."""
    database = Path(path).expanduser().resolve()
    return {
        "stack": {"adapter": "main", "cache": "hot"},
        "adapters": {
            "db": {"type": SQLITE_PLUGIN, "path": str(database)},
            "market": {
                "type": "tiered",
                "store": "db",
                "source": "exchange",
                "disk_path": disk_cache_path(database),
            },
            "main": {"type": "cached", "adapter": "market", "cache": "hot"},
        },
        "sources": {
            "exchange": {
                "type": "synthetic",
                "seed": seed,
                "prices": {i.symbol: str(i.price) for i in DEFAULT_INSTRUMENTS},
            }
        },
        "caches": {"hot": {"type": "memory"}},
    }


def require_sqlite(host: PluginHost | None = None) -> None:
    """Raise a one-line :class:`PluginError` naming the package when the sqlite plugin is missing."""
    host = host or get_plugin_host()
    try:
        host.spec(ComponentKind.ADAPTER, SQLITE_PLUGIN)
    except PluginError as exc:
        record = next((r for r in host.records if r.name == SQLITE_PLUGIN), None)
        if record is None:
            raise PluginError(
                f"demo --persist stores into SQLite, and the sqlite plugin is not installed: "
                f"pip install {SQLITE_PACKAGE} (from a clone of qts-data: pip install ./plugins/sqlite)"
            ) from None
        raise PluginError(f"demo --persist needs the sqlite plugin: {exc}") from None
