"""Helpers of the timescale plugin's tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qts_data_timescale.adapter import TimescaleAdapter

#: Every table of the schema, emptied between tests.
TABLES = (
    "positions, strategies, risk_configs, t_ledger_keys, t_ledger, tick_data, ohlcv_1d, "
    "ohlcv_bars, execution_logs, qts_outbox, qts_outbox_lease"
)
WASM_RUN = Path(
    os.environ.get(
        "QTS_TEST_TIMESCALEDB_WASM",
        Path(__file__).resolve().parents[3].parent / "shared" / "timescaledb-wasm" / "run",
    )
)


def make(dsn: str, **settings: Any) -> TimescaleAdapter:
    """An unopened adapter over ``dsn`` with a small pool."""
    settings.setdefault("pool_min_size", 1)
    settings.setdefault("pool_max_size", 4)
    return TimescaleAdapter(dsn=dsn, **settings)


async def migrated(dsn: str, **settings: Any) -> str:
    adapter = make(dsn, **settings)
    await adapter.open()
    try:
        await adapter.migrate()
    finally:
        await adapter.close()
    return dsn


class WasmEngine:
    """A TimescaleDB engine (PGlite + TimescaleDB, WebAssembly) on a loopback port.

    It serves one connection at a time and keeps one session for all of them, so
    adapters over it use a pool of one, no statement cache, and no COPY.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def adapter(self, **settings: Any) -> TimescaleAdapter:
        options: dict[str, Any] = {
            "pool_min_size": 1,
            "pool_max_size": 1,
            "pgbouncer": True,
            "ingest_method": "unnest",
            "close_timeout_s": 0.05,
            "sslmode": "disable",
        }
        options.update(settings)
        return TimescaleAdapter(dsn=self.dsn, **options)


Factory = Callable[[], TimescaleAdapter]
