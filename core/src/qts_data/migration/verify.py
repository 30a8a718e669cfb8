"""Consistency check between Google Sheets and the database (seeds/002 §5.3).

Positions are compared by symbol (quantity and average price), ledger entries
by idempotency key (every field). Numbers are compared as Decimals and times
as instants, so ``1,000`` and ``1000.00`` or a KST and a UTC rendering of the
same moment agree. Records still waiting in the outbox are reported as pending,
not as mismatches. Rows a store could not read (a person's typo in a sheet) are
unverifiable: each is named, and they fail the check like a mismatch - a row
that neither side can show is the loss a sign-off must not miss.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from qts_data.contracts import LedgerEntry, Position
from qts_data.interfaces import DataSourceAdapter, RowErrorReporting
from qts_data.migration.compare import ledger_key, same_value

_LEDGER_FIELDS = (
    "timestamp",
    "symbol",
    "side",
    "qty",
    "price",
    "amount",
    "fee",
    "strategy_tag",
    "broker",
)


@dataclass(frozen=True)
class Mismatch:
    kind: str  # "position" | "ledger"
    key: str
    problem: str

    def __str__(self) -> str:
        return f"{self.kind} {self.key}: {self.problem}"


@dataclass
class VerifyReport:
    positions_checked: int = 0
    ledger_checked: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # keys still in the outbox
    #: Rows a store could not read (sheet, row, column, problem): neither side shows them.
    unverifiable: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.unverifiable

    def counts(self) -> dict[str, int]:
        """Mismatches by class, and the unverifiable rows."""
        out = {"only_in_sheets": 0, "only_in_database": 0, "different": 0, "duplicated": 0}
        for m in self.mismatches:
            if m.problem == "missing in the database":
                out["only_in_sheets"] += 1
            elif m.problem == "missing in Sheets":
                out["only_in_database"] += 1
            elif m.problem.startswith("duplicated"):
                out["duplicated"] += 1
            else:
                out["different"] += 1
        out["unverifiable"] = len(self.unverifiable)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "positions_checked": self.positions_checked,
            "ledger_checked": self.ledger_checked,
            "counts": self.counts(),
            "unverifiable": self.unverifiable,
            "pending_in_outbox": self.pending,
            "mismatches": [
                {"kind": m.kind, "key": m.key, "problem": m.problem} for m in self.mismatches
            ],
        }


def compare_positions(
    sheets: Iterable[Position], db: Iterable[Position], pending: set[str]
) -> list[Mismatch]:
    left = {p.symbol: p for p in sheets}
    right = {p.symbol: p for p in db}
    found = []
    for symbol in sorted(set(left) | set(right)):
        if symbol in pending:
            continue
        a, b = left.get(symbol), right.get(symbol)
        if a is None:
            found.append(Mismatch("position", symbol, "missing in Sheets"))
        elif b is None:
            found.append(Mismatch("position", symbol, "missing in the database"))
        elif not (same_value(a.qty, b.qty) and same_value(a.avg_price, b.avg_price)):
            found.append(
                Mismatch(
                    "position",
                    symbol,
                    f"Sheets ({a.qty}, {a.avg_price}) vs database ({b.qty}, {b.avg_price})",
                )
            )
    return found


def compare_ledgers(
    sheets: Iterable[LedgerEntry], db: Iterable[LedgerEntry], pending: set[str]
) -> list[Mismatch]:
    found = []
    left: dict[str, LedgerEntry] = {}
    for entry in sheets:
        key = ledger_key(entry)
        if key in left:
            found.append(Mismatch("ledger", key, "duplicated in Sheets"))
        left[key] = entry
    right: dict[str, LedgerEntry] = {}
    for entry in db:
        key = ledger_key(entry)
        if key in right:
            found.append(Mismatch("ledger", key, "duplicated in the database"))
        right[key] = entry
    for key in sorted(set(left) | set(right)):
        if key in pending:
            continue
        a, b = left.get(key), right.get(key)
        if a is None:
            found.append(Mismatch("ledger", key, "missing in Sheets"))
        elif b is None:
            found.append(Mismatch("ledger", key, "missing in the database"))
        else:
            differ = [f for f in _LEDGER_FIELDS if not same_value(getattr(a, f), getattr(b, f))]
            if differ:
                detail = ", ".join(f"{f}: {getattr(a, f)} vs {getattr(b, f)}" for f in differ)
                found.append(Mismatch("ledger", key, f"differs ({detail})"))
    return found


async def verify(
    sheets: DataSourceAdapter, db: DataSourceAdapter, pending: Iterable[str] = ()
) -> VerifyReport:
    """Compare positions and ledger of the two stores."""
    waiting = set(pending)
    unreadable: list[str] = []

    async def read(adapter: DataSourceAdapter, fetch: Any) -> Any:
        rows = await fetch()
        if isinstance(adapter, RowErrorReporting):
            unreadable.extend(adapter.last_read_errors)
        return rows

    sheet_positions = await read(sheets, sheets.fetch_positions)
    db_positions = await read(db, db.fetch_positions)
    sheet_ledger = await read(sheets, sheets.fetch_ledger)
    db_ledger = await read(db, db.fetch_ledger)
    report = VerifyReport(
        positions_checked=len(
            {p.symbol for p in sheet_positions} | {p.symbol for p in db_positions}
        ),
        ledger_checked=len(set(map(ledger_key, sheet_ledger)) | set(map(ledger_key, db_ledger))),
        pending=sorted(waiting),
        unverifiable=unreadable,
    )
    report.mismatches = compare_positions(sheet_positions, db_positions, waiting) + compare_ledgers(
        sheet_ledger, db_ledger, waiting
    )
    return report
