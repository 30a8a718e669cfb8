"""The synthetic market source: deterministic, range-independent, complete buckets only."""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta
from itertools import pairwise

import pytest
from tier_helpers import NOW, TODAY, Clock

from qts_data.contracts import Interval
from qts_data.errors import ContractError
from qts_data.sources import SyntheticMarketSource, SyntheticSourceSettings


def source(clock: Clock | None = None, **settings: object) -> SyntheticMarketSource:
    clock = clock or Clock()
    return SyntheticMarketSource(SyntheticSourceSettings.model_validate(settings), now=clock.now)


async def test_the_same_seed_gives_the_same_candles_and_another_seed_others() -> None:
    a = await source().fetch_candles("KRW-BTC", Interval.H1, TODAY - timedelta(days=2), TODAY)
    b = await source().fetch_candles("KRW-BTC", Interval.H1, TODAY - timedelta(days=2), TODAY)
    c = await source(seed=8).fetch_candles("KRW-BTC", Interval.H1, TODAY - timedelta(days=2), TODAY)
    assert len(a) == 48
    assert [x.to_json() for x in a] == [x.to_json() for x in b]
    assert [x.close for x in a] != [x.close for x in c]


@pytest.mark.parametrize("interval", list(Interval))
async def test_overlapping_requests_agree_whatever_the_range(interval: Interval) -> None:
    src = source()
    step = interval.delta
    start = interval.floor(NOW) - 40 * step
    whole = await src.fetch_candles("AAPL", interval, start, start + 30 * step)
    first = await src.fetch_candles("AAPL", interval, start, start + 12 * step)
    rest = await source().fetch_candles("AAPL", interval, start + 12 * step, start + 30 * step)
    inner = await src.fetch_candles("AAPL", interval, start + 5 * step, start + 7 * step)
    assert [x.to_json() for x in whole] == [x.to_json() for x in first + rest]
    assert [x.to_json() for x in inner] == [x.to_json() for x in whole[5:7]]


async def test_candles_are_consistent_and_continuous() -> None:
    got = await source().fetch_candles("005930", Interval.M5, TODAY - timedelta(days=1), TODAY)
    assert len(got) == 288
    for prev, cur in pairwise(got):
        assert cur.time - prev.time == timedelta(minutes=5)
        assert cur.open == prev.close  # one path: a candle opens where the previous closed
    for c in got:
        assert c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high
        assert c.low > 0 and c.volume > 0


async def test_only_complete_buckets_are_returned() -> None:
    clock = Clock()  # 12:30
    src = source(clock)
    got = await src.fetch_candles("BTC", Interval.H1, TODAY, TODAY + timedelta(days=1))
    assert [c.time.hour for c in got] == list(range(12))  # 12:00-13:00 is still open
    assert await src.fetch_candles("BTC", Interval.D1, TODAY, TODAY + timedelta(days=1)) == []
    clock.advance(1800)  # 13:00: the 12:00 bucket is complete now
    got = await src.fetch_candles("BTC", Interval.H1, TODAY, TODAY + timedelta(days=1))
    assert got[-1].time.hour == 12


async def test_buckets_start_in_the_half_open_range() -> None:
    src = source()
    got = await src.fetch_candles(
        "BTC", Interval.H1, TODAY + timedelta(minutes=1), TODAY + timedelta(hours=3)
    )
    assert [c.time.hour for c in got] == [1, 2]


async def test_the_allow_list_and_the_reference_prices() -> None:
    src = source(symbols=["KRW-BTC"], prices={"KRW-BTC": "95000000"})
    assert await src.fetch_candles("KRW-ETH", Interval.D1, TODAY - timedelta(days=5), TODAY) == []
    got = await src.fetch_candles("KRW-BTC", Interval.D1, TODAY - timedelta(days=400), TODAY)
    assert len(got) == 400
    bound = 95_000_000 * math.exp(3.05)
    assert all(
        95_000_000 / bound * 95_000_000 <= float(c.low) and float(c.high) <= bound for c in got
    )
    assert src.calls == 2 and src.candles_served == 400


async def test_latency_is_added_to_every_call() -> None:
    src = source(latency_ms=30)
    started = time.perf_counter()
    await src.fetch_candles("BTC", Interval.D1, TODAY - timedelta(days=1), TODAY)
    assert time.perf_counter() - started >= 0.03


async def test_bad_arguments_are_contract_errors() -> None:
    src = source()
    with pytest.raises(ContractError, match="unknown interval"):
        await src.fetch_candles("BTC", "2h", TODAY - timedelta(days=1), TODAY)
    with pytest.raises(ContractError, match="timezone-aware"):
        await src.fetch_candles("BTC", Interval.D1, datetime(2026, 1, 1), TODAY)
