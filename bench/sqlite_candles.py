"""A 1000-candle read through the sqlite adapter against raw sqlite3, same file, same run.

    python bench/sqlite_candles.py [--symbols 100] [--candles 2000] [--rows 1000] [--runs 200]

Builds a temporary database of ``symbols x candles`` 1m candles through the
adapter (timing the batch upserts), then reads one symbol's ``rows``-candle
range, best of ``runs``, three ways:

* raw      ``sqlite3``: the adapter's SELECT on a plain connection, ``fetchall()``
           (tuples of int and text: what the driver gives, no Decimals, no datetimes);
* raw+conv the same, with each row converted to a tuple of the values a
           caller needs (aware datetime, four Decimals, int);
* adapter  ``await adapter.fetch_ohlcv(...)`` from the event loop: the hop to the
           adapter's thread, the query (plus the tick-aggregation probe), and
           ``OHLCV`` contracts built without re-validation.

Prints milliseconds and the ratios adapter/raw and adapter/raw+conv. The seed
(seeds/001) asks for a 1000-candle read under 100 ms. Absolute numbers are
noisy on a shared machine: read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from qts_data.contracts import OHLCV
from qts_data_sqlite.adapter import SqliteAdapter

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T0 = datetime(2024, 1, 2, tzinfo=UTC)
M = timedelta(minutes=1)
SQL = (
    "SELECT time, open, high, low, close, volume FROM candles "
    "WHERE symbol = ? AND timeframe = ? AND time >= ? AND time < ? ORDER BY time"
)


def us(when: datetime) -> int:
    return (when - EPOCH) // timedelta(microseconds=1)


def candles_of(symbol: str, count: int) -> list[OHLCV]:
    out = []
    for i in range(count):
        base = Decimal(71_000 + (i * 37) % 500) + Decimal("0.12345678")
        out.append(
            OHLCV(
                time=T0 + i * M,
                symbol=symbol,
                open=base,
                high=base + Decimal("10.5"),
                low=base - Decimal("9.25"),
                close=base + Decimal("1.00000001"),
                volume=1_000 + i,
            )
        )
    return out


def best_ms(runs: int, fn: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best * 1000


async def best_ms_async(runs: int, fn: Callable[[], Awaitable[Any]]) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        await fn()
        best = min(best, time.perf_counter() - started)
    return best * 1000


async def main(symbols: int, count: int, rows: int, runs: int) -> None:
    folder = tempfile.mkdtemp(prefix="qts-bench-")
    path = os.path.join(folder, "candles.sqlite3")
    adapter = SqliteAdapter(path)
    await adapter.open()
    try:
        names = [f"S{k:03d}" for k in range(symbols)]
        started = time.perf_counter()
        written = 0
        for name in names:
            written += await adapter.upsert_ohlcv(candles_of(name, count), "1m")
        took = time.perf_counter() - started
        print(
            f"wrote {written} candles ({symbols} symbols x {count}) in {took:.2f} s "
            f"({written / took:,.0f} candles/s, validation of the contracts included)"
        )
        await adapter.maintain()  # ANALYZE, checkpoint: the file as a long-running store has it

        symbol = names[len(names) // 2]
        first = (count - rows) // 2
        start, end = T0 + first * M, T0 + (first + rows) * M
        params = (symbol, "1m", us(start), us(end))

        got = await adapter.fetch_ohlcv(symbol, start, end, "1m")
        raw = sqlite3.connect(path)
        try:
            fetched = raw.execute(SQL, params).fetchall()
            assert len(got) == len(fetched) == rows, (len(got), len(fetched), rows)
            assert [(c.time, c.open, c.close, c.volume) for c in got] == [
                (EPOCH + timedelta(microseconds=t), Decimal(o), Decimal(c), v)
                for t, o, _h, _lo, c, v in fetched
            ]

            def raw_read() -> list[Any]:
                return raw.execute(SQL, params).fetchall()

            def raw_converted() -> list[Any]:
                return [
                    (
                        EPOCH + timedelta(0, 0, t),
                        symbol,
                        Decimal(o),
                        Decimal(h),
                        Decimal(lo),
                        Decimal(c),
                        v,
                    )
                    for t, o, h, lo, c, v in raw.execute(SQL, params)
                ]

            for _ in range(3):  # warm the page caches of both connections
                raw_read()
                await adapter.fetch_ohlcv(symbol, start, end, "1m")
            raw_ms = best_ms(runs, raw_read)
            conv_ms = best_ms(runs, raw_converted)
            adapter_ms = await best_ms_async(
                runs, lambda: adapter.fetch_ohlcv(symbol, start, end, "1m")
            )
        finally:
            raw.close()
    finally:
        await adapter.close()
        for suffix in ("", "-wal", "-shm"):
            try:
                os.remove(path + suffix)
            except OSError:
                pass
        os.rmdir(folder)

    print(
        f"read of {rows} candles of one symbol, best of {runs} (Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}):"
    )
    print(f"  raw sqlite3 fetchall          {raw_ms:8.3f} ms")
    print(f"  raw sqlite3 + conversion      {conv_ms:8.3f} ms")
    print(f"  SqliteAdapter.fetch_ohlcv     {adapter_ms:8.3f} ms")
    print(f"  ratio adapter / raw           {adapter_ms / raw_ms:8.2f}x")
    print(f"  ratio adapter / raw+conv      {adapter_ms / conv_ms:8.2f}x")
    print(f"  seed target (< 100 ms)        {'met' if adapter_ms < 100 else 'MISSED'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--candles", type=int, default=2000, help="candles per symbol")
    parser.add_argument("--rows", type=int, default=1000, help="candles per read")
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    if args.rows > args.candles:
        parser.error("--rows cannot exceed --candles")
    asyncio.run(main(args.symbols, args.candles, args.rows, args.runs))
