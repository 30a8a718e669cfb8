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


def check_range(start: object, end: object, where: str) -> None:
    check_time(start, "start", where)
    check_time(end, "end", where)


def expect_element(value: object, kind: type[Contract], where: str) -> None:
    """An element of a bulk write must be the contract the method takes."""
    if not isinstance(value, kind):
        raise ElementTypeError(f"{where}: expected {kind.__name__}, got {type(value).__name__}")
