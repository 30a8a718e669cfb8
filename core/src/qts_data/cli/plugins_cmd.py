"""``qts-data plugins``: every discovered plugin, what it registers, and whether it loaded."""

from __future__ import annotations

import click
from rich.table import Table

from qts_data.cli.output import console, echo_json, state_style
from qts_data.config.secrets import mask
from qts_data.plugins.manager import get_plugin_host


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def plugins_command(as_json: bool) -> None:
    """List discovered plugins with their distribution, version, components and load status."""
    host = get_plugin_host()
    records = host.records
    if as_json:
        echo_json([r.as_dict() for r in records])
        return
    table = Table(title="qts-data plugins", title_justify="left")
    for column in ("plugin", "distribution", "version", "status", "components"):
        table.add_column(column)
    for r in records:
        components = ", ".join(f"{kind.value}:{name}" for kind, name in r.components) or "-"
        status = f"[{state_style(r.status)}]{r.status}[/]"
        if r.error:
            status += f"\n[dim]{mask(r.error)}[/]"
        table.add_row(
            r.name + (" (built-in)" if r.builtin else ""),
            r.distribution or "-",
            r.version or "-",
            status,
            components,
        )
    console().print(table)
