"""``qts-data backfill`` and ``qts-data verify``: the Sheets → database migration toolkit."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from qts_data.cli.check_cmd import config_argument
from qts_data.cli.errors import EXIT_UNHEALTHY, fail
from qts_data.cli.output import console, echo_json
from qts_data.compositions.hybrid import HybridAdapter
from qts_data.interfaces import OutboxHosting
from qts_data.migration import BackfillReport, VerifyReport, backfill, verify
from qts_data.outbox.handover import EarlierOutbox
from qts_data.stack import Stack, open_stack

#: Mismatches and unreadable rows printed (``--json`` gives all).
SHOWN = 20


def find_hybrid(stack: Stack) -> HybridAdapter:
    """The stack's adapter if it is a hybrid, else its first hybrid component."""
    if isinstance(stack.adapter, HybridAdapter):
        return stack.adapter
    for component in stack.components.values():
        if isinstance(component, HybridAdapter):
            return component
    fail(
        f"{stack.config.source}: no adapter of type 'hybrid' (backfill and verify need the Sheets/database pair)"
    )
    raise AssertionError  # unreachable: fail() exits


async def deliver_database_outbox(hybrid: HybridAdapter) -> None:
    """Deliver to Sheets what the database's outbox still holds (DB_ONLY after phase 3),
    before the copy: otherwise those older records would be delivered after it, over the
    newer values it copied, when the stack next opens."""
    if isinstance(hybrid.db, OutboxHosting):
        outbox = hybrid.db.transactional_outbox(f"backfill-{os.getpid()}")
        earlier = EarlierOutbox("database", outbox, hybrid.sheets, hybrid.db)
        await earlier.hand_over(hybrid.sheets, timeout_s=hybrid.handover_timeout_s)
        if earlier.problem:
            fail(earlier.problem)


@click.command("backfill")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--to-sheets",
    is_flag=True,
    help="Copy the other way, the database into Sheets (before a rollback from DB_ONLY).",
)
def backfill_command(config: str | None, to_sheets: bool) -> None:
    """Copy Google Sheets into the database of CONFIG's hybrid adapter (idempotent, resumable)."""
    source = config_argument(config)
    stack = open_stack(Path(source) if source else None, inspect_only=True)
    out = console()

    async def run() -> BackfillReport:
        async with stack:
            hybrid = find_hybrid(stack)
            with Progress(
                TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(), console=out
            ) as bar:
                tasks: dict[str, TaskID] = {}

                def progress(what: str, done: int, total: int) -> None:
                    if what not in tasks:
                        tasks[what] = bar.add_task(what, total=max(total, 1))
                    bar.update(tasks[what], completed=done, total=max(total, 1))

                if to_sheets:
                    await deliver_database_outbox(hybrid)
                    return await backfill(hybrid.db, hybrid.sheets, progress)
                return await backfill(hybrid.sheets, hybrid.db, progress)

    report = asyncio.run(run())
    target = "Sheets" if to_sheets else "the database"
    parts = [f"{what} {n}" for what, n in report.copied.items()]
    line = f"backfill into {target}: " + ", ".join(parts)
    if report.already_there.get("ledger"):
        line += f" (ledger entries already in {target}: {report.already_there['ledger']})"
    if report.skipped:
        line += f"; not held by the source: {', '.join(report.skipped)}"
    out.print(line)
    if not report.complete:
        for message in report.unreadable[:SHOWN]:
            out.print(f"  not copied: {message}")
        more = len(report.unreadable) - SHOWN
        if more > 0:
            out.print(f"  ... and {more} more")
        fail(
            f"{len(report.unreadable)} row(s) of the source could not be read and were not "
            "copied; correct them and run backfill again",
            EXIT_UNHEALTHY,
        )


@click.command("verify")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def verify_command(config: str | None, as_json: bool) -> None:
    """Compare Sheets and the database (positions, ledger); exit 1 when they differ."""
    source = config_argument(config)
    stack = open_stack(Path(source) if source else None, inspect_only=True)

    async def run() -> VerifyReport:
        async with stack:
            hybrid = find_hybrid(stack)
            pending = (
                [key for _, key in await hybrid.outbox.pending_keys()] if hybrid.outbox else []
            )
            return await verify(hybrid.sheets, hybrid.db, pending)

    report = asyncio.run(run())
    if as_json:
        echo_json(report.as_dict())
    else:
        out = console()
        out.print(
            f"checked {report.positions_checked} positions and {report.ledger_checked} ledger entries; "
            f"{len(report.pending)} still in the outbox"
        )
        counts = report.counts()
        if report.mismatches:
            summary = ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in counts.items() if n)
            table = Table(
                title=f"{len(report.mismatches)} mismatches ({summary})", title_justify="left"
            )
            for column in ("kind", "key", "problem"):
                table.add_column(column)
            for m in report.mismatches[:SHOWN]:
                table.add_row(m.kind, m.key, m.problem)
            out.print(table)
            if len(report.mismatches) > SHOWN:
                out.print(f"... and {len(report.mismatches) - SHOWN} more (all with --json)")
        if report.unverifiable:
            out.print(
                f"{len(report.unverifiable)} row(s) could not be read, so they cannot be verified:"
            )
            for message in report.unverifiable[:SHOWN]:
                out.print(f"  {message}")
            if len(report.unverifiable) > SHOWN:
                out.print(f"  ... and {len(report.unverifiable) - SHOWN} more (all with --json)")
        if report.ok:
            out.print("[green]no mismatches[/]")
    if not report.ok:
        sys.exit(EXIT_UNHEALTHY)
