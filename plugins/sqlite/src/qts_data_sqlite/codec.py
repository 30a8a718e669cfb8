"""Contracts to SQLite values and back, exactly.

* Decimals are TEXT with every digit (``format(d, "f")``: never an exponent,
  never a float), read back with ``Decimal(text)``.
* Times are INTEGER microseconds since the Unix epoch in UTC, so comparisons,
  range scans and ordering are exact integer operations; read back as aware
  UTC datetimes.
* Rows read back were validated when written (the schema only receives values
  of validated contracts), so they are rebuilt without validation by
  :func:`qts_data.contracts.trusted.trusted_builder`: the hot read path pays for the values, not for pydantic.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TypeVar, cast

from qts_data.contracts import Contract, TickData, checks

C = TypeVar("C", bound=Contract)

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_us(when: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact)."""
    return (when - EPOCH) // _MICROSECOND


def from_us(us: int) -> datetime:
    """The aware UTC datetime ``us`` microseconds after the epoch (exact)."""
    return EPOCH + timedelta(0, 0, us)


def check_time(value: object, what: str, where: str) -> datetime:
    """``value`` when it is an aware datetime; ContractError naming ``where`` and ``what`` otherwise."""
    checks.check_time(value, what, where, required=True)
    return cast(datetime, value)


def opt_us(value: datetime | None, what: str, where: str) -> int | None:
    return None if value is None else to_us(check_time(value, what, where))


def dec(value: Decimal) -> str:
    return format(value, "f")


def opt_dec(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def read_dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _canonical(value: Decimal | None) -> str | None:
    """One text per numeric value ("100" for 100, 100.0 and 1E+2), as Decimal equality sees them."""
    if value is None:
        return None
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def tick_dedup(tick: TickData) -> str:
    """The part of :attr:`TickData.dedup_key` beyond ``(symbol, time)``, as one text.

    ``T<trade_id>`` for a tick with an exchange id; otherwise ``A`` and the other
    fields as JSON, with numbers in canonical form so that ticks the contract
    calls equal (``Decimal("100") == Decimal("100.0")``) get the same key, and
    None kept apart from any text.
    """
    if tick.trade_id is not None:
        return "T" + tick.trade_id
    return "A" + json.dumps(
        [
            _canonical(tick.price),
            tick.volume,
            _canonical(tick.bid),
            _canonical(tick.ask),
            tick.source,
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )
