"""``qts-data migrate``: bring the schema of the stack's store to the newest version."""

from __future__ import annotations

import asyncio

import click

from qts_data.cli.db_cmd import adapter_option, load_stack, pick_adapter
from qts_data.cli.output import console, echo_json
from qts_data.config.secrets import mask
from qts_data.interfaces import Migratable, MigrationReport
from qts_data.plugins import ComponentKind


@click.command("migrate")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@adapter_option()
@click.option("--dry-run", is_flag=True, help="Print the SQL that would run; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def migrate_command(
    config: str | None, adapter_name: str | None, dry_run: bool, as_json: bool
) -> None:
    """Apply the pending schema migrations of CONFIG's store (running it again is harmless).

    The store is the adapter named by --adapter, else the first adapter of the
    configuration that supports migrations.
    """
    stack = load_stack(config)
    name, migratable = pick_adapter(stack, Migratable, "migrate", adapter_name)

    async def run() -> MigrationReport:
        # Only the store is opened: the rest of the stack may need the schema this creates
        # (a hybrid's outbox in the database), or servers that have nothing to do with it.
        await stack.open(only={(ComponentKind.ADAPTER, name)})
        try:
            done: MigrationReport = await migratable.migrate(dry_run=dry_run)
        finally:
            await stack.aclose()
        return done

    report = asyncio.run(run())
    if as_json:
        echo_json(
            {
                "adapter": name,
                "dry_run": dry_run,
                "from_version": report.from_version,
                "to_version": report.to_version,
                "applied": report.applied,
                "notes": report.notes,
                "statements": report.statements if dry_run else [],
            }
        )
        return
    if dry_run:
        for note in report.notes:
            click.echo(f"-- {mask(note)}")
        if not report.statements:
            click.echo(
                f"-- adapters.{name}: schema version {report.from_version} is the newest; nothing to run"
            )
        for statement in report.statements:
            click.echo(mask(statement))
        return
    out = console()
    for note in report.notes:
        out.print(mask(note))
    if report.applied:
        out.print(
            f"adapters.{name}: schema version {report.from_version} -> {report.to_version}, "
            f"applied {', '.join(report.applied)}"
        )
    else:
        out.print(
            f"adapters.{name}: schema version {report.to_version} is the newest; nothing to apply"
        )
