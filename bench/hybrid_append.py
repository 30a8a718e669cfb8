"""A ledger append through the hybrid composition in HYBRID against DB_ONLY, in the same run.

    python bench/hybrid_append.py [--appends 3000] [--dsn postgresql://postgres@127.0.0.1:5432/postgres]

Needs qts-data, qts-data-memory and qts-data-timescale, and a PostgreSQL server
(a database is created for the run and dropped after). The database is the
primary in every mode; in HYBRID each append also writes its outbox record and
the relay delivers it to the secondary (a memory adapter here) in the
background, which the append does not wait for. Two outboxes are measured:
``database`` (the record is inserted in the append's own PostgreSQL
transaction) and ``file`` (a local SQLite file written before the append).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import subprocess
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from qts_data import open_stack
from qts_data.contracts import LedgerEntry
from qts_data.interfaces import Migratable

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)


def psql(dsn: str, sql: str) -> None:
    subprocess.run(
        ["psql", dsn, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True, capture_output=True
    )


def config(mode: str, dsn: str, outbox: Path, where: str) -> dict[str, Any]:
    return {
        "stack": {"adapter": "main"},
        "adapters": {
            "legacy": {"type": "memory"},
            "db": {"type": "timescale", "dsn": dsn},
            "main": {
                "type": "hybrid",
                "sheets": "legacy",
                "db": "db",
                "mode": mode,
                "primary": "db",
                "outbox_path": str(outbox),
                "outbox": where,
            },
        },
    }


async def run(variant: str, dsn: str, outbox: Path, start: int, n: int) -> list[float]:
    mode, _, where = variant.partition(":")
    async with open_stack(config(mode, dsn, outbox, where or "auto")) as stack:
        db = stack.components[next(k for k in stack.components if k[1] == "db")]
        if isinstance(db, Migratable):
            await db.migrate()
        samples = []
        for i in range(start, start + n):
            entry = LedgerEntry(
                timestamp=T0 + timedelta(seconds=i),
                symbol="005930",
                side="BUY",
                qty="1",
                price="71000",
                order_id=f"{variant}-{i}",
            )
            began = time.perf_counter()
            await stack.adapter.append_ledger(entry)
            samples.append(time.perf_counter() - began)
        if mode == "HYBRID":
            await stack.adapter.flush(60)  # type: ignore[attr-defined]
        return samples


VARIANTS = ("DB_ONLY", "HYBRID:database", "HYBRID:file")


async def bench(dsn: str, appends: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="qts-bench-hybrid-"))
    results: dict[str, list[float]] = {v: [] for v in VARIANTS}
    await run("DB_ONLY", dsn, folder / "outbox.sqlite", 0, 200)  # warm-up and migration
    offset = 1000
    for _ in range(3):  # interleaved rounds
        for variant in VARIANTS:
            results[variant] += await run(
                variant, dsn, folder / "outbox.sqlite", offset, appends // 3
            )
            offset += appends
    med = {v: statistics.median(s) for v, s in results.items()}
    p99 = {v: statistics.quantiles(s, n=100)[98] for v, s in results.items()}
    for variant in VARIANTS:
        print(
            f"{variant:<16} median {med[variant] * 1e6:8.0f} µs  p99 {p99[variant] * 1e6:8.0f} µs"
        )
    for variant in VARIANTS[1:]:
        print(
            f"{variant} / DB_ONLY: median {med[variant] / med['DB_ONLY']:.2f}x, "
            f"p99 {p99[variant] / p99['DB_ONLY']:.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--appends", type=int, default=3000)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    name = f"qts_bench_{secrets.token_hex(6)}"
    psql(args.dsn, f"CREATE DATABASE {name}")
    try:
        asyncio.run(bench(args.dsn.rsplit("/", 1)[0] + f"/{name}", args.appends))
    finally:
        psql(args.dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
