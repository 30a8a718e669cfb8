"""``qts-data query ohlcv SYMBOL``: candles of the stack's adapter as a table, CSV or JSON."""

from __future__ import annotations

import asyncio
import csv
import io
from decimal import Decimal

import click
from rich.table import Table

from qts_data.cli.db_cmd import (
    INTERVALS,
    adapter_option,
    load_stack,
    parse_window,
    pick_adapter,
    time_options,
)
from qts_data.cli.output import console
from qts_data.contracts import OHLCV, Interval

COLUMNS = ("time", "open", "high", "low", "close", "volume")


def _plain(value: Decimal) -> str:
    return format(value, "f")


@click.group("query")
def query_group() -> None:
    """Read data through the stack's adapter."""


@query_group.command("ohlcv")
@click.argument("symbol")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@time_options
@click.option(
    "--interval",
    default="1d",
    show_default=True,
    type=click.Choice(INTERVALS),
    help="Candle interval.",
)
@click.option(
    "--format",
    "output",
    default="table",
    show_default=True,
    type=click.Choice(["table", "csv", "json"]),
    help="How to print the candles.",
)
@adapter_option()
def ohlcv_command(
    symbol: str,
    config: str | None,
    start: str,
    end: str,
    interval: str,
    output: str,
    adapter_name: str | None,
) -> None:
    """Candles of SYMBOL whose bucket starts in [--from, --to) (stack.adapter.fetch_ohlcv)."""
    begin, finish = parse_window(start, end)
    stack = load_stack(config)
    _, adapter = pick_adapter(stack, None, "query ohlcv", adapter_name)

    async def run() -> list[OHLCV]:
        async with stack:
            found: list[OHLCV] = await adapter.fetch_ohlcv(
                symbol, begin, finish, Interval(interval)
            )
            return found

    candles = asyncio.run(run())
    if output == "json":
        click.echo("[" + ",".join(c.to_json() for c in candles) + "]")
        return
    rows = [
        (
            c.time.isoformat(),
            _plain(c.open),
            _plain(c.high),
            _plain(c.low),
            _plain(c.close),
            str(c.volume),
        )
        for c in candles
    ]
    if output == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
        click.echo(buffer.getvalue(), nl=False)
        return
    table = Table(title=f"{symbol} {interval}", title_justify="left")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "time" else "right", overflow="fold")
    for row in rows:
        table.add_row(*row)
    out = console()
    out.print(table)
    out.print(f"{len(candles)} candle(s)")
