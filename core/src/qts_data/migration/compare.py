"""How the rows of two stores are matched and compared (by backfill and verify).

Ledger entries match by idempotency key, positions by symbol; values compare as
Decimals (``1,000`` read from a sheet is ``1000.00`` in the database) and times as
instants (a KST and a UTC rendering of one moment agree).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from qts_data.contracts import Contract, LedgerEntry

__all__ = ["ledger_key", "same_contract", "same_value"]


def ledger_key(entry: LedgerEntry) -> str:
    return entry.idempotency_key or f"{entry.symbol}@{entry.timestamp.isoformat()}"


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return a.compare(b) == 0
    return bool(a == b)


def same_contract(a: Contract | None, b: Contract, *, ignore: tuple[str, ...] = ()) -> bool:
    """Equal field by field (by :func:`same_value`), but for the fields in ``ignore``."""
    if a is None or type(a) is not type(b):
        return False
    return all(
        same_value(getattr(a, name), getattr(b, name))
        for name in type(b).model_fields
        if name not in ignore
    )
