"""Bulk tick ingest (binary COPY through a staging table) and candles, compared with the
memory adapter on the same operations."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from qts_data.contracts import OHLCV, Interval, TickData
from qts_data.interfaces import DataSourceAdapter
from qts_data_timescale.adapter import TimescaleAdapter
from qts_data_timescale.errors import ElementTypeError

UTC = timezone.utc
T0 = datetime(2024, 1, 2, tzinfo=UTC)


def tick(seconds: float, price: str = "100", volume: int = 1, **fields: Any) -> TickData:
    return TickData(
        time=T0 + timedelta(seconds=seconds),
        symbol=fields.pop("symbol", "BTC"),
        price=Decimal(price),
        volume=volume,
        **fields,
    )


def view(candles: list[OHLCV]) -> list[tuple[Any, ...]]:
    return [(c.time, c.symbol, c.open, c.high, c.low, c.close, c.volume) for c in candles]


async def test_a_large_ingest_in_pipelined_batches_keeps_every_tick_in_order(
    adapter: TimescaleAdapter,
) -> None:
    ticks = [tick(i * 0.5, str(100 + i % 7), 1 + i % 3, trade_id=f"t{i}") for i in range(20_000)]

    def source() -> Iterator[TickData]:
        yield from ticks

    result = await adapter.ingest_ticks(source(), batch_size=1_500)
    assert (result.received, result.inserted) == (20_000, 20_000)
    stored = await adapter.fetch_tick_data("BTC", T0, T0 + timedelta(days=1))
    assert [t.trade_id for t in stored] == [t.trade_id for t in ticks]
    again = await adapter.ingest_ticks(ticks[5_000:7_000], batch_size=700)
    assert (again.received, again.inserted, again.duplicates) == (2_000, 0, 2_000)


async def test_a_bad_element_stops_the_ingest_and_keeps_the_earlier_batches(
    adapter: TimescaleAdapter,
) -> None:
    good = [tick(i, trade_id=f"t{i}") for i in range(10)]
    offered: list[Any] = [*good[:7], "not a tick", *good[7:]]
    with pytest.raises(
        ElementTypeError, match="element 7 is str, not TickData; its batch of 3 \\(elements 6-8\\)"
    ):
        await adapter.ingest_ticks(offered, batch_size=3)
    stored = await adapter.fetch_tick_data("BTC", T0, T0 + timedelta(days=1))
    assert [t.trade_id for t in stored] == ["t0", "t1", "t2", "t3", "t4", "t5"]


async def test_ties_in_time_keep_the_order_of_ingest_for_open_and_close(
    adapter: TimescaleAdapter,
) -> None:
    same = [tick(10, price, 1, trade_id=f"x{i}") for i, price in enumerate(["5", "9", "1", "7"])]
    await adapter.ingest_ticks(same[:2])
    await adapter.ingest_ticks(same[2:])
    [candle] = await adapter.fetch_ohlcv("BTC", T0, T0 + timedelta(minutes=1), "1m")
    assert (candle.open, candle.high, candle.low, candle.close) == (
        Decimal(5),
        Decimal(9),
        Decimal(1),
        Decimal(7),
    )
    assert [
        t.trade_id for t in await adapter.fetch_tick_data("BTC", T0, T0 + timedelta(minutes=1))
    ] == [
        "x0",
        "x1",
        "x2",
        "x3",
    ]


async def test_upserted_intraday_candles_are_stored_per_interval(adapter: TimescaleAdapter) -> None:
    bar = OHLCV(time=T0, symbol="BTC", open=1, high=2, low=1, close=2, volume=3)
    newer = bar.model_copy(update={"close": Decimal("1.5")})
    assert await adapter.upsert_ohlcv([bar, newer], Interval.M15) == 2
    assert view(await adapter.fetch_ohlcv("BTC", T0, T0 + timedelta(hours=1), "15m")) == view(
        [newer]
    )
    assert await adapter.fetch_ohlcv("BTC", T0, T0 + timedelta(hours=1), "5m") == []


# -- the same results as the memory adapter ---------------------------------------------------------


def random_ticks(rng: random.Random, count: int) -> list[TickData]:
    """Ticks over two days, many sharing a time, some without trade id, some repeated."""
    ticks: list[TickData] = []
    for i in range(count):
        if ticks and rng.random() < 0.05:
            ticks.append(rng.choice(ticks))  # a duplicate
            continue
        seconds = rng.choice([rng.randrange(0, 2 * 86_400), rng.randrange(0, 7_200), 3_600])
        ticks.append(
            tick(
                seconds + rng.choice([0, 0.5, 0.000_001]),
                f"{rng.randrange(1, 10_000)}.{rng.randrange(0, 10**8):08d}",
                rng.randrange(0, 1_000),
                symbol=rng.choice(["BTC", "BTC", "ETH"]),
                trade_id=None if rng.random() < 0.3 else f"id{i}",
                source=rng.choice([None, "upbit", ""]),
            )
        )
    return ticks


async def _replay(
    adapter: DataSourceAdapter, rng: random.Random, ticks: list[TickData]
) -> list[Any]:
    results: list[Any] = []
    position = 0
    while position < len(ticks):
        size = rng.randrange(1, 400)
        chunk = ticks[position : position + size]
        position += size
        outcome = await adapter.ingest_ticks(chunk, batch_size=rng.randrange(1, 150))
        results.append((outcome.received, outcome.inserted))
    stored = [
        OHLCV(time=T0 + timedelta(hours=h), symbol="BTC", open=1, high=3, low=1, close=2, volume=h)
        for h in (1, 5)
    ]
    await adapter.upsert_ohlcv(stored, "1h")
    await adapter.upsert_ohlcv(
        [stored[0].model_copy(update={"time": T0 + timedelta(days=1)})], "1d"
    )
    return results


async def test_the_same_operations_give_the_memory_adapters_results(
    adapter: TimescaleAdapter,
) -> None:
    memory_module = pytest.importorskip("qts_data_memory.adapter")
    memory = memory_module.MemoryAdapter()
    rng = random.Random(20240102)
    ticks = random_ticks(rng, 3_000)
    seed = rng.random()
    assert await _replay(adapter, random.Random(seed), ticks) == await _replay(
        memory, random.Random(seed), ticks
    )
    end = T0 + timedelta(days=3)
    for symbol in ("BTC", "ETH", "XRP"):
        assert [t.model_dump() for t in await adapter.fetch_tick_data(symbol, T0, end)] == [
            t.model_dump() for t in await memory.fetch_tick_data(symbol, T0, end)
        ]
        for interval in Interval:
            for start, stop in [
                (T0, end),
                (T0 + timedelta(seconds=90.5), T0 + timedelta(hours=7, seconds=1)),
                (T0 + timedelta(hours=1), T0 + timedelta(hours=1)),
            ]:
                got = await adapter.fetch_ohlcv(symbol, start, stop, interval)
                want = await memory.fetch_ohlcv(symbol, start, stop, interval)
                assert view(got) == view(want), (symbol, interval, start, stop)


async def test_ingest_from_an_async_generator_streams(adapter: TimescaleAdapter) -> None:
    produced = 0

    async def source() -> AsyncIterator[TickData]:
        nonlocal produced
        for i in range(5_000):
            produced += 1
            yield tick(i, trade_id=f"g{i}")

    result = await adapter.ingest_ticks(source(), batch_size=512)
    assert (produced, result.received, result.inserted) == (5_000, 5_000, 5_000)
