"""MemoryAdapter behaviour beyond the generic contract: batching of ingests, atomic
batches, candle alignment, stored-or-aggregated candles at every interval, raw names."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from qts_data.contracts import (
    OHLCV,
    ExecutionLog,
    Interval,
    LedgerEntry,
    Position,
    RiskConfig,
    StrategyParam,
    TickData,
)
from qts_data.errors import ContractError, QtsDataError
from qts_data.interfaces import Capability, DataSourceAdapter, IngestResult
from qts_data_memory.adapter import ElementTypeError, MemoryAdapter

UTC = timezone.utc
DAY = datetime(2024, 1, 2, tzinfo=UTC)


def at(hours: int = 0, minutes: int = 0, seconds: int = 0, days: int = 0) -> datetime:
    return DAY + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def tick(
    when: datetime,
    price: str = "100",
    volume: int = 1,
    symbol: str = "BTC",
    trade_id: str | None = None,
) -> TickData:
    return TickData(
        time=when, symbol=symbol, price=Decimal(price), volume=volume, trade_id=trade_id
    )


def candle(when: datetime, o: str, h: str, low: str, c: str, v: int, symbol: str = "BTC") -> OHLCV:
    return OHLCV(time=when, symbol=symbol, open=o, high=h, low=low, close=c, volume=v)


def ohlc(candles: list[OHLCV]) -> list[tuple[datetime, str, str, str, str, int]]:
    """Candles as comparable tuples; prices as plain text, so 100.00000000 reads "100"."""

    def text(price: Decimal) -> str:
        return format(price.normalize(), "f")

    return [
        (c.time, text(c.open), text(c.high), text(c.low), text(c.close), c.volume) for c in candles
    ]


@pytest.fixture
def adapter() -> MemoryAdapter:
    return MemoryAdapter()


def test_memory_adapter_implements_every_capability() -> None:
    adapter = MemoryAdapter()
    assert isinstance(adapter, DataSourceAdapter)
    assert adapter.capabilities == Capability.ALL
    assert not getattr(MemoryAdapter, "__abstractmethods__", None)


# -- positions ---------------------------------------------------------------------------------
async def test_positions_are_listed_by_symbol_and_replaced_on_save(adapter: MemoryAdapter) -> None:
    for symbol in ("MSFT", "AAPL", "005930"):
        await adapter.update_position(symbol, 1, "10")
    await adapter.update_position("AAPL", 5, "12.5")
    assert [p.symbol for p in await adapter.fetch_positions()] == ["005930", "AAPL", "MSFT"]
    aapl = await adapter.fetch_position("AAPL")
    assert aapl is not None
    assert (aapl.qty, aapl.avg_price) == (Decimal(5), Decimal("12.5"))
    assert await adapter.fetch_position("TSLA") is None


# -- ledger ----------------------------------------------------------------------------------------
def entry(
    when: datetime,
    symbol: str = "BTC",
    order_id: str | None = None,
    fill_id: str | None = None,
    qty: str = "1",
) -> LedgerEntry:
    return LedgerEntry(
        timestamp=when,
        symbol=symbol,
        side="BUY",
        qty=qty,
        price="10",
        order_id=order_id,
        fill_id=fill_id,
    )


async def test_ledger_records_each_idempotency_key_once(adapter: MemoryAdapter) -> None:
    assert await adapter.append_ledger(entry(at(1), order_id="o1")) is True
    assert await adapter.append_ledger(entry(at(2), order_id="o1", qty="9")) is False
    assert await adapter.append_ledger(entry(at(3), order_id="o1", fill_id="f1")) is True
    assert await adapter.append_ledger(entry(at(3), order_id="o1", fill_id="f1")) is False
    assert await adapter.append_ledger(entry(at(4))) is True
    assert await adapter.append_ledger(entry(at(4))) is True  # no order id: always appended
    rows = await adapter.fetch_ledger()
    assert [(r.timestamp, r.idempotency_key, r.qty) for r in rows] == [
        (at(1), "o1", Decimal("1")),
        (at(3), "o1#f1", Decimal("1")),
        (at(4), None, Decimal("1")),
        (at(4), None, Decimal("1")),
    ]


async def test_ledger_is_time_ordered_stable_and_half_open(adapter: MemoryAdapter) -> None:
    await adapter.append_ledger(entry(at(5), order_id="late"))
    await adapter.append_ledger(entry(at(1), order_id="first-at-1"))
    await adapter.append_ledger(entry(at(3), symbol="ETH", order_id="eth"))
    await adapter.append_ledger(entry(at(1), order_id="second-at-1"))
    rows = await adapter.fetch_ledger()
    assert [r.order_id for r in rows] == ["first-at-1", "second-at-1", "eth", "late"]
    window = await adapter.fetch_ledger(start=at(1), end=at(5))
    assert [r.order_id for r in window] == ["first-at-1", "second-at-1", "eth"]
    assert [r.order_id for r in await adapter.fetch_ledger("BTC", start=at(2))] == ["late"]


async def test_naive_range_bounds_are_rejected(adapter: MemoryAdapter) -> None:
    with pytest.raises(ContractError, match="naive"):
        await adapter.fetch_ledger(start=datetime(2024, 1, 1))
    with pytest.raises(ContractError, match="fetch_tick_data: end"):
        await adapter.fetch_tick_data("BTC", at(0), datetime(2024, 1, 3))


# -- ticks -------------------------------------------------------------------------------------------
async def test_ingest_from_async_generator_applies_whole_batches(adapter: MemoryAdapter) -> None:
    stored_when_yielded: list[int] = []

    async def stream() -> AsyncIterator[TickData]:
        for i in range(10):
            stored_when_yielded.append(adapter.counts()["ticks"])
            yield tick(at(seconds=i), trade_id=f"t{i}")

    result = await adapter.ingest_ticks(stream(), batch_size=3)
    assert result == IngestResult(received=10, inserted=10)
    # ticks 0-2 are stored when tick 3 is produced, 0-5 when tick 6 is, and so on.
    assert stored_when_yielded == [0, 0, 0, 3, 3, 3, 6, 6, 6, 9]
    assert len(await adapter.fetch_tick_data("BTC", at(), at(1))) == 10


@pytest.mark.parametrize("source", ["list", "async generator"])
async def test_ingest_yields_to_the_event_loop_between_batches(
    adapter: MemoryAdapter, source: str
) -> None:
    observed: list[int] = []
    stop = asyncio.Event()

    async def observer() -> None:
        while not stop.is_set():
            observed.append(adapter.counts()["ticks"])
            await asyncio.sleep(0)

    task = asyncio.create_task(observer())
    await asyncio.sleep(0)
    ticks = [tick(at(seconds=i), trade_id=f"t{i}") for i in range(100)]

    async def never_awaits() -> AsyncIterator[TickData]:
        for item in ticks:
            yield item

    await adapter.ingest_ticks(ticks if source == "list" else never_awaits(), batch_size=25)
    stop.set()
    await task
    assert {25, 50, 75} <= set(observed)


async def test_ingest_skips_duplicates_within_and_across_batches(adapter: MemoryAdapter) -> None:
    first = [tick(at(seconds=i), trade_id=f"t{i}") for i in range(5)]
    result = await adapter.ingest_ticks([*first, first[0]], batch_size=2)
    assert (result.received, result.inserted, result.duplicates) == (6, 5, 1)
    again = await adapter.ingest_ticks(
        [first[4], first[1], tick(at(seconds=9), trade_id="t9")], batch_size=2
    )
    assert (again.received, again.inserted, again.duplicates) == (3, 1, 2)
    assert len(await adapter.fetch_tick_data("BTC", at(), at(1))) == 6


async def test_ticks_without_trade_id_are_duplicates_only_when_every_field_matches(
    adapter: MemoryAdapter,
) -> None:
    result = await adapter.ingest_ticks(
        [tick(at(), "100"), tick(at(), "100"), tick(at(), "101"), tick(at(), "100", volume=2)]
    )
    assert result == IngestResult(received=4, inserted=3)


async def test_bad_element_leaves_its_whole_batch_unstored(adapter: MemoryAdapter) -> None:
    stream = [tick(at(seconds=i), trade_id=f"t{i}") for i in range(6)]
    stream[4] = {"time": at(seconds=4)}  # type: ignore[call-overload]
    with pytest.raises(ElementTypeError, match=r"element 4 is dict, not TickData") as info:
        await adapter.ingest_ticks(stream, batch_size=3)
    assert isinstance(info.value, ContractError)
    assert isinstance(info.value, TypeError)
    stored = await adapter.fetch_tick_data("BTC", at(), at(1))
    assert [t.trade_id for t in stored] == ["t0", "t1", "t2"]  # the first batch only; t3 not
    # the good ticks of the failed batch were not recorded as seen either
    retry = await adapter.ingest_ticks(stream[3:4])
    assert retry.inserted == 1


async def test_bad_element_in_async_stream_reports_its_position(adapter: MemoryAdapter) -> None:
    async def stream() -> AsyncIterator[object]:
        yield tick(at(), trade_id="a")
        yield "not a tick"

    with pytest.raises(ContractError, match="element 1 is str"):
        await adapter.ingest_ticks(stream(), batch_size=10)  # type: ignore[arg-type]
    assert await adapter.fetch_tick_data("BTC", at(), at(1)) == []


async def test_out_of_order_ticks_are_returned_in_time_order_ties_in_arrival_order(
    adapter: MemoryAdapter,
) -> None:
    def ticks() -> Iterator[TickData]:
        yield tick(at(seconds=5), trade_id="late")
        yield tick(at(seconds=1), trade_id="early-1")
        yield tick(at(seconds=3), trade_id="mid")
        yield tick(at(seconds=1), trade_id="early-2")
        yield tick(at(seconds=9), trade_id="end")

    await adapter.ingest_ticks(ticks(), batch_size=2)
    got = await adapter.fetch_tick_data("BTC", at(seconds=1), at(seconds=9))
    assert [t.trade_id for t in got] == ["early-1", "early-2", "mid", "late"]


async def test_ingest_rejects_non_positive_batch_size(adapter: MemoryAdapter) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        await adapter.ingest_ticks([], batch_size=0)


# -- candles ---------------------------------------------------------------------------------------
async def test_misaligned_candle_is_rejected_and_nothing_is_written(adapter: MemoryAdapter) -> None:
    good = candle(at(minutes=5), "1", "1", "1", "1", 1)
    bad = candle(at(minutes=3), "1", "1", "1", "1", 1, symbol="ETH")
    with pytest.raises(
        ContractError,
        match=r"candle 1 \(ETH at 2024-01-02T00:03:00\+00:00\) is not aligned to the 5m interval",
    ):
        await adapter.upsert_ohlcv([good, bad], "5m")
    assert await adapter.fetch_ohlcv("BTC", at(), at(1), Interval.M5) == []
    assert adapter.counts()["candles"] == 0


async def test_candle_with_sub_second_time_is_not_aligned(adapter: MemoryAdapter) -> None:
    with pytest.raises(ContractError, match="not aligned to the 1m"):
        await adapter.upsert_ohlcv(
            [candle(at(minutes=1) + timedelta(microseconds=1), "1", "1", "1", "1", 1)], "1m"
        )


async def test_upsert_replaces_on_interval_symbol_time(adapter: MemoryAdapter) -> None:
    assert await adapter.upsert_ohlcv([candle(at(), "1", "2", "1", "2", 5)], Interval.H1) == 1
    assert await adapter.upsert_ohlcv([candle(at(), "3", "4", "3", "4", 6)], "1h") == 1
    await adapter.upsert_ohlcv([candle(at(), "9", "9", "9", "9", 9)], "1d")  # another interval
    assert ohlc(await adapter.fetch_ohlcv("BTC", at(), at(1), "1h")) == [
        (at(), "3", "4", "3", "4", 6)
    ]
    assert adapter.counts()["candles"] == 2


async def test_unknown_interval_is_a_contract_error(adapter: MemoryAdapter) -> None:
    with pytest.raises(ContractError, match="unknown interval '2m'"):
        await adapter.fetch_ohlcv("BTC", at(), at(1), "2m")


# Ticks of BTC on 2024-01-02 (and one the next day), used for every interval below.
TICKS = [
    (at(0, 0, 10), "100", 1),
    (at(0, 0, 50), "105", 2),
    (at(0, 1, 30), "95", 3),
    (at(0, 4, 59), "101", 4),
    (at(0, 5, 0), "110", 5),
    (at(0, 14, 0), "90", 6),
    (at(0, 15, 0), "120", 7),
    (at(1, 0, 0), "130", 8),
    (at(days=1), "140", 9),
]

# interval -> (stored candles of that interval, query [start, end), expected candles)
OHLCV_CASES = {
    "1m": (
        [
            candle(at(0, 1), "1", "2", "1", "2", 99),  # overrides the ticks of 00:01
            candle(at(0, 2), "50", "60", "40", "55", 10),  # a bucket without ticks
            candle(at(0, 6), "7", "7", "7", "7", 7),  # starts at `end`: excluded
        ],
        (at(0, 0), at(0, 6)),
        [
            (at(0, 0), "100", "105", "100", "105", 3),
            (at(0, 1), "1", "2", "1", "2", 99),
            (at(0, 2), "50", "60", "40", "55", 10),
            (at(0, 4), "101", "101", "101", "101", 4),
            (at(0, 5), "110", "110", "110", "110", 5),
        ],
    ),
    "5m": (
        [candle(at(0, 5), "111", "112", "88", "89", 50)],
        (at(0, 0), at(0, 20)),
        [
            (at(0, 0), "100", "105", "95", "101", 10),
            (at(0, 5), "111", "112", "88", "89", 50),
            (at(0, 10), "90", "90", "90", "90", 6),
            (at(0, 15), "120", "120", "120", "120", 7),
        ],
    ),
    "15m": (
        [candle(at(0, 30), "5", "6", "4", "5", 1)],
        (at(0, 0), at(1, 0)),
        [
            (at(0, 0), "100", "110", "90", "90", 21),
            (at(0, 15), "120", "120", "120", "120", 7),
            (at(0, 30), "5", "6", "4", "5", 1),
        ],
    ),
    "1h": (
        [candle(at(1, 0), "129", "131", "128", "130", 80)],
        (at(0, 0), at(2, 0)),
        [
            (at(0, 0), "100", "120", "90", "120", 28),
            (at(1, 0), "129", "131", "128", "130", 80),
        ],
    ),
    "1d": (
        [candle(at(days=-1), "80", "90", "70", "85", 1000)],
        (at(days=-1), at(days=2)),
        [
            (at(days=-1), "80", "90", "70", "85", 1000),
            (at(), "100", "130", "90", "130", 36),
            (at(days=1), "140", "140", "140", "140", 9),
        ],
    ),
}


@pytest.mark.parametrize("interval", list(OHLCV_CASES))
async def test_fetch_ohlcv_mixes_stored_candles_and_tick_aggregates(
    adapter: MemoryAdapter, interval: str
) -> None:
    _, (start, end), expected = OHLCV_CASES[interval]
    await adapter.ingest_ticks([tick(t, p, v) for t, p, v in TICKS])
    await adapter.ingest_ticks([tick(at(0, 0, 20), "1000", 1000, symbol="ETH")])  # never mixed in
    # Candles of the other intervals are stored too: only the asked interval's count.
    for other, (other_stored, _, _) in OHLCV_CASES.items():
        await adapter.upsert_ohlcv(other_stored, other)
    got = await adapter.fetch_ohlcv("BTC", start, end, interval)
    assert ohlc(got) == expected
    assert got == await adapter.fetch_ohlcv("BTC", start, end, Interval(interval))
    assert all(c.symbol == "BTC" for c in got)


async def test_fetch_ohlcv_takes_buckets_whose_start_is_in_range(adapter: MemoryAdapter) -> None:
    await adapter.ingest_ticks([tick(t, p, v) for t, p, v in TICKS])
    # The 00:00 bucket starts before `start` = 00:01: it is left out, though ticks of it
    # (00:01:30, 00:04:59) are in [start, end). The 00:10 bucket starts before `end` = 00:14:
    # it is in, with its tick at 00:14:00, which is not in [start, end).
    got = await adapter.fetch_ohlcv("BTC", at(0, 1), at(0, 14), "5m")
    assert ohlc(got) == [
        (at(0, 5), "110", "110", "110", "110", 5),
        (at(0, 10), "90", "90", "90", "90", 6),
    ]
    assert await adapter.fetch_ohlcv("BTC", at(0, 5), at(0, 5), "5m") == []


async def test_fetch_ohlcv_of_unknown_symbol_is_empty(adapter: MemoryAdapter) -> None:
    await adapter.ingest_ticks([tick(t, p, v) for t, p, v in TICKS])
    assert await adapter.fetch_ohlcv("ETH", at(), at(days=2), "1d") == []


# -- execution logs and configuration ---------------------------------------------------------
async def test_execution_logs_filter_by_order_and_half_open_time(adapter: MemoryAdapter) -> None:
    def log(minute: int, order_id: str, stage: str) -> ExecutionLog:
        return ExecutionLog(
            time=at(0, minute), order_id=order_id, symbol="BTC", stage=stage, success=True
        )

    for item in (
        log(3, "o1", "filled"),
        log(1, "o1", "sent"),
        log(2, "o2", "sent"),
        log(1, "o1", "acked"),
    ):
        assert await adapter.store_execution_result(item) is True
    assert [(x.order_id, x.stage) for x in await adapter.fetch_execution_logs()] == [
        ("o1", "sent"),
        ("o1", "acked"),
        ("o2", "sent"),
        ("o1", "filled"),
    ]
    assert [
        x.stage for x in await adapter.fetch_execution_logs("o1", start=at(0, 1), end=at(0, 3))
    ] == [
        "sent",
        "acked",
    ]


async def test_strategy_params_and_risk_configs_are_keyed_and_ordered(
    adapter: MemoryAdapter,
) -> None:
    await adapter.save_strategy_param(StrategyParam(strategy_id="s2", param_name="b", value="1"))
    await adapter.save_strategy_param(StrategyParam(strategy_id="s1", param_name="z", value="1"))
    await adapter.save_strategy_param(StrategyParam(strategy_id="s1", param_name="a", value="1"))
    await adapter.save_strategy_param(StrategyParam(strategy_id="s1", param_name="z", value="2"))
    params = await adapter.fetch_strategy_params()
    assert [(p.strategy_id, p.param_name, p.value) for p in params] == [
        ("s1", "a", "1"),
        ("s1", "z", "2"),
        ("s2", "b", "1"),
    ]
    assert [p.param_name for p in await adapter.fetch_strategy_params("s2")] == ["b"]
    await adapter.save_risk_config(RiskConfig(config_key="max_loss", value="0.02"))
    await adapter.save_risk_config(RiskConfig(config_key="exposure", value="0.5"))
    await adapter.save_risk_config(RiskConfig(config_key="max_loss", value="0.03"))
    risk = await adapter.fetch_risk_configs()
    assert [(r.config_key, r.value) for r in risk] == [
        ("exposure", Decimal("0.5")),
        ("max_loss", Decimal("0.03")),
    ]


async def test_writes_of_the_wrong_contract_are_rejected(adapter: MemoryAdapter) -> None:
    with pytest.raises(ContractError, match="expected Position, got dict"):
        await adapter.save_position({"symbol": "A"})  # type: ignore[arg-type]
    assert await adapter.fetch_positions() == []


# -- raw rows ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("positions", "positions"),
        ("Position", "positions"),
        ("ledger", "ledger"),
        ("T_Ledger", "ledger"),
        ("t-ledger", "ledger"),
        ("strategies", "strategies"),
        ("Strategy", "strategies"),
        ("risk_configs", "risk_configs"),
        ("Risk_Config", "risk_configs"),
        ("risk config", "risk_configs"),
        ("execution_logs", "execution_logs"),
        (" EXECUTION_LOGS ", "execution_logs"),
    ],
)
async def test_raw_data_accepts_table_and_seed_sheet_names(
    adapter: MemoryAdapter, name: str, canonical: str
) -> None:
    await adapter.update_position("AAPL", 1, "10")
    await adapter.append_ledger(entry(at(1), order_id="o1"))
    await adapter.save_strategy_param(StrategyParam(strategy_id="s1", param_name="a", value="1"))
    await adapter.save_risk_config(RiskConfig(config_key="max_loss", value="0.02"))
    await adapter.store_execution_result(
        ExecutionLog(time=at(), order_id="o1", symbol="AAPL", stage="sent", success=True)
    )
    rows = await adapter.fetch_raw_data(name)
    assert rows == await adapter.fetch_raw_data(canonical)
    assert len(rows) == 1
    row = rows[0]
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in row.items())
    key_column = {
        "positions": ("symbol", "AAPL"),
        "ledger": ("order_id", "o1"),
        "strategies": ("param_name", "a"),
        "risk_configs": ("value", "0.02"),
        "execution_logs": ("stage", "sent"),
    }[canonical]
    assert row[key_column[0]] == key_column[1]


async def test_raw_rows_are_the_contracts_sheets_rows(adapter: MemoryAdapter) -> None:
    position = Position(symbol="AAPL", qty="1.5", avg_price="10", updated_at=at())
    await adapter.save_position(position)
    assert await adapter.fetch_raw_data("positions") == [position.to_sheets_row()]
    assert (await adapter.fetch_raw_data("positions"))[0]["qty"] == "1.5"


async def test_unknown_raw_sheet_lists_the_known_names(adapter: MemoryAdapter) -> None:
    with pytest.raises(QtsDataError) as info:
        await adapter.fetch_raw_data("ticks")
    message = str(info.value)
    assert "'ticks'" in message
    for known in ("execution_logs", "ledger", "positions", "risk_configs", "strategies"):
        assert known in message


async def test_health_check_reports_row_counts(adapter: MemoryAdapter) -> None:
    await adapter.update_position("AAPL", 1, "10")
    await adapter.ingest_ticks([tick(at(), trade_id="a"), tick(at(), trade_id="b", symbol="ETH")])
    await adapter.upsert_ohlcv([candle(at(), "1", "1", "1", "1", 1)], "1d")
    status = await adapter.health_check()
    assert status.healthy
    assert status.details == {
        "positions": 1,
        "ledger": 0,
        "ticks": 2,
        "tick_symbols": 2,
        "candles": 1,
        "execution_logs": 0,
        "strategy_params": 0,
        "risk_configs": 0,
    }
