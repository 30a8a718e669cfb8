"""Tick ingest through the timescale adapter against raw asyncpg, on the machine's PostgreSQL.

    python bench/timescale_ingest.py [--ticks 1000000] [--batch 10000] [--executemany 200000]
    python bench/timescale_ingest.py --file-ticks 5000000     # peak memory of a file ingest

Creates a database of its own (dropped at the end), migrates it, and times in the
same run, each into an emptied tick_data (same table, same indexes):

* adapter.ingest_ticks(the TickData list)   binary COPY into a staging table +
                                             INSERT ... ON CONFLICT DO NOTHING, pipelined
* adapter with ingest_method="unnest"        one INSERT of arrays per batch
* raw copy_records_to_table(the same rows)  no deduplication at all
* raw executemany(INSERT, the same rows)    on the first --executemany rows

and prints rows/s with the ratio adapter/raw. With --file-ticks it writes a CSV
of that many ticks, loads it with `qts-data ingest ticks` in a child process and
prints the child's peak RSS. Absolute numbers are noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import asyncpg

from qts_data.contracts import TickData
from qts_data_timescale.adapter import TimescaleAdapter

ADMIN_DSN = os.environ.get("QTS_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
T0 = datetime(2024, 1, 2, tzinfo=timezone.utc)
COLUMNS = list(TickData.db_columns)
INSERT = (
    f"INSERT INTO tick_data ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(COLUMNS) + 1))})"
)


def make_ticks(count: int) -> list[TickData]:
    """Validated ticks: 4 symbols, a trade id on 90 % of them, millisecond spacing."""
    symbols = ["BTC", "ETH", "005930", "AAPL"]
    ticks = []
    for i in range(count):
        ticks.append(
            TickData(
                time=T0 + timedelta(milliseconds=i),
                symbol=symbols[i % 4],
                price=Decimal(f"{70000 + i % 997}.{i % 100_000_000:08d}"),
                volume=1 + i % 500,
                bid=Decimal(f"{69999 + i % 997}.5") if i % 3 else None,
                ask=Decimal(f"{70001 + i % 997}.5") if i % 3 else None,
                source="upbit",
                trade_id=None if i % 10 == 0 else f"{i}",
            )
        )
    return ticks


async def empty(conn: asyncpg.Connection) -> None:
    await conn.execute("TRUNCATE tick_data RESTART IDENTITY")
    await conn.execute("CHECKPOINT")


async def timed(label: str, rows: int, coro: object) -> float:
    started = time.perf_counter()
    await coro  # type: ignore[misc]
    seconds = time.perf_counter() - started
    print(f"  {label:<44} {seconds:7.2f} s  {rows / seconds:>10,.0f} rows/s")
    return rows / seconds


async def bench_throughput(dsn: str, count: int, batch: int, executemany_rows: int) -> None:
    print(f"building {count:,} TickData ...", flush=True)
    ticks = make_ticks(count)
    rows = [t.to_db_row() for t in ticks]
    adapter = TimescaleAdapter(dsn=dsn, pool_min_size=2, pool_max_size=4)
    arrays = TimescaleAdapter(dsn=dsn, pool_min_size=2, pool_max_size=4, ingest_method="unnest")
    await adapter.open()
    await arrays.open()
    await adapter.migrate()
    conn = await asyncpg.connect(dsn)
    try:
        print(f"ingest of {count:,} ticks, batches of {batch:,} (rows/s, higher is better):")

        async def raw_copy() -> None:
            for start in range(0, count, batch):
                await conn.copy_records_to_table(
                    "tick_data", records=rows[start : start + batch], columns=COLUMNS
                )

        results: dict[str, list[float]] = {"adapter": [], "raw_copy": [], "unnest": []}
        for _ in range(2):  # alternate, keep the best of two
            await empty(conn)
            results["raw_copy"].append(
                await timed("raw asyncpg copy_records_to_table", count, raw_copy())
            )
            await empty(conn)
            results["adapter"].append(
                await timed(
                    "adapter.ingest_ticks (binary COPY)",
                    count,
                    adapter.ingest_ticks(ticks, batch_size=batch),
                )
            )
        dedup = await timed(
            "adapter.ingest_ticks again (all duplicates)",
            count,
            adapter.ingest_ticks(ticks, batch_size=batch),
        )
        await empty(conn)
        results["unnest"].append(
            await timed(
                "adapter.ingest_ticks (ingest_method=unnest)",
                count,
                arrays.ingest_ticks(ticks, batch_size=batch),
            )
        )
        subset = rows[:executemany_rows]

        async def raw_executemany() -> None:
            for start in range(0, len(subset), batch):
                await conn.executemany(INSERT, subset[start : start + batch])

        await empty(conn)
        many = await timed(
            f"raw asyncpg executemany ({len(subset):,} rows)", len(subset), raw_executemany()
        )
        stored = await conn.fetchval("SELECT count(*) FROM tick_data")
        assert stored == len(subset), stored
        best = {k: max(v) for k, v in results.items()}
        print("ratios (same run):")
        print(f"  adapter / raw copy_records_to_table   {best['adapter'] / best['raw_copy']:.2f}x")
        print(f"  adapter / raw executemany             {best['adapter'] / many:.2f}x")
        print(f"  adapter(unnest) / raw copy            {best['unnest'] / best['raw_copy']:.2f}x")
        print(f"  duplicate pass / first pass           {dedup / best['adapter']:.2f}x")
    finally:
        await conn.close()
        await adapter.close()
        await arrays.close()


def bench_file_memory(dsn: str, count: int, batch: int) -> None:
    with tempfile.TemporaryDirectory(prefix="qts-bench-") as folder:
        path = Path(folder) / "ticks.csv"
        print(f"writing {count:,} ticks to {path} ...", flush=True)
        with path.open("w") as handle:
            handle.write("time,symbol,price,volume,bid,ask,source,trade_id\n")
            symbols = ["BTC", "ETH", "005930", "AAPL"]
            for i in range(count):
                when = (T0 + timedelta(milliseconds=i)).isoformat()
                handle.write(
                    f"{when},{symbols[i % 4]},{70000 + i % 997}.{i % 10**8:08d},{1 + i % 500},,,upbit,{i}\n"
                )
        size = path.stat().st_size
        config = Path(folder) / "qts.toml"
        config.write_text(
            f'[stack]\nadapter = "db"\n[adapters.db]\ntype = "timescale"\ndsn = "{dsn}"\n'
            "pool_min_size = 1\n"
        )
        subprocess.run(
            [sys.executable, "-m", "qts_data.cli", "migrate", str(config)],
            check=True,
            capture_output=True,
        )
        print(
            f"qts-data ingest ticks ({size / 2**20:,.0f} MB file, batches of {batch:,}) ...",
            flush=True,
        )
        started = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "qts_data.cli",
                "ingest",
                "ticks",
                str(path),
                str(config),
                "--batch-size",
                str(batch),
                "--json",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if done.returncode != 0:
            print(done.stderr)
            raise SystemExit(done.returncode)
        print(done.stdout.strip())
        print(
            f"  {count:,} ticks in {seconds:.1f} s ({count / seconds:,.0f} ticks/s from the file)"
        )
        print(f"  peak RSS of the ingest process: {peak_kb / 1024:,.0f} MB (aim < 300 MB)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--executemany", type=int, default=200_000)
    parser.add_argument(
        "--file-ticks", type=int, default=0, help="measure peak memory of a file ingest instead"
    )
    args = parser.parse_args()
    name = f"qts_bench_{secrets.token_hex(4)}"
    subprocess.run(
        ["psql", "-X", "-q", "-d", ADMIN_DSN, "-c", f"CREATE DATABASE {name}"], check=True
    )
    dsn = ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    try:
        if args.file_ticks:
            bench_file_memory(dsn, args.file_ticks, args.batch)
        else:
            asyncio.run(bench_throughput(dsn, args.ticks, args.batch, args.executemany))
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
