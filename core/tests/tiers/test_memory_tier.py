"""The memory tier: LRU of series, a TTL per series, the most recent N candles, coverage."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tier_helpers import TODAY, Clock, candle, hours, times

from qts_data.contracts import Interval
from qts_data.tiers import MemoryCandleTier

H1 = Interval.H1


def at(h: int) -> object:
    return TODAY + timedelta(hours=h)


def test_a_filled_range_is_served_and_a_wider_one_is_partly_missing() -> None:
    tier = MemoryCandleTier(clock=Clock())
    rows = hours(TODAY, 10)
    tier.fill("BTC", H1, rows, [(TODAY, TODAY + timedelta(hours=10))])
    found, missing = tier.lookup("BTC", H1, TODAY + timedelta(hours=2), TODAY + timedelta(hours=5))
    assert times(found) == times(rows[2:5]) and missing == []
    found, missing = tier.lookup("BTC", H1, TODAY + timedelta(hours=8), TODAY + timedelta(hours=12))
    assert times(found) == times(rows[8:10])
    assert missing == [(TODAY + timedelta(hours=10), TODAY + timedelta(hours=12))]


def test_an_empty_bucket_inside_a_covered_span_is_a_gap_not_a_miss() -> None:
    tier = MemoryCandleTier(clock=Clock())
    rows = [c for c in hours(TODAY, 6) if c.time.hour != 3]  # no trading at 03:00
    tier.fill("BTC", H1, rows, [(TODAY, TODAY + timedelta(hours=6))])
    found, missing = tier.lookup("BTC", H1, TODAY, TODAY + timedelta(hours=6))
    assert missing == []
    assert [c.time.hour for c in found] == [0, 1, 2, 4, 5]


def test_series_are_separate_per_symbol_and_interval() -> None:
    tier = MemoryCandleTier(clock=Clock())
    tier.fill("BTC", H1, hours(TODAY, 3), [(TODAY, TODAY + timedelta(hours=3))])
    assert tier.lookup("ETH", H1, TODAY, TODAY + timedelta(hours=3))[1] != []
    assert tier.lookup("BTC", Interval.M1, TODAY, TODAY + timedelta(hours=3))[1] != []


def test_the_least_recently_used_series_is_evicted_first() -> None:
    tier = MemoryCandleTier(max_series=2, clock=Clock())
    span = [(TODAY, TODAY + timedelta(hours=1))]
    tier.fill("A", H1, hours(TODAY, 1, "A"), span)
    tier.fill("B", H1, hours(TODAY, 1, "B"), span)
    tier.lookup("A", H1, *span[0])  # A is now more recent than B
    tier.fill("C", H1, hours(TODAY, 1, "C"), span)
    assert len(tier) == 2 and tier.evictions == 1
    assert tier.lookup("B", H1, *span[0])[1] == span  # evicted
    assert tier.lookup("A", H1, *span[0])[1] == []
    assert tier.lookup("C", H1, *span[0])[1] == []


def test_a_series_expires_its_ttl_after_it_was_created() -> None:
    clock = Clock()
    tier = MemoryCandleTier(ttl_s=3600, clock=clock)
    span = (TODAY, TODAY + timedelta(hours=2))
    tier.fill("BTC", H1, hours(TODAY, 2), [span])
    clock.advance(1800)
    tier.fill("BTC", H1, [], [span])  # a refill does not extend the life
    clock.advance(1799)
    assert tier.lookup("BTC", H1, *span)[1] == []
    clock.advance(1)
    found, missing = tier.lookup("BTC", H1, *span)
    assert found == [] and missing == [span]
    assert tier.expirations == 1 and len(tier) == 0


def test_only_the_most_recent_candles_are_kept_and_coverage_follows() -> None:
    tier = MemoryCandleTier(max_candles=5, clock=Clock())
    rows = hours(TODAY, 8)
    tier.fill("BTC", H1, rows, [(TODAY, TODAY + timedelta(hours=8))])
    assert tier.candles == 5
    found, missing = tier.lookup("BTC", H1, TODAY, TODAY + timedelta(hours=8))
    assert times(found) == times(rows[3:])
    assert missing == [(TODAY, TODAY + timedelta(hours=3))]


def test_put_candles_are_not_claimed_as_coverage_but_are_held() -> None:
    tier = MemoryCandleTier(clock=Clock())
    written = candle(TODAY + timedelta(hours=12), "7")
    tier.put("BTC", H1, [written])
    span = (TODAY + timedelta(hours=12), TODAY + timedelta(hours=13))
    assert tier.lookup("BTC", H1, *span) == ([], [span])
    assert tier.between("BTC", H1, *span) == [written]


def test_put_replaces_a_candle_in_a_covered_span() -> None:
    tier = MemoryCandleTier(clock=Clock())
    span = (TODAY, TODAY + timedelta(hours=3))
    tier.fill("BTC", H1, hours(TODAY, 3), [span])
    tier.put("BTC", H1, [candle(TODAY + timedelta(hours=1), "555", 9)])
    found, _ = tier.lookup("BTC", H1, *span)
    assert [str(c.close) for c in found] == ["100", "555", "100"]


def test_out_of_order_fills_keep_time_order() -> None:
    tier = MemoryCandleTier(clock=Clock())
    rows = hours(TODAY, 6)
    tier.fill("BTC", H1, rows[4:], [(rows[4].time, TODAY + timedelta(hours=6))])
    tier.fill("BTC", H1, rows[:4], [(TODAY, rows[4].time)])
    found, missing = tier.lookup("BTC", H1, TODAY, TODAY + timedelta(hours=6))
    assert times(found) == times(rows) and missing == []


def test_settings_must_be_positive() -> None:
    with pytest.raises(ValueError):
        MemoryCandleTier(max_candles=0)
