"""The demo's candle reads through the tiers (on a stack with a ``tiered`` adapter, e.g. ``demo --persist``).

For each read kind (daily candles of the last 90 days, hourly candles of the
last 7 days) every demo symbol is read three times: cold (from whatever earlier
runs left on disk and in the store, else upstream), again (memory), and after
the memory tier is dropped (disk for what is within its month, the store for
the rest). Each row reports the tier that served the reads and where the
candles came from.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from qts_data.compositions.tiered import TieredAdapter
from qts_data.contracts import Interval
from qts_data.stack import Stack
from qts_data.tiers.response import TIERS

#: (interval, days back) of the read kinds.
READ_KINDS = ((Interval.D1, 90), (Interval.H1, 7))


@dataclass
class TierRead:
    """One read kind over every symbol."""

    kind: str  # "1d, last 90 days"
    attempt: str  # "cold", "again", "memory dropped"
    served_by: str  # the deepest tier any of the reads needed
    cache_hits: int
    reads: int
    rows: int
    rows_by_tier: dict[str, int]
    ms: float
    upstream_calls: int


@dataclass
class TieredReport:
    adapter: str
    store: str
    disk: str | None
    source: str | None
    ledger_before: int = 0
    reads: list[TierRead] = field(default_factory=list)
    upstream_calls: int = 0  # this run, every step included
    upstream_candles: int = 0
    stats: dict[str, Any] = field(default_factory=dict)


def find_tiered(stack: Stack) -> TieredAdapter | None:
    """The stack's tiered adapter, if it has one."""
    return next((c for c in stack.components.values() if isinstance(c, TieredAdapter)), None)


def start_report(tiered: TieredAdapter) -> TieredReport:
    return TieredReport(
        adapter=tiered.name,
        store=tiered.store.name,
        disk=None if tiered.disk is None else str(tiered.disk.root),
        source=None if tiered.source is None else tiered.source.name,
    )


async def _read_all(
    tiered: TieredAdapter, symbols: list[str], interval: Interval, days: int, now: datetime
) -> TierRead:
    start = interval.floor(now) - timedelta(days=days)
    deepest = 0
    hits = rows = calls = 0
    by_tier: dict[str, int] = {}
    started = time.perf_counter()
    for symbol in symbols:
        response = await tiered.fetch_candles(symbol, start, now, interval)
        meta = response.metadata
        deepest = max(deepest, TIERS.index(meta.source))
        hits += meta.cache_hit
        rows += meta.data_count
        calls += meta.upstream_calls
        for tier, count in meta.rows_by_tier.items():
            by_tier[tier] = by_tier.get(tier, 0) + count
    return TierRead(
        kind=f"{interval.value}, last {days} days",
        attempt="",
        served_by=TIERS[deepest],
        cache_hits=hits,
        reads=len(symbols),
        rows=rows,
        rows_by_tier=by_tier,
        ms=(time.perf_counter() - started) * 1000,
        upstream_calls=calls,
    )


async def run_tiered_reads(
    tiered: TieredAdapter, report: TieredReport, symbols: list[str], now: datetime
) -> None:
    """The read section; fills ``report``."""
    for attempt in ("cold", "again"):
        for interval, days in READ_KINDS:
            read = await _read_all(tiered, symbols, interval, days, now)
            read.attempt = attempt
            report.reads.append(read)
    tiered.memory.clear()
    for interval, days in READ_KINDS:
        read = await _read_all(tiered, symbols, interval, days, now)
        read.attempt = "memory dropped"
        report.reads.append(read)
    report.upstream_calls = tiered.counters.upstream_calls
    report.upstream_candles = tiered.counters.upstream_candles
    report.stats = tiered.stats()
