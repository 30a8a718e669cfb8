"""``qts-data check``: validate a configuration, open the stack, print every component's health."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from qts_data.cli.errors import EXIT_UNHEALTHY
from qts_data.cli.output import console, echo_json, state_style
from qts_data.config.loader import ENV_CONFIG
from qts_data.config.secrets import mask, public_view
from qts_data.stack import StackHealth, open_stack


def cache_table(summary: dict[str, Any]) -> Table:
    """Per-kind cache statistics, with the breaker and near cache in the title."""
    title = f"cache {summary['client']}"
    if summary.get("breaker"):
        title += f"  breaker {summary['breaker']['state']}"
    if summary.get("near_cache"):
        title += f"  near cache {summary['near_cache']['entries']} entries"
    if summary.get("bypass"):
        title += "  BYPASSED"
    elif summary.get("read_only"):
        title += "  READ-ONLY"
    table = Table(title=title, title_justify="left")
    columns = (
        "kind",
        "ttl",
        "budget",
        "hits",
        "misses",
        "hit rate",
        "stale",
        "merged",
        "fallbacks",
        "p99",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "kind" else "right")
    for kind, s in summary["kinds"].items():
        rate = "-" if s["hit_rate"] is None else f"{s['hit_rate']:.1%}"
        p99 = s["latency_us"]["p99"]
        table.add_row(
            kind,
            f"{s['ttl_ms']} ms",
            f"{s['budget_ms']:g} ms",
            f"{s['hits']:,}",
            f"{s['misses']:,}",
            rate,
            f"{s['stale_reads']:,}",
            f"{s['merged_loads']:,}",
            f"{s['fallbacks']:,}",
            "-" if p99 is None else f"{p99:,.0f} µs",
        )
    return table


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
    stack = open_stack(Path(source) if source else None, inspect_only=True)

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
        for c in health.components:  # a hybrid's dual-write outbox
            details = c.status.details
            if "outbox_depth" in details:
                age = details.get("outbox_oldest_age_s")
                out.print(
                    f"outbox of {c.kind}:{c.name} ({details.get('outbox', '?')}): "
                    f"{details['outbox_depth']} waiting"
                    + ("" if age is None else f", oldest {age:.1f} s")
                )
        if stack.config.stack.cache is not None:
            out.print(cache_table(health.cache))
        out.print(
            f"stack: [{state_style(health.state.value)}]{health.state.value}[/]  safety: {health.safety}"
        )
    if not health.healthy:
        sys.exit(EXIT_UNHEALTHY)
