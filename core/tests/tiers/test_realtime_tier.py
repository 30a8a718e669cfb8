"""The real-time tier: ticks in memory only, deduplicated, kept a TTL after arrival, bounded per symbol."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from tier_helpers import NOW, Clock

from qts_data.contracts import Interval, TickData
from qts_data.errors import ContractError
from qts_data.tiers import RealtimeTickTier

FAR = NOW + timedelta(days=1)
BEFORE = NOW - timedelta(days=1)


def tick(
    seconds: float,
    price: str = "100",
    volume: int = 1,
    trade_id: str | None = None,
    symbol: str = "BTC",
) -> TickData:
    return TickData(
        time=NOW + timedelta(seconds=seconds),
        symbol=symbol,
        price=Decimal(price),
        volume=volume,
        trade_id=trade_id or f"t{seconds}",
    )


def when(ticks: list[TickData]) -> list[datetime]:
    return [t.time for t in ticks]


def test_ticks_are_kept_in_time_order_and_deduplicated() -> None:
    tier = RealtimeTickTier(clock=Clock())
    assert tier.add([tick(2), tick(0), tick(1)]) == 3
    assert tier.add([tick(1), tick(3)]) == 1
    assert when(tier.between("BTC", BEFORE, FAR)) == [NOW + timedelta(seconds=s) for s in range(4)]
    assert tier.between("ETH", BEFORE, FAR) == []


def test_ticks_expire_their_ttl_after_they_arrived() -> None:
    clock = Clock()
    tier = RealtimeTickTier(ttl_s=1800, clock=clock)
    tier.add([tick(0), tick(1)])
    clock.advance(1000)
    tier.add([tick(-5)])  # arrived later although older: kept longer
    clock.advance(800)
    assert when(tier.between("BTC", BEFORE, FAR)) == [NOW - timedelta(seconds=5)]
    clock.advance(1000)
    assert tier.between("BTC", BEFORE, FAR) == [] and len(tier) == 0
    assert tier.add([tick(0)]) == 1  # expired, so new again


def test_at_most_max_ticks_per_symbol_the_oldest_go_first() -> None:
    tier = RealtimeTickTier(max_ticks=3, clock=Clock())
    tier.add([tick(s) for s in range(5)])
    tier.add([tick(10, symbol="ETH")])
    assert when(tier.between("BTC", BEFORE, FAR)) == [NOW + timedelta(seconds=s) for s in (2, 3, 4)]
    assert tier.add([tick(0)]) == 1  # dropped, so new again (and drops the oldest again)
    assert len(tier.between("ETH", BEFORE, FAR)) == 1


def test_a_batch_with_a_bad_element_is_refused_whole() -> None:
    tier = RealtimeTickTier(clock=Clock())
    tier.add([tick(0)])
    bad: list[Any] = [tick(1), {"price": 1}, tick(2)]
    with pytest.raises(ContractError, match="element 11 is dict"):
        tier.add(bad, offset=10)
    assert when(tier.between("BTC", BEFORE, FAR)) == [NOW]


def test_candles_are_aggregated_per_bucket_and_skip_buckets_that_have_one() -> None:
    tier = RealtimeTickTier(clock=Clock())
    tier.add([tick(0, "10", 1), tick(30, "12", 2), tick(50, "9", 3), tick(70, "11", 4)])
    start = NOW
    got = tier.candles("BTC", Interval.M1, start, start + timedelta(minutes=5), skip=[])
    assert [(c.time, c.open, c.high, c.low, c.close, c.volume) for c in got] == [
        (start, Decimal(10), Decimal(12), Decimal(9), Decimal(9), 6),
        (start + timedelta(minutes=1), Decimal(11), Decimal(11), Decimal(11), Decimal(11), 4),
    ]
    again = tier.candles("BTC", Interval.M1, start, start + timedelta(minutes=5), skip=[start])
    assert [c.time for c in again] == [start + timedelta(minutes=1)]
    assert again[0] is got[1]  # remembered while the ticks do not change
    tier.add([tick(80, "20", 1)])
    changed = tier.candles("BTC", Interval.M1, start, start + timedelta(minutes=5), skip=[start])
    assert changed[0].high == Decimal(20)
