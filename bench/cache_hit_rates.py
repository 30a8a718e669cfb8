"""Hit rates of the cache kinds on a simulated trading workload (seeds/003 targets:
price > 99 %, position > 95 %, risk > 90 %).

    python bench/cache_hit_rates.py [--seconds 10] [--symbols 500] [--quotes-per-trade 10]

A simulated clock drives the memory cache's TTLs and the manager's ages, so the
run is deterministic and takes a few seconds for a minute of market time:

* a market-data feed pushes every trade and every top-of-book quote change as
  the latest price (``push_price``): 3,000 trades/s and ``--quotes-per-trade``
  quote changes per trade (10 by default; equities typically see 10-20), over
  the symbols with Zipf popularity;
* strategies read prices at 5,000/s and positions at 500/s, symbols drawn from
  the same Zipf distribution, through the cache (cache-aside on a miss);
* a risk loop every 100 ms reads the position of every held symbol (100) and
  the risk limits (``risk:account``);
* fills at 20/s update positions through write-through; the risk limits change
  every 30 s (invalidation).

TTLs are the seeds' (price 100 ms, position 1 s, risk 5 s) with the default
refresh-ahead; the numbers are printed with and without refresh-ahead. A pushed
price stays the latest while the feed is alive (its pushes send its heartbeats),
so a price read misses only for a symbol that has not traded since the start.

Position misses are first reads of symbols nobody holds and few read (the Zipf
tail): read less than once per TTL, each read is a load, whatever the cache does.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import heapq
import itertools
import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from qts_data.cache import CacheKind, CacheManager, CacheSettings, codec_for
from qts_data.contracts import Position, RiskConfig, TickData
from qts_data_memory.cache import MemoryCacheClient

POSITION = codec_for(Position | None)
RISK = codec_for(list[RiskConfig])
TICK = codec_for(TickData | None)
EPOCH = datetime(2026, 1, 5, tzinfo=timezone.utc)


class SimClock:
    def __init__(self) -> None:
        self.us = int(EPOCH.timestamp() * 1_000_000)

    def ns(self) -> int:
        return self.us * 1000

    def micros(self) -> int:
        return self.us


def zipf_weights(n: int, s: float) -> list[float]:
    weights = [1 / (rank**s) for rank in range(1, n + 1)]
    total = sum(weights)
    return [w / total for w in weights]


async def simulate(
    seconds: float, n_symbols: int, refresh_ahead: bool, quotes_per_trade: float, seed: int = 11
) -> dict[str, float]:
    rng = random.Random(seed)
    clock = SimClock()
    client = MemoryCacheClient(max_entries=100_000, clock=clock.ns)
    settings = CacheSettings() if refresh_ahead else CacheSettings(refresh_ahead={})
    manager = CacheManager(client, settings, clock_us=clock.micros)
    symbols = [f"S{i:04d}" for i in range(n_symbols)]
    cumulative = list(itertools.accumulate(zipf_weights(n_symbols, 1.1)))

    def pick() -> str:
        return symbols[min(bisect.bisect(cumulative, rng.random()), n_symbols - 1)]

    held = symbols[:100]
    positions = {s: Position(symbol=s, qty=Decimal(100), avg_price=Decimal(1000)) for s in held}
    latest: dict[str, TickData] = {}
    risk = [RiskConfig(config_key="max_exposure", value=Decimal(1_000_000))]

    async def load_position(symbol: str) -> Position | None:
        return positions.get(symbol)

    async def load_price(symbol: str) -> TickData | None:
        return latest.get(symbol)

    async def load_risk() -> list[RiskConfig]:
        return risk

    start = clock.us
    end = start + int(seconds * 1_000_000)
    streams = {
        "trade": 3000.0 * (1 + quotes_per_trade),
        "price_read": 5000.0,
        "position_read": 500.0,
        "fill": 20.0,
    }
    queue: list[tuple[int, str]] = []
    for name, rate in streams.items():
        heapq.heappush(queue, (start + int(rng.expovariate(rate) * 1e6), name))
    heapq.heappush(queue, (start, "risk_loop"))
    heapq.heappush(queue, (start + 30_000_000, "risk_change"))
    while queue:
        when, name = heapq.heappop(queue)
        if when >= end:
            break
        clock.us = when
        if name == "trade":
            symbol = pick()
            tick = TickData.model_construct(
                time=EPOCH + timedelta(microseconds=when - start),
                symbol=symbol,
                price=Decimal(1000),
                volume=1,
            )
            latest[symbol] = tick
            await manager.push_price(tick)
        elif name == "price_read":
            symbol = pick()
            await manager.get_or_load(
                CacheKind.PRICE, TICK, lambda s=symbol: load_price(s), symbol=symbol
            )
        elif name == "position_read":
            symbol = pick()
            await manager.get_or_load(
                CacheKind.POSITION, POSITION, lambda s=symbol: load_position(s), symbol=symbol
            )
        elif name == "fill":
            symbol = rng.choice(held)
            new = Position(symbol=symbol, qty=positions[symbol].qty + 1, avg_price=Decimal(1000))

            async def write(p: Position = new) -> None:
                positions[p.symbol] = p

            await manager.write_through(CacheKind.POSITION, new, POSITION, write, symbol=symbol)
        elif name == "risk_loop":
            for symbol in held:
                await manager.get_or_load(
                    CacheKind.POSITION, POSITION, lambda s=symbol: load_position(s), symbol=symbol
                )
            await manager.get_or_load(CacheKind.RISK, RISK, load_risk)
            heapq.heappush(queue, (when + 100_000, name))
            await asyncio.sleep(0)  # let background refreshes run
            continue
        elif name == "risk_change":
            risk = [RiskConfig(config_key="max_exposure", value=risk[0].value + 1)]
            await manager.invalidate(CacheKind.RISK)
            heapq.heappush(queue, (when + 30_000_000, name))
            continue
        heapq.heappush(queue, (when + int(rng.expovariate(streams[name]) * 1e6), name))
    await manager.stop()
    return {
        kind: stats.hit_rate or 0.0
        for kind, stats in manager.stats().items()
        if stats.hits + stats.misses
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--quotes-per-trade", type=float, default=10.0)
    args = parser.parse_args()
    targets = {"price": 0.99, "position": 0.95, "risk": 0.90}
    q = args.quotes_per_trade
    with_refresh = asyncio.run(simulate(args.seconds, args.symbols, True, q))
    without = asyncio.run(simulate(args.seconds, args.symbols, False, q))
    trades_only = asyncio.run(simulate(args.seconds, args.symbols, True, 0.0))
    print(
        f"{args.symbols} symbols, Zipf(1.1), {args.seconds:g} s of simulated market time, "
        f"{q:g} quote changes per trade"
    )
    print(f"{'kind':<10}{'hit rate':>10}{'no refresh-ahead':>18}{'trades only':>13}{'target':>9}")
    for kind, target in targets.items():
        rate = with_refresh.get(kind, 0.0)
        mark = "ok" if rate >= target else "BELOW"
        print(
            f"{kind:<10}{rate:>10.2%}{without.get(kind, 0.0):>18.2%}"
            f"{trades_only.get(kind, 0.0):>13.2%}{target:>8.0%} {mark}"
        )


if __name__ == "__main__":
    main()
