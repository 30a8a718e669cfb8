"""The same operations give the same results on the sqlite adapter as on the memory adapter.

Random ticks (colliding times, duplicates written differently: ``100`` and
``100.0``, ticks with and without trade ids) and random candles of every
interval go to both adapters; every interval and many ranges are then read
back from both and compared in their JSON form (every digit, every microsecond).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qts_data.contracts import OHLCV, Interval, TickData
from qts_data.errors import ContractError
from qts_data.interfaces import DataSourceAdapter
from qts_data_sqlite.adapter import SqliteAdapter

memory = pytest.importorskip("qts_data_memory.adapter", reason="needs qts-data-memory")

UTC = timezone.utc
T0 = datetime(2024, 1, 2, tzinfo=UTC)
SPAN_US = 2 * 86_400_000_000  # two days

PRICES = [
    "100",
    "100.0",
    "100.00000000",
    "99.99999999",
    "0.00000001",
    "1E+2",
    "9876543210.12345678",
    "9876543210.12345679",
    "0",
]
times = st.one_of(
    st.integers(0, SPAN_US),  # anywhere
    st.sampled_from([0, 59_999_999, 60_000_000, 3_600_000_000, 86_400_000_000]),  # edges
).map(lambda us: T0 + timedelta(microseconds=us))
tick_values = st.builds(
    TickData,
    time=times,
    symbol=st.sampled_from(["BTC", "ETH"]),
    price=st.sampled_from(PRICES).map(Decimal),
    volume=st.integers(0, 5),
    bid=st.one_of(st.none(), st.sampled_from(["99", "99.0"]).map(Decimal)),
    source=st.sampled_from([None, "", "upbit"]),
    trade_id=st.one_of(st.none(), st.sampled_from(["a", "b", "c"])),
)


def respelled(tick: TickData) -> TickData:
    """The same tick with its price written another way (``100`` -> ``1E+2``, ``1E+2`` -> ``100.0``)."""
    text = str(tick.price)
    other = tick.price.normalize()
    if str(other) == text:
        other = Decimal(format(tick.price, "f") + ("0" if "." in format(tick.price, "f") else ".0"))
        if -other.as_tuple().exponent > 8:  # type: ignore[operator]
            return tick
    return tick.model_copy(update={"price": other})


@st.composite
def batches_of_ticks(draw: st.DrawFn) -> list[TickData]:
    """Ticks, some of them followed later by themselves or a respelled copy (duplicates by value)."""
    batch = draw(st.lists(tick_values, max_size=20))
    echoes = draw(st.lists(st.sampled_from(batch), max_size=5)) if batch else []
    return batch + [respelled(t) if i % 2 else t for i, t in enumerate(echoes)]


@st.composite
def candles(draw: st.DrawFn) -> tuple[Interval, list[OHLCV]]:
    interval = draw(st.sampled_from(list(Interval)))
    step = interval.seconds
    result = []
    for _ in range(draw(st.integers(0, 6))):
        bucket = T0 + timedelta(seconds=step * draw(st.integers(0, SPAN_US // 1_000_000 // step)))
        low, high = sorted(
            Decimal(p) for p in draw(st.lists(st.sampled_from(PRICES), min_size=2, max_size=2))
        )
        result.append(
            OHLCV(
                time=bucket,
                symbol=draw(st.sampled_from(["BTC", "ETH"])),
                open=low,
                high=high,
                low=low,
                close=high,
                volume=draw(st.integers(0, 10)),
            )
        )
    return interval, result


ranges = st.tuples(st.integers(-60_000_000, SPAN_US), st.integers(0, SPAN_US + 60_000_000)).map(
    lambda r: (T0 + timedelta(microseconds=r[0]), T0 + timedelta(microseconds=r[1]))
)


async def apply(
    adapter: DataSourceAdapter,
    batches: list[list[TickData]],
    writes: list[tuple[Interval, list[OHLCV]]],
    queries: list[tuple[datetime, datetime]],
) -> list[Any]:
    out: list[Any] = []
    for batch in batches:
        result = await adapter.ingest_ticks(batch, batch_size=7)
        out.append(("ingest", result.received, result.inserted))
    for interval, rows in writes:
        out.append(("upsert", await adapter.upsert_ohlcv(rows, interval)))
    for symbol in ("BTC", "ETH"):
        for start, end in [(T0 - timedelta(days=1), T0 + timedelta(days=3)), *queries]:
            if start > end:  # a reversed range: the same error from both
                for read in (adapter.fetch_tick_data, adapter.fetch_ohlcv):
                    try:
                        await read(symbol, start, end)
                    except ContractError as exc:
                        out.append(("refused", str(exc)))
                    else:
                        out.append(("answered a reversed range", read.__name__))
                continue
            ticks = await adapter.fetch_tick_data(symbol, start, end)
            out.append(("ticks", symbol, [t.to_json() for t in ticks]))
            for interval in Interval:
                got = await adapter.fetch_ohlcv(symbol, start, end, interval)
                out.append(("ohlcv", symbol, interval.value, [c.to_json() for c in got]))
    return out


async def both(*args: Any) -> tuple[list[Any], list[Any]]:
    reference = memory.MemoryAdapter()
    subject = SqliteAdapter(":memory:")
    await subject.open()
    try:
        return await apply(reference, *args), await apply(subject, *args)
    finally:
        await subject.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batches=st.lists(batches_of_ticks(), max_size=3),
    writes=st.lists(candles(), max_size=3),
    queries=st.lists(ranges, max_size=3),
)
def test_sqlite_answers_as_the_memory_adapter(
    batches: list[list[TickData]],
    writes: list[tuple[Interval, list[OHLCV]]],
    queries: list[tuple[datetime, datetime]],
) -> None:
    expected, got = asyncio.run(both(batches, writes, queries))
    assert got == expected
