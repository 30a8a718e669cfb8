"""Values to SQLite and back: exact times, exact numbers, tick keys, trusted construction."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from qts_data.contracts import (
    OHLCV,
    Contract,
    ExecutionLog,
    LedgerEntry,
    Position,
    RiskConfig,
    StrategyParam,
    TickData,
)
from qts_data.contracts.trusted import trusted_builder
from qts_data.errors import ContractError
from qts_data_sqlite.codec import check_time, dec, from_us, tick_dedup, to_us

UTC = timezone.utc
KST = timezone(timedelta(hours=9))
T0 = datetime(2024, 1, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    "when",
    [
        T0,
        datetime(2024, 1, 2, 9, 0, 0, 1, tzinfo=KST),
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    ],
)
def test_times_round_trip_exactly_through_integer_microseconds(when: datetime) -> None:
    us = to_us(when)
    assert isinstance(us, int)
    back = from_us(us)
    assert back == when
    assert back.tzinfo is UTC
    assert back.microsecond == when.astimezone(UTC).microsecond


def test_microseconds_order_as_the_times_do() -> None:
    times = [T0 + timedelta(microseconds=k) for k in (-1, 0, 1, 10**12)]
    assert [to_us(t) for t in times] == sorted(to_us(t) for t in times)
    assert to_us(T0) == 1_704_153_600_000_000


def test_naive_times_are_refused() -> None:
    with pytest.raises(ContractError, match="where: start 2024-01-02T00:00:00 is naive"):
        check_time(datetime(2024, 1, 2), "start", "where")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("0.00000001", "0.00000001"),
        ("1E+2", "100"),
        ("1.10", "1.10"),
        ("9876543210.12345678", "9876543210.12345678"),
        ("-0.5", "-0.5"),
    ],
)
def test_decimals_become_plain_text_with_every_digit(value: str, text: str) -> None:
    assert dec(Decimal(value)) == text
    assert Decimal(dec(Decimal(value))) == Decimal(value)


def test_tick_keys_follow_the_contracts_dedup_key() -> None:
    def tick(**fields: object) -> TickData:
        return TickData(
            **{"time": T0, "symbol": "BTC", "price": Decimal("100"), "volume": 1, **fields}
        )

    same_value = [tick(), tick(price=Decimal("100.0")), tick(price=Decimal("1E+2"))]
    assert len({t.dedup_key for t in same_value}) == 1
    assert len({tick_dedup(t) for t in same_value}) == 1
    different = [
        tick(),
        tick(source=""),
        tick(source="null"),
        tick(bid=Decimal("0")),
        tick(ask=Decimal("0")),
        tick(volume=2),
        tick(trade_id='A["100",1,null,null,null]'),  # looks like a key; the prefix keeps it apart
    ]
    assert len({t.dedup_key for t in different}) == len(different)
    assert len({tick_dedup(t) for t in different}) == len(different)
    assert tick_dedup(tick(trade_id="x")) == tick_dedup(tick(trade_id="x", price=Decimal(7)))


SAMPLES: list[Contract] = [
    Position(symbol="AAPL", qty=Decimal("1.5"), avg_price=Decimal("2"), market="US", updated_at=T0),
    LedgerEntry(timestamp=T0, symbol="AAPL", side="BUY", qty=1, price=2, order_id="o"),
    TickData(time=T0, symbol="BTC", price=1, volume=1),
    OHLCV(time=T0, symbol="BTC", open=1, high=2, low=1, close=2, volume=3),
    ExecutionLog(time=T0, order_id="o", symbol="AAPL", stage="s", success=True),
    StrategyParam(strategy_id="s", param_name="p", value="1", updated_at=T0),
    RiskConfig(config_key="k", value=1, updated_at=T0),
]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: type(s).__name__)
def test_every_field_of_the_stored_contracts_is_a_column(sample: Contract) -> None:
    # The trusted builders receive a row with every field; a new field must get a column.
    assert set(type(sample).db_columns) == set(type(sample).model_fields)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: type(s).__name__)
def test_trusted_construction_equals_validated_construction(sample: Contract) -> None:
    cls = type(sample)
    values = {name: getattr(sample, name) for name in cls.model_fields}
    built = trusted_builder(cls)(dict(values))
    assert type(built) is cls
    assert built == sample
    assert built.model_dump() == sample.model_dump()
    assert built.to_json() == sample.to_json()
    assert built.__getstate__() == cls.model_construct(**values).__getstate__()  # validated
    assert built.model_fields_set == set(cls.model_fields)
    with pytest.raises(Exception, match="frozen"):
        built.symbol = "X"  # type: ignore[attr-defined]
    other = trusted_builder(cls)(dict(values))
    name = next(iter(cls.model_fields))
    changed = built.model_copy(update={name: values[name]})
    assert changed == built
    assert other.model_fields_set == set(cls.model_fields)  # the shared set was not touched
