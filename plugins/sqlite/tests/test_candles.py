"""Candles: upsert on (symbol, timeframe, time), batch writes, gaps, exact values."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from qts_data.contracts import OHLCV, Interval, TickData
from qts_data.errors import ContractError
from qts_data.interfaces import GapChecking
from qts_data_sqlite import adapter as adapter_module
from qts_data_sqlite.adapter import MAX_GAP_BUCKETS, SqliteAdapter

UTC = timezone.utc
T0 = datetime(2024, 1, 2, tzinfo=UTC)  # a Tuesday
M = timedelta(minutes=1)
D = Decimal


def bar(when: datetime, price: str = "100", volume: int = 1, symbol: str = "BTC") -> OHLCV:
    p = D(price)
    return OHLCV(time=when, symbol=symbol, open=p, high=p, low=p, close=p, volume=volume)


@pytest.fixture
async def adapter(db_path: Path) -> AsyncIterator[SqliteAdapter]:
    made = SqliteAdapter(db_path)
    await made.open()
    try:
        yield made
    finally:
        await made.close()


def rows(db_path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the file with a separate, plain sqlite3 connection."""
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


async def test_upsert_replaces_the_candle_of_the_same_symbol_timeframe_and_time(
    adapter: SqliteAdapter, db_path: Path
) -> None:
    await adapter.upsert_ohlcv([bar(T0, "1", 10), bar(T0 + M, "2", 20)], "1m")
    await adapter.upsert_ohlcv([bar(T0, "1", 99)], "1d")  # another timeframe: another row
    assert await adapter.upsert_ohlcv([bar(T0, "3", 30)], "1m") == 1
    got = await adapter.fetch_ohlcv("BTC", T0, T0 + 2 * M, "1m")
    assert [(c.time, c.close, c.volume) for c in got] == [(T0, D(3), 30), (T0 + M, D(2), 20)]
    assert rows(db_path, "SELECT timeframe, count(*) FROM candles GROUP BY timeframe") == [
        ("1d", 1),
        ("1m", 2),
    ]


async def test_the_last_of_duplicates_within_one_batch_wins(adapter: SqliteAdapter) -> None:
    assert (
        await adapter.upsert_ohlcv([bar(T0, "1", 1), bar(T0, "2", 2), bar(T0, "3", 3)], "1m") == 3
    )
    got = await adapter.fetch_ohlcv("BTC", T0, T0 + M, "1m")
    assert [(c.close, c.volume) for c in got] == [(D(3), 3)]


async def test_duplicate_candles_are_impossible_even_written_directly(
    adapter: SqliteAdapter, db_path: Path
) -> None:
    await adapter.upsert_ohlcv([bar(T0)], "1m")
    conn = sqlite3.connect(db_path)
    try:
        us = rows(db_path, "SELECT time FROM candles")[0][0]
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE constraint failed"):
            conn.execute(
                "INSERT INTO candles VALUES ('BTC', '1m', ?, '1', '1', '1', '1', 1)", (us,)
            )
        with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
            conn.execute("INSERT INTO candles VALUES ('BTC', '2m', 0, '1', '1', '1', '1', 1)")
    finally:
        conn.close()
    assert rows(db_path, "SELECT count(*) FROM candles") == [(1,)]


async def test_a_batch_of_10k_candles_is_written_in_one_call(
    adapter: SqliteAdapter, db_path: Path
) -> None:
    candles = [bar(T0 + i * M, str(100 + i % 7), i) for i in range(10_000)]
    assert await adapter.upsert_ohlcv(reversed(candles), Interval.M1) == 10_000
    got = await adapter.fetch_ohlcv("BTC", T0, T0 + 10_000 * M, "1m")
    assert [(c.time, c.close, c.volume) for c in got] == [
        (c.time, c.close, c.volume) for c in candles
    ]
    assert rows(db_path, "SELECT count(*) FROM candles") == [(10_000,)]


async def test_a_bad_candle_anywhere_in_a_batch_writes_nothing(
    adapter: SqliteAdapter, db_path: Path
) -> None:
    candles: list[Any] = [bar(T0 + i * M) for i in range(5_000)]
    with pytest.raises(ContractError, match=r"candle 4999 .* not aligned to the 1m interval"):
        await adapter.upsert_ohlcv([*candles[:-1], bar(T0 + 4999 * M + timedelta(seconds=1))], "1m")
    bad: list[Any] = [*candles[:2500], {"time": T0}, *candles[2500:]]
    with pytest.raises(ContractError, match="candle 2500: expected OHLCV, got dict"):
        await adapter.upsert_ohlcv(bad, "1m")
    assert rows(db_path, "SELECT count(*) FROM candles") == [(0,)]


async def test_prices_are_stored_as_exact_text_and_times_as_integer_microseconds(
    adapter: SqliteAdapter, db_path: Path
) -> None:
    exact = OHLCV(
        time=T0,
        symbol="BTC",
        open=D("1.10000000"),
        high=D("9876543210.12345679"),
        low=D("0.00000001"),
        close=D("9876543210.12345678"),
        volume=2**63 - 1,
    )
    await adapter.upsert_ohlcv([exact], "1d")
    assert rows(db_path, "SELECT time, open, high, low, close, volume FROM candles") == [
        (
            1_704_153_600_000_000,
            "1.10000000",
            "9876543210.12345679",
            "0.00000001",
            "9876543210.12345678",
            2**63 - 1,
        )
    ]
    (got,) = await adapter.fetch_ohlcv("BTC", T0, T0 + timedelta(days=1))
    assert got == exact
    assert got.to_json() == exact.to_json()  # every digit, trailing zeros included
    assert got.time.tzinfo is UTC


