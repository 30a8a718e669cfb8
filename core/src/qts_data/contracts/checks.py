"""Checks of the arguments adapters receive, shared by every adapter so their errors agree."""

from __future__ import annotations

from datetime import datetime

from qts_data.contracts._base import Contract
from qts_data.errors import ContractError, ElementTypeError


def check_time(value: object, what: str, where: str, *, required: bool = False) -> None:
    """``value`` must be a timezone-aware datetime (None passes, as an open end of a range,
    unless ``required``)."""
    if value is None and not required:
        return
    if not isinstance(value, datetime):
        raise ContractError(f"{where}: {what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ContractError(
            f"{where}: {what} {value.isoformat()} is naive; give a timezone-aware time"
        )


def check_range(start: object, end: object, where: str, *, required: bool = False) -> None:
    """``start`` and ``end`` are aware datetimes (or None, an open end, unless ``required``)
    and ``start`` is not after ``end``: a reversed range is a mistake, not an empty answer."""
    check_time(start, "start", where, required=required)
    check_time(end, "end", where, required=required)
    check_order(start, end, where)


def check_order(start: object, end: object, where: str) -> None:
    """``start`` is not after ``end`` (either may be None, an open end)."""
    if isinstance(start, datetime) and isinstance(end, datetime) and start > end:
        raise ContractError(f"{where}: start {start.isoformat()} is after end {end.isoformat()}")


def expect_element(value: object, kind: type[Contract], where: str) -> None:
    """An element of a bulk write must be the contract the method takes."""
    if not isinstance(value, kind):
        raise ElementTypeError(f"{where}: expected {kind.__name__}, got {type(value).__name__}")
