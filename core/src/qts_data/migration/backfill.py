"""Backfill: copy what Google Sheets holds into the database (seeds/002 §5.1, Phase 1-2).

Idempotent and resumable by construction: ledger entries are written once per
idempotency key and positions, strategy parameters and risk settings are
upserts, so running it again, or after an interruption, copies only what is
missing and changes nothing else. It reads each side once and writes only what
differs (positions not equal field by field, ledger entries the target lacks),
in batches (``save_positions``, ``append_ledger_batch``: a spreadsheet takes a
batch in one request), so a run with nothing to copy writes nothing. Rows the source could not read (a person's
typo in a sheet) are not copied: the report names each one (``unreadable``), and
the command exits non-zero, so a backfill never signs off a partial copy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from qts_data.errors import NotSupportedError
from qts_data.interfaces import Capability, DataSourceAdapter, RowErrorReporting
from qts_data.migration.compare import ledger_key, same_contract

Progress = Callable[[str, int, int], None]  # (what, done, total)


@dataclass
class BackfillReport:
    copied: dict[str, int] = field(default_factory=dict)  # newly written
    already_there: dict[str, int] = field(default_factory=dict)  # ledger entries skipped as present
    skipped: list[str] = field(default_factory=list)  # parts the source does not hold
    unreadable: list[str] = field(default_factory=list)  # rows the source could not read

    @property
    def complete(self) -> bool:
        return not self.unreadable

    def as_dict(self) -> dict[str, Any]:
        return {
            "copied": self.copied,
            "already_there": self.already_there,
            "skipped": self.skipped,
            "unreadable": self.unreadable,
        }


#: Rows handed to one ``save_positions`` / ``append_ledger_batch`` call.
BATCH = 500


def _unreadable(source: DataSourceAdapter, report: BackfillReport) -> None:
    if isinstance(source, RowErrorReporting):
        report.unreadable.extend(source.last_read_errors)


async def backfill(
    source: DataSourceAdapter, target: DataSourceAdapter, progress: Progress = lambda *_: None
) -> BackfillReport:
    report = BackfillReport()

    positions = await source.fetch_positions()
    _unreadable(source, report)
    held = {p.symbol: p for p in await target.fetch_positions()}
    # updated_at is left out: a row a person typed without one reads as "now" every time.
    changed = [
        p for p in positions if not same_contract(held.get(p.symbol), p, ignore=("updated_at",))
    ]
    for start in range(0, len(changed), BATCH):
        await target.save_positions(changed[start : start + BATCH])
        progress("positions", min(start + BATCH, len(changed)), len(changed))
    report.copied["positions"] = len(changed)
    report.already_there["positions"] = len(positions) - len(changed)

    ledger = await source.fetch_ledger()
    _unreadable(source, report)
    recorded = {ledger_key(e) for e in await target.fetch_ledger()}
    missing = [e for e in ledger if ledger_key(e) not in recorded]
    new = 0
    for start in range(0, len(missing), BATCH):
        new += await target.append_ledger_batch(missing[start : start + BATCH])
        progress("ledger", min(start + BATCH, len(missing)), len(missing))
    report.copied["ledger"] = new
    report.already_there["ledger"] = len(ledger) - new

    for capability, name in (
        (Capability.STRATEGIES, "strategies"),
        (Capability.RISK, "risk_configs"),
    ):
        if capability not in source.capabilities:
            report.skipped.append(name)
            continue
        try:
            rows: list[Any] = (
                list(await source.fetch_strategy_params())
                if name == "strategies"
                else list(await source.fetch_risk_configs())
            )
        except NotSupportedError:
            report.skipped.append(name)
            continue
        _unreadable(source, report)
        for n, row in enumerate(rows, 1):
            if name == "strategies":
                await target.save_strategy_param(row)
            else:
                await target.save_risk_config(row)
            progress(name, n, len(rows))
        report.copied[name] = len(rows)
    return report
