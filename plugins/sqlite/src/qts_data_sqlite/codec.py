"""Contracts to SQLite values and back, exactly.

* Decimals are TEXT with every digit (``format(d, "f")``: never an exponent,
  never a float), read back with ``Decimal(text)``.
* Times are INTEGER microseconds since the Unix epoch in UTC, so comparisons,
  range scans and ordering are exact integer operations; read back as aware
  UTC datetimes.
* Rows read back were validated when written (the schema only receives values
  of validated contracts), so they are rebuilt without validation by
  :func:`trusted_builder`: the hot read path pays for the values, not for pydantic.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from types import MemberDescriptorType
from typing import Any, TypeVar, cast

from qts_data.contracts import Contract, TickData
from qts_data.errors import ContractError

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
    if not isinstance(value, datetime):
        raise ContractError(f"{where}: {what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ContractError(
            f"{where}: {what} {value.isoformat()} is naive; give a timezone-aware time"
        )
    return value


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


def _slot_setter(cls: type, name: str) -> Callable[[Any, Any], None] | None:
    """The ``__set__`` of the slot ``name`` that ``cls`` inherits, or None."""
    for klass in cls.__mro__:
        found = vars(klass).get(name)
        if found is not None:
            return found.__set__ if isinstance(found, MemberDescriptorType) else None
    return None


def trusted_builder(cls: type[C]) -> Callable[[dict[str, Any]], C]:
    """A function building ``cls`` from a dict of *every* field, without validation.

    It does what ``cls.model_construct(**values)`` does for a frozen model
    without private attributes or extra fields, in a sixth of the time: the
    dict becomes the instance's ``__dict__`` and pydantic's three slots are set
    directly. All instances share one ``model_fields_set`` (every field): the
    contracts are frozen, and pydantic copies that set before changing it
    (``model_copy``). The builder checks once that its result equals
    ``model_construct``'s, and falls back to ``model_construct`` when pydantic
    lays models out differently.
    """
    fields = tuple(cls.model_fields)

    def construct(values: dict[str, Any]) -> C:
        # pydantic types model_construct as returning the class that defines it (Contract).
        return cast(C, cls.model_construct(**values))

    config = cls.model_config
    setters = [
        _slot_setter(cls, name)
        for name in ("__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")
    ]
    if (
        cls.__private_attributes__
        or config.get("extra") == "allow"
        or not config.get("frozen")
        or None in setters
    ):
        return construct
    set_fields, set_extra, set_private = cast(list[Callable[[Any, Any], None]], setters)
    new = object.__new__
    set_attr = object.__setattr__
    fields_set = set(fields)

    def build(values: dict[str, Any]) -> C:
        obj = new(cls)
        set_attr(obj, "__dict__", values)
        set_fields(obj, fields_set)
        set_extra(obj, None)
        set_private(obj, None)
        return obj

    probe = dict.fromkeys(fields)
    try:
        same = build(dict(probe)).__getstate__() == construct(dict(probe)).__getstate__()
    except Exception:
        same = False
    return build if same else construct