async def test_ticks_keep_microseconds_through_the_file(
    adapter: SqliteAdapter, db_path: Path
) -> None:
    kst = timezone(timedelta(hours=9))
    when = datetime(2024, 1, 2, 9, 0, 0, 999_999, tzinfo=kst)  # 00:00:00.999999 UTC
    tick = TickData(time=when, symbol="BTC", price=D("0.00000001"), volume=1, trade_id="a")
    await adapter.ingest_ticks([tick])
    assert rows(db_path, "SELECT time, price FROM ticks") == [(1_704_153_600_999_999, "0.00000001")]
    (got,) = await adapter.fetch_tick_data("BTC", T0, T0 + timedelta(seconds=1))
    assert got.time == when
    assert got.time.microsecond == 999_999
    assert got.time.tzinfo is UTC
    assert await adapter.fetch_tick_data("BTC", T0, T0 + timedelta(microseconds=999_999)) == []


async def test_tick_aggregates_compare_prices_as_decimals_not_floats(
    adapter: SqliteAdapter,
) -> None:
    # As floats, the two highs are the same number; as Decimals the second is higher.
    high, higher = D("9876543210.12345678"), D("9876543210.12345679")
    assert float(high) == float(higher)
    ticks = [
        TickData(time=T0, symbol="BTC", price=D("5"), volume=1, trade_id="1"),
        TickData(time=T0 + timedelta(seconds=1), symbol="BTC", price=high, volume=1, trade_id="2"),
        TickData(
            time=T0 + timedelta(seconds=2), symbol="BTC", price=higher, volume=1, trade_id="3"
        ),
        TickData(
            time=T0 + timedelta(seconds=3), symbol="BTC", price=D("7"), volume=1, trade_id="4"
        ),
    ]
    await adapter.ingest_ticks(ticks)
    (candle,) = await adapter.fetch_ohlcv("BTC", T0, T0 + M, "1m")
    assert (candle.open, candle.high, candle.low, candle.close, candle.volume) == (
        D(5),
        higher,
        D(5),
        D(7),
        4,
    )


# -- gaps -------------------------------------------------------------------------------------------
async def test_find_gaps_lists_the_buckets_without_a_stored_candle(adapter: SqliteAdapter) -> None:
    assert isinstance(adapter, GapChecking)
    await adapter.upsert_ohlcv([bar(T0 + k * M) for k in (1, 3, 7, 9)], "1m")
    await adapter.upsert_ohlcv([bar(T0)], "1h")  # another timeframe does not fill 00:00
    await adapter.upsert_ohlcv([bar(T0 + 4 * M, symbol="ETH")], "1m")  # nor another symbol
    await adapter.ingest_ticks(  # nor ticks: a gap is a bucket with no *stored* candle
        [TickData(time=T0 + 5 * M, symbol="BTC", price=D(1), volume=1, trade_id="t")]
    )
    # [00:00:30, 00:09): buckets 00:01 ... 00:08 (00:00 starts before the range, 00:09 at its end)
    gaps = await adapter.find_gaps("BTC", Interval.M1, T0 + M / 2, T0 + 9 * M)
    assert gaps == [T0 + k * M for k in (2, 4, 5, 6, 8)]
    gaps = await adapter.find_gaps("BTC", "1m", T0, T0 + 9 * M)
    assert gaps == [T0 + k * M for k in (0, 2, 4, 5, 6, 8)]
    assert await adapter.find_gaps("BTC", "1m", T0 + M, T0 + 2 * M) == []
    assert await adapter.find_gaps("BTC", "1m", T0 + 3 * M, T0 + 3 * M) == []
    assert await adapter.find_gaps("BTC", "5m", T0, T0 + 15 * M) == [T0, T0 + 5 * M, T0 + 10 * M]
    assert await adapter.find_gaps("XRP", "1h", T0, T0 + timedelta(hours=2)) == [
        T0,
        T0 + timedelta(hours=1),
    ]


async def test_find_gaps_of_daily_candles_include_weekends(adapter: SqliteAdapter) -> None:
    day = timedelta(days=1)
    weekdays = [T0 + k * day for k in range(7) if (T0 + k * day).weekday() < 5]
    await adapter.upsert_ohlcv([bar(d) for d in weekdays], "1d")
    gaps = await adapter.find_gaps("BTC", "1d", T0, T0 + 7 * day)
    assert [g.strftime("%a") for g in gaps] == ["Sat", "Sun"]


async def test_find_gaps_rejects_bad_arguments(
    adapter: SqliteAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ContractError, match="unknown interval '2m'"):
        await adapter.find_gaps("BTC", "2m", T0, T0 + M)
    with pytest.raises(ContractError, match=r"find_gaps: end .* is naive"):
        await adapter.find_gaps("BTC", "1m", T0, datetime(2024, 1, 3))
    with pytest.raises(ContractError, match=f"more than {MAX_GAP_BUCKETS}"):
        await adapter.find_gaps("BTC", "1m", T0, T0 + (MAX_GAP_BUCKETS + 1) * M)
    monkeypatch.setattr(adapter_module, "MAX_GAP_BUCKETS", 100)
    assert len(await adapter.find_gaps("BTC", "1m", T0 + M / 2, T0 + 100 * M + M / 2)) == 100
    with pytest.raises(ContractError, match="holds 101 buckets of 1m, more than 100"):
        await adapter.find_gaps("BTC", "1m", T0 + M / 2, T0 + 101 * M + M / 2)
