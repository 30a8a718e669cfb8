"""Tiered market-data storage on a backtest-like workload (seeds/001 targets: overall
hit rate above 85 %, cache responses under 10 ms, 1000 candles under 100 ms).

    python bench/tiered_hit_rate.py [--symbols 300] [--reads 20000] [--seconds-per-read 0.5]

The workload: strategies backtest over a few hundred symbols with Zipf
popularity (a few symbols are read far more often than the rest). Each read
picks a symbol, an interval and a window: 70 % of reads are 1h candles over one
to four weeks, the others 1d candles over three months to a year; half the
windows end at the last candle of the backtest's history, the others up to 14
days (1h) or 90 days (1d) earlier: walk-forward windows that overlap earlier
ones. A simulated clock advances ``--seconds-per-read`` per read, so the memory
tier's 1 h TTL expires and reads fall back to the lower tiers. With ``--live``
the windows end at the latest complete candle of the moving clock instead, so
every new hourly candle is also a miss that goes upstream (a live strategy).

The stack is ``tiered`` (memory 1,000 candles x ``max_series`` series, disk tier
in a temporary folder, the ``synthetic`` upstream source) over each store: the
memory plugin's adapter, and the sqlite plugin's when it is installed.

Then the latency of a 1000-candle read served by each tier, next to the same
read from the store directly.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from qts_data.compositions.tiered import TieredAdapter
from qts_data.contracts import Interval
from qts_data.interfaces import DataSourceAdapter
from qts_data.sources import SyntheticMarketSource, SyntheticSourceSettings
from qts_data_memory.adapter import MemoryAdapter

UTC = timezone.utc
START = datetime(2026, 1, 5, 9, 0, 30, tzinfo=UTC)


class SimClock:
    def __init__(self) -> None:
        self.t = START.timestamp()

    def __call__(self) -> float:
        return self.t

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)


def zipf_weights(n: int, s: float) -> list[float]:
    weights = [1 / (rank**s) for rank in range(1, n + 1)]
    total = sum(weights)
    return [w / total for w in weights]


def make_stores(folder: Path) -> dict[str, Callable[[], DataSourceAdapter]]:
    stores: dict[str, Callable[[], DataSourceAdapter]] = {"memory": MemoryAdapter}
    if importlib.util.find_spec("qts_data_sqlite") is not None:
        from qts_data_sqlite import SqliteSettings
        from qts_data_sqlite.adapter import SqliteAdapter

        def sqlite() -> DataSourceAdapter:
            path = folder / f"bench-{time.monotonic_ns()}.sqlite3"
            return SqliteAdapter(SqliteSettings(path=str(path)))

        stores["sqlite"] = sqlite
    return stores


async def workload(
    store: DataSourceAdapter, folder: Path, args: argparse.Namespace
) -> dict[str, Any]:
    clock = SimClock()
    source = SyntheticMarketSource(SyntheticSourceSettings(seed=11), now=clock.now)
    tiered = TieredAdapter(
        store,
        source,
        disk_path=str(folder),
        max_series=args.max_series,
        clock=clock,
        wall_clock=clock,
    )
    await store.open()
    await tiered.open()
    rng = random.Random(args.seed)
    symbols = [f"SYM{n:04d}" for n in range(args.symbols)]
    weights = zipf_weights(args.symbols, args.zipf)
    by_tier: dict[str, list[float]] = {}
    started = time.perf_counter()
    for _ in range(args.reads):
        symbol = rng.choices(symbols, weights)[0]
        interval = Interval.H1 if rng.random() < 0.7 else Interval.D1
        step = interval.delta
        latest = interval.floor((clock.now() if args.live else START) - timedelta(seconds=10))
        if interval is Interval.H1:  # one to four weeks, ending now or up to 14 days back
            length = rng.choice((168, 336, 504, 672))
            back = 0 if rng.random() < 0.5 else rng.randrange(1, 14 * 24)
        else:  # three months to a year, ending now or up to 90 days back
            length = rng.choice((90, 180, 365))
            back = 0 if rng.random() < 0.5 else rng.randrange(1, 90)
        end = latest - back * step
        response = await tiered.fetch_candles(symbol, end - length * step, end, interval)
        assert response.success, response.error
        by_tier.setdefault(response.metadata.source, []).append(
            response.metadata.processing_time_ms
        )
        clock.t += args.seconds_per_read
    elapsed = time.perf_counter() - started
    stats = tiered.stats()
    await tiered.close()
    await store.close()
    return {"stats": stats, "latency": by_tier, "elapsed": elapsed, "source_calls": source.calls}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report_workload(name: str, result: dict[str, Any], args: argparse.Namespace) -> None:
    stats = result["stats"]
    print(
        f"\n== store: {name}, {'live' if args.live else 'backtest'} == {args.reads:,} reads over {args.symbols} symbols "
        f"(Zipf s={args.zipf}), {args.reads * args.seconds_per_read / 3600:.1f} h simulated, "
        f"{result['elapsed']:.1f} s wall"
    )
    print(
        f"overall cache hit rate (memory + disk): {stats['hit_rate']:.1%}   "
        f"served without upstream: {stats['storage_hit_rate']:.1%}   "
        f"upstream calls: {stats['upstream_calls']:,} ({stats['upstream_candles']:,} candles)"
    )
    print(
        f"{'tier':<9}{'consulted':>10}{'served':>9}{'tier hit':>9}   response time of reads it served"
    )
    for tier, counter in stats["tiers"].items():
        times = result["latency"].get(tier, [])
        latency = (
            f"mean {statistics.fmean(times):7.3f} ms  p50 {pct(times, 0.5):7.3f}  "
            f"p99 {pct(times, 0.99):8.3f}"
            if times
            else "-"
        )
        rate = counter["hit_rate"]
        print(
            f"{tier:<9}{counter['consulted']:>10,}{counter['hits']:>9,}"
            f"{(f'{rate:.1%}' if rate is not None else '-'):>9}   {latency}"
        )
    memory = stats["memory"]
    print(
        f"memory tier: {memory['series']} series, {memory['candles']:,} candles, "
        f"{memory['evictions']:,} evictions, {memory['expirations']:,} TTL expirations; "
        f"disk files written: {stats['disk']['files_written']:,}"
    )


async def thousand_candles(store: DataSourceAdapter, folder: Path) -> dict[str, float]:
    """Microseconds per 1000-candle read served by each tier, and from the store directly."""
    clock = SimClock()
    source = SyntheticMarketSource(SyntheticSourceSettings(seed=5), now=clock.now)
    tiered = TieredAdapter(store, source, disk_path=str(folder), clock=clock, wall_clock=clock)
    await store.open()
    end = Interval.H1.floor(clock.now() - timedelta(seconds=10))
    start = end - timedelta(hours=1000)
    first = await tiered.fetch_candles("BENCH", start, end, Interval.H1)
    assert first.metadata.data_count == 1000 and first.metadata.source == "upstream"
    out: dict[str, float] = {}

    async def timed(label: str, call: Callable[[], Any], rounds: int) -> None:
        await call()
        began = time.perf_counter()
        for _ in range(rounds):
            await call()
        out[label] = (time.perf_counter() - began) / rounds * 1e6

    await timed(
        "memory tier, fetch_candles",
        lambda: tiered.fetch_candles("BENCH", start, end, Interval.H1),
        2000,
    )
    await timed(
        "memory tier, fetch_ohlcv",
        lambda: tiered.fetch_ohlcv("BENCH", start, end, Interval.H1),
        2000,
    )
    response = await tiered.fetch_candles("BENCH", start, end, Interval.H1)
    out["memory tier, processing_time_ms (as reported)"] = (
        response.metadata.processing_time_ms * 1000
    )

    async def from_disk() -> None:
        tiered.memory.clear()
        got = await tiered.fetch_candles("BENCH", start, end, Interval.H1)
        assert got.metadata.source in ("disk", "store")

    # 1000 hourly candles span 42 days: the disk keeps the last 30, the store the rest
    await timed("memory dropped: disk (30 days) + store", from_disk, 50)

    async def from_store() -> None:
        tiered.memory.clear()
        assert tiered.disk is not None
        tiered.disk.clear()
        got = await tiered.fetch_candles("BENCH", start, end, Interval.H1)
        assert got.metadata.source == "store"

    await timed("memory and disk dropped: store (+ disk refill)", from_store, 20)
    await timed(
        "the store directly, fetch_ohlcv",
        lambda: store.fetch_ohlcv("BENCH", start, end, Interval.H1),
        200,
    )
    await store.close()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--symbols", type=int, default=300)
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--zipf", type=float, default=1.1)
    parser.add_argument("--seconds-per-read", type=float, default=0.5)
    parser.add_argument("--max-series", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--live",
        action="store_true",
        help="windows end at the latest complete candle of the moving clock (a live strategy) "
        "instead of at the start of the run (a backtest over fixed history)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        stores = make_stores(folder)
        if "sqlite" not in stores:
            print("(the sqlite plugin is not installed: the memory store only)")
        for name, make in stores.items():
            result = await workload(make(), folder / f"disk-{name}", args)
            report_workload(name, result, args)
        print("\n== a 1000-candle read (1h candles), microseconds per read ==")
        for name, make in stores.items():
            figures = await thousand_candles(make(), folder / f"disk-1000-{name}")
            for label, us in figures.items():
                print(f"{name:<7} {label:<50} {us:>12,.1f} µs")


if __name__ == "__main__":
    asyncio.run(main())
