"""A 1000-candle read through the timescale adapter against a raw asyncpg fetch of the same rows.

    python bench/timescale_query.py [--calls 300]

Creates a database of its own on the machine's PostgreSQL (dropped at the end),
stores 1000 daily candles for each of 20 symbols and 10 ticks a minute over 1000
minutes for one symbol, then times, in the same run:

* daily:  adapter.fetch_ohlcv(symbol, 1000 days, "1d")  (stored candles, merged with
          any tick aggregate: the contract's full query) against
          conn.fetch("SELECT ... FROM ohlcv_1d WHERE symbol = $1 AND time >= $2 AND time < $3")
* minute: adapter.fetch_ohlcv(symbol, 1000 minutes, "1m") (aggregated on the server from
          ticks) against conn.fetch of the same 1000 rows from the ohlcv_1m view.

Prints the median time per call and the ratio adapter/raw (lower is better;
the aim is at most 1.2x). Absolute numbers are noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import asyncpg

from qts_data.contracts import OHLCV, TickData
from qts_data_timescale.adapter import TimescaleAdapter

ADMIN_DSN = os.environ.get("QTS_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
T0 = datetime(2021, 1, 1, tzinfo=timezone.utc)
DAYS = 1000
RAW_DAILY = (
    "SELECT time, symbol, open, high, low, close, volume FROM ohlcv_1d "
    "WHERE symbol = $1 AND time >= $2 AND time < $3 ORDER BY time"
)
RAW_MINUTES = (
    "SELECT bucket, symbol, open, high, low, close, volume FROM ohlcv_1m "
    "WHERE symbol = $1 AND bucket >= $2 AND bucket < $3 ORDER BY bucket"
)


async def median_ms(calls: int, fn: Callable[[], Awaitable[Any]], expect: int) -> float:
    for _ in range(20):  # warm up: statement caches, plans
        assert len(await fn()) == expect
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def run(dsn: str, calls: int) -> None:
    adapter = TimescaleAdapter(dsn=dsn, pool_min_size=1, pool_max_size=4)
    await adapter.open()
    await adapter.migrate()
    conn = await asyncpg.connect(dsn)
    try:
        symbols = [f"SYM{i:02d}" for i in range(20)]
        for symbol in symbols:
            await adapter.upsert_ohlcv(
                [
                    OHLCV(
                        time=T0 + timedelta(days=d),
                        symbol=symbol,
                        open=Decimal(f"{100 + d % 50}.12345678"),
                        high=Decimal(f"{160 + d % 50}.5"),
                        low=Decimal(f"{90 + d % 10}.25"),
                        close=Decimal(f"{120 + d % 40}.87654321"),
                        volume=1_000_000 + d,
                    )
                    for d in range(DAYS)
                ],
                "1d",
            )
        minute0 = T0 + timedelta(days=10)
        await adapter.ingest_ticks(
            TickData(
                time=minute0 + timedelta(seconds=6 * i),
                symbol="SYM00",
                price=Decimal(f"{100 + i % 37}.{i % 10**8:08d}"),
                volume=1 + i % 9,
                trade_id=str(i),
            )
            for i in range(10 * DAYS)
        )
        await conn.execute("ANALYZE")
        end = T0 + timedelta(days=DAYS)
        minute_end = minute0 + timedelta(minutes=DAYS)
        print(f"median of {calls} calls (ms per call, lower is better):")
        results = {}
        for label, adapter_call, raw_call in [
            (
                "1000 daily candles (stored)",
                lambda: adapter.fetch_ohlcv("SYM07", T0, end, "1d"),
                lambda: conn.fetch(RAW_DAILY, "SYM07", T0, end),
            ),
            (
                "1000 minute candles (from ticks)",
                lambda: adapter.fetch_ohlcv("SYM00", minute0, minute_end, "1m"),
                lambda: conn.fetch(RAW_MINUTES, "SYM00", minute0, minute_end),
            ),
        ]:
            raw = await median_ms(calls, raw_call, DAYS)
            through = await median_ms(calls, adapter_call, DAYS)
            raw_again = await median_ms(calls, raw_call, DAYS)
            raw = min(raw, raw_again)
            results[label] = through / raw
            print(f"  {label:<34} adapter {through:7.3f}   raw asyncpg fetch {raw:7.3f}")
        print("ratios (same run):")
        for label, ratio in results.items():
            print(f"  {label:<34} adapter / raw = {ratio:.2f}x")
    finally:
        await conn.close()
        await adapter.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    name = f"qts_bench_{secrets.token_hex(4)}"
    subprocess.run(
        ["psql", "-X", "-q", "-d", ADMIN_DSN, "-c", f"CREATE DATABASE {name}"], check=True
    )
    dsn = ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    try:
        asyncio.run(run(dsn, args.calls))
    finally:
        subprocess.run(
            [
                "psql",
                "-X",
                "-q",
                "-d",
                ADMIN_DSN,
                "-c",
                f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
            ],
            check=False,
        )


if __name__ == "__main__":
    main()
