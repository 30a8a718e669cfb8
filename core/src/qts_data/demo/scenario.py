"""The demo scenario: the main job of the data layer on a synthetic market.

1. ingest a session of ticks for several symbols (bulk, deduplicated; run twice to show it);
2. candles at 1m, 5m, 15m, 1h from the ticks, and stored daily candles;
3. a trading flow: executions into the ledger (a retried write is recorded once),
   positions updated from them, execution latencies logged;
4. a risk loop reading positions and risk limits through the cache, with hit rates;
5. on a stack with a ``tiered`` adapter (``demo --persist``): candle reads through
   the tiers, with the tier that served each (:mod:`qts_data.demo.tiered_reads`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from qts_data.contracts import ExecutionLog, Interval, LedgerEntry, RiskConfig, TickData
from qts_data.demo.market import SyntheticMarket
from qts_data.demo.tiered_reads import TieredReport, find_tiered, run_tiered_reads, start_report
from qts_data.stack import Stack

Progress = Callable[[str, int, int], None]  # (step, done, total)


@dataclass
class DemoReport:
    symbols: list[str]
    session: tuple[datetime, datetime]
    ticks_generated: int = 0
    ticks_inserted: int = 0
    ticks_reingested_duplicates: int = 0
    ticks_reingested_inserted: int = 0
    ingest_s: float = 0.0
    candles: dict[str, int] = field(default_factory=dict)  # interval -> candles across symbols
    last_hour: list[dict[str, Any]] = field(default_factory=list)
    daily_candles: int = 0
    ledger_entries: int = 0
    retried_duplicates: int = 0
    positions: list[dict[str, Any]] = field(default_factory=list)
    execution_logs: int = 0
    cache_reads: int = 0
    cache: dict[str, Any] = field(default_factory=dict)
    health: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    tiered: TieredReport | None = None  # on a stack with a tiered adapter


def _session(now: datetime, hours: float) -> tuple[datetime, datetime]:
    end = now.replace(minute=0, second=0, microsecond=0, tzinfo=timezone.utc)
    return end - timedelta(hours=hours), end


def _counted(
    source: Iterator[TickData], total: int, report: DemoReport, progress: Progress
) -> Iterator[TickData]:
    for n, tick in enumerate(source, 1):
        report.ticks_generated = n
        if n % 5000 == 0:
            progress("ingest ticks", n, total)
        yield tick
    progress("ingest ticks", report.ticks_generated, report.ticks_generated)


async def run_demo(
    stack: Stack,
    *,
    hours: float = 2.0,
    ticks_per_minute: float = 120.0,
    trades: int = 400,
    risk_reads: int = 20_000,
    seed: int = 7,
    now: datetime | None = None,
    progress: Progress = lambda step, done, total: None,
) -> DemoReport:
    market = SyntheticMarket(seed=seed, ticks_per_minute=ticks_per_minute)
    symbols = [i.symbol for i in market.instruments]
    start, end = _session(now or datetime.now(timezone.utc), hours)
    report = DemoReport(symbols=symbols, session=(start, end))
    adapter = stack.adapter
    tiered = find_tiered(stack)
    if tiered is not None:  # what earlier runs left in a persistent store
        report.tiered = start_report(tiered)
        report.tiered.ledger_before = len(await adapter.fetch_ledger())
    expected = int(hours * 60 * ticks_per_minute * len(symbols))

    # 1. ticks
    t0 = time.perf_counter()
    result = await adapter.ingest_ticks(
        _counted(market.ticks(start, end), expected, report, progress)
    )
    report.ticks_inserted = result.inserted
    report.ingest_s = time.perf_counter() - t0
    # a retried batch: the last 10 minutes again, exactly as stored; nothing is added twice
    retry: list[TickData] = []
    for symbol in symbols:
        retry.extend(await adapter.fetch_tick_data(symbol, end - timedelta(minutes=10), end))
    again = await adapter.ingest_ticks(retry)
    report.ticks_reingested_duplicates = again.duplicates
    report.ticks_reingested_inserted = again.inserted
    report.timings["ticks"] = time.perf_counter() - t0

    # 2. candles
    t0 = time.perf_counter()
    intervals = [Interval.M1, Interval.M5, Interval.M15, Interval.H1]
    for n, interval in enumerate(intervals, 1):
        total = 0
        for symbol in symbols:
            total += len(await adapter.fetch_ohlcv(symbol, start, end, interval))
        report.candles[interval.value] = total
        progress("candles", n, len(intervals) + 1)
    for symbol in symbols:
        last = (await adapter.fetch_ohlcv(symbol, end - timedelta(hours=1), end, Interval.H1))[-1:]
        for c in last:
            report.last_hour.append(
                {
                    "symbol": symbol,
                    "open": c.open,
                    "high": c.high,
                    "low": c.low,
                    "close": c.close,
                    "volume": c.volume,
                }
            )
    today = Interval.D1.floor(start)
    for symbol in symbols:
        daily = market.daily_candles(symbol, today - timedelta(days=1), 30)
        await adapter.upsert_ohlcv(daily, Interval.D1)
        report.daily_candles += len(
            await adapter.fetch_ohlcv(symbol, today - timedelta(days=30), today, Interval.D1)
        )
    progress("candles", len(intervals) + 1, len(intervals) + 1)
    report.timings["candles"] = time.perf_counter() - t0

    # 3. trading flow
    t0 = time.perf_counter()
    rng = random.Random(seed)
    await adapter.save_risk_config(
        RiskConfig(config_key="max_position_krw", value=Decimal("50000000"))
    )
    await adapter.save_risk_config(
        RiskConfig(config_key="max_daily_loss_krw", value=Decimal("2000000"))
    )
    holdings: dict[str, tuple[Decimal, Decimal]] = {}
    ticks_by_symbol = {s: await adapter.fetch_tick_data(s, start, end) for s in symbols}
    for n in range(trades):
        symbol = rng.choice(symbols)
        tick = rng.choice(ticks_by_symbol[symbol])
        qty_held, avg = holdings.get(symbol, (Decimal(0), Decimal(0)))
        side = "SELL" if qty_held > 0 and rng.random() < 0.4 else "BUY"
        qty = (
            Decimal(rng.randint(1, 10))
            if not symbol.startswith("KRW-")
            else Decimal(rng.randint(1, 50)) / 100
        )
        if side == "SELL":
            qty = min(qty, qty_held)
        entry = LedgerEntry(
            timestamp=tick.time,
            symbol=symbol,
            side=side,
            qty=qty,
            price=tick.price,
            fee=(qty * tick.price * Decimal("0.00015")).quantize(Decimal("0.01"), ROUND_HALF_EVEN),
            strategy_tag="demo-mean-revert",
            order_id=f"demo-{seed}-{n}",
            broker="SIM",
        )
        await adapter.append_ledger(entry)
        if n % 10 == 0 and not await adapter.append_ledger(entry):  # a retried write
            report.retried_duplicates += 1
        if side == "BUY":
            new_qty = qty_held + qty
            avg = ((qty_held * avg + qty * tick.price) / new_qty).quantize(Decimal("0.00000001"))
        else:
            new_qty = qty_held - qty
        holdings[symbol] = (new_qty, avg if new_qty else Decimal(0))
        await adapter.update_position(symbol, new_qty, holdings[symbol][1], market=tick.source)
        for stage, latency in (("PRECHECK", rng.uniform(0.5, 3)), ("SEND", rng.uniform(5, 40))):
            await adapter.store_execution_result(
                ExecutionLog(
                    time=tick.time,
                    order_id=entry.order_id or "",
                    symbol=symbol,
                    stage=stage,
                    latency_ms=Decimal(f"{latency:.3f}"),
                    success=True,
                )
            )
            report.execution_logs += 1
        if n % 20 == 0:
            progress("trades", n, trades)
    progress("trades", trades, trades)
    report.ledger_entries = len(await adapter.fetch_ledger())
    report.timings["trades"] = time.perf_counter() - t0

    # 4. risk loop through the cache
    t0 = time.perf_counter()
    for n in range(risk_reads):
        symbol = symbols[n % len(symbols)]
        await adapter.fetch_position(symbol)
        if n % 10 == 0:
            await adapter.fetch_risk_configs()
        if n % 50 == 0:
            await adapter.fetch_positions()
        if n % 2000 == 0:
            progress("risk loop", n, risk_reads)
    report.cache_reads = risk_reads
    progress("risk loop", risk_reads, risk_reads)
    report.timings["risk loop"] = time.perf_counter() - t0

    # 5. candle reads through the tiers
    if tiered is not None and report.tiered is not None:
        t0 = time.perf_counter()
        progress("tiered reads", 0, 1)
        await run_tiered_reads(tiered, report.tiered, symbols, now or datetime.now(timezone.utc))
        progress("tiered reads", 1, 1)
        report.timings["tiered reads"] = time.perf_counter() - t0

    for p in await adapter.fetch_positions():
        report.positions.append({"symbol": p.symbol, "qty": p.qty, "avg_price": p.avg_price})
    report.cache = stack.cache.summary()
    report.health = (await stack.health()).state.value
    return report
