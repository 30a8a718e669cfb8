"""``qts-data check``: validate a configuration, open the stack, print every component's health."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import click
from rich.table import Table

from qts_data.cli.errors import EXIT_UNHEALTHY
from qts_data.cli.output import console, echo_json, state_style
from qts_data.config.loader import ENV_CONFIG
from qts_data.config.secrets import mask, public_view
from qts_data.stack import StackHealth, open_stack


def config_argument(path: str | None) -> str | None:
    """The configuration to use: the argument, else $QTS_DATA_CONFIG, else the embedded default."""
    return path or os.environ.get(ENV_CONFIG) or None


@click.command("check")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def check_command(config: str | None, as_json: bool) -> None:
    """Validate CONFIG (default: $QTS_DATA_CONFIG or the embedded default), open it, report health.

    Exits 1 when any component is not healthy, 2 when the configuration is invalid.
    """
    source = config_argument(config)
    stack = open_stack(Path(source) if source else None)

    async def run() -> StackHealth:
        async with stack:
            return await stack.health()

    health = asyncio.run(run())
    if as_json:
        data = health.as_dict()
        data["source"] = stack.config.source
        data["settings"] = {
            c.path: {"type": c.spec.name, **public_view(c.settings)}
            for c in stack.config.components.values()
        }
        echo_json(data)
    else:
        out = console()
        out.print(f"configuration: {mask(stack.config.source)}")
        table = Table(title_justify="left", title="components")
        for column in ("component", "type", "state", "latency", "message"):
            table.add_column(column)
        for c in health.components:
            latency = f"{c.status.latency_ms:.1f} ms" if c.status.latency_ms is not None else "-"
            table.add_row(
                f"{c.kind}:{c.name}",
                c.type,
                f"[{state_style(c.status.state.value)}]{c.status.state.value}[/]",
                latency,
                mask(c.status.message),
            )
        out.print(table)
        if stack.config.stack.cache is not None:
            cache = Table(title=f"cache {health.cache['client']}", title_justify="left")
            for column in ("kind", "ttl", "hits", "misses", "hit rate", "fallbacks"):
                cache.add_column(column, justify="right" if column != "kind" else "left")
            for kind, s in health.cache["kinds"].items():
                rate = "-" if s["hit_rate"] is None else f"{s['hit_rate']:.1%}"
                cache.add_row(
                    kind,
                    f"{s['ttl_ms']} ms",
                    str(s["hits"]),
                    str(s["misses"]),
                    rate,
                    str(s["fallbacks"]),
                )
            out.print(cache)
        out.print(
            f"stack: [{state_style(health.state.value)}]{health.state.value}[/]  safety: {health.safety}"
        )
    if not health.healthy:
        sys.exit(EXIT_UNHEALTHY)
