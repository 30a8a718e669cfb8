"""Backfill and verify between two stores (Sheets and the database, here both in memory)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from qts_data.contracts import LedgerEntry, Position, RiskConfig
from qts_data.migration import backfill, verify
from qts_data_memory.adapter import MemoryAdapter

T = datetime(2024, 5, 2, 1, 0, tzinfo=timezone.utc)


def entry(order_id: str, qty: str = "1") -> LedgerEntry:
    return LedgerEntry(
        timestamp=T, symbol="005930", side="BUY", qty=qty, price="71000", order_id=order_id
    )


async def filled_sheets() -> MemoryAdapter:
    sheets = MemoryAdapter()
    for n in range(120):
        await sheets.append_ledger(entry(f"o-{n}"))
    await sheets.save_position(Position(symbol="005930", qty="120", avg_price="71000"))
    await sheets.save_position(Position(symbol="000660", qty="3", avg_price="182000.5"))
    await sheets.save_risk_config(RiskConfig(config_key="max_exposure", value="5000000"))
    return sheets


async def test_backfill_copies_everything_then_verify_agrees() -> None:
    sheets, db = await filled_sheets(), MemoryAdapter()
    seen: list[tuple[str, int, int]] = []
    report = await backfill(sheets, db, lambda what, done, total: seen.append((what, done, total)))
    assert report.copied == {"positions": 2, "ledger": 120, "strategies": 0, "risk_configs": 1}
    assert ("ledger", 120, 120) in seen
    result = await verify(sheets, db)
    assert result.ok and result.ledger_checked == 120 and result.positions_checked == 2


async def test_backfill_again_copies_nothing_new_and_resumes_after_an_interruption() -> None:
    sheets, db = await filled_sheets(), MemoryAdapter()
    for n in range(50):  # an earlier run stopped half-way
        await db.append_ledger(entry(f"o-{n}"))
    report = await backfill(sheets, db)
    assert report.copied["ledger"] == 70 and report.already_there["ledger"] == 50
    again = await backfill(sheets, db)
    assert again.copied["ledger"] == 0 and again.already_there["ledger"] == 120
    assert len(await db.fetch_ledger()) == 120


async def test_verify_reports_each_kind_of_mismatch() -> None:
    sheets, db = await filled_sheets(), MemoryAdapter()
    await backfill(sheets, db)
    await db.save_position(Position(symbol="000660", qty="4", avg_price="182000.5"))
    await db.save_position(Position(symbol="035420", qty="1", avg_price="1"))
    await sheets.append_ledger(entry("only-in-sheets"))
    await db.append_ledger(entry("different", qty="2"))
    await sheets.append_ledger(entry("different", qty="3"))
    result = await verify(sheets, db)
    problems = {str(m) for m in result.mismatches}
    assert problems == {
        "position 000660: Sheets (3, 182000.5) vs database (4, 182000.5)",
        "position 035420: missing in Sheets",
        "ledger only-in-sheets: missing in the database",
        "ledger different: differs (qty: 3 vs 2, amount: 213000.00 vs 142000.00)",
    }
    assert not result.ok


async def test_verify_normalises_number_representations() -> None:
    sheets, db = MemoryAdapter(), MemoryAdapter()
    await sheets.save_position(Position(symbol="A", qty="1000", avg_price="10.5"))
    await db.save_position(
        Position(symbol="A", qty=Decimal("1000.00000000"), avg_price=Decimal("10.50"))
    )
    assert (await verify(sheets, db)).ok


async def test_records_still_in_the_outbox_are_pending_not_mismatches() -> None:
    sheets, db = MemoryAdapter(), MemoryAdapter()
    await sheets.append_ledger(entry("o-new"))
    result = await verify(sheets, db, pending=["o-new"])
    assert result.ok and result.pending == ["o-new"]
