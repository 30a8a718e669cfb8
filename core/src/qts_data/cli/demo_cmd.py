"""``qts-data demo``: the main job of the data layer on a synthetic market, in a few seconds."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from qts_data.cli.errors import fail
from qts_data.cli.output import console
from qts_data.demo.persist import persistent_config, require_sqlite
from qts_data.demo.scenario import DemoReport, run_demo
from qts_data.demo.tiered_reads import TieredReport
from qts_data.stack import open_stack


@click.command("demo")
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    help="Run on this stack instead of the embedded default.",
)
@click.option(
    "--hours",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0.1, 48),
    help="Length of the session.",
)
@click.option("--trades", default=400, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--seed", default=7, show_default=True, type=int)
@click.option(
    "--persist",
    type=click.Path(dir_okay=False),
    help="Run on tiered storage over a SQLite file at this path (needs qts-data-sqlite); "
    "a second run starts from what the first stored.",
)
def demo_command(
    config: str | None, hours: float, trades: int, seed: int, persist: str | None
) -> None:
    """Run a synthetic market through a stack: ingest, candles, ledger and positions, cached reads."""
    out = console()
    started = time.perf_counter()
    if persist is not None:
        if config is not None:
            fail("demo: give --config or --persist, not both")
        require_sqlite()
        Path(persist).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        stack = open_stack(persistent_config(persist, seed=seed))
    else:
        stack = open_stack(Path(config) if config else None)
    columns = (
        TextColumn("{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=out, transient=False) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=max(total, 1))
            bar.update(tasks[step], completed=done, total=max(total, done, 1))

        async def run() -> DemoReport:
            async with stack:
                return await run_demo(
                    stack, hours=hours, trades=trades, seed=seed, progress=progress
                )

        report = asyncio.run(run())
    _print_report(report, time.perf_counter() - started, stack.config.source)


def _print_report(report: DemoReport, elapsed: float, source: str) -> None:
    out = console()
    start, end = report.session
    out.print(
        f"\n[bold]qts-data demo[/] on {source}: {len(report.symbols)} symbols, "
        f"session {start:%Y-%m-%d %H:%M} to {end:%H:%M} UTC"
    )
    rate = report.ticks_inserted / report.ingest_s if report.ingest_s else 0
    out.print(
        f"ticks: {report.ticks_generated:,} generated, {report.ticks_inserted:,} stored "
        f"({rate:,.0f}/s); re-ingesting the last 10 minutes stored "
        f"{report.ticks_reingested_inserted:,} and skipped "
        f"{report.ticks_reingested_duplicates:,} duplicates"
    )
    if report.tiered is not None:
        out.print(
            f"persistent store {report.tiered.store}: {report.tiered.ledger_before:,} ledger entries "
            "from earlier runs"
        )
    candles_from = "candles from ticks" if report.tiered is None else "candles (tiers, then ticks)"
    out.print(
        f"{candles_from}: "
        + ", ".join(f"{k} {v:,}" for k, v in report.candles.items())
        + f"; stored daily candles read back: {report.daily_candles}"
    )

    last = Table(title="last hour (1h candles)", title_justify="left")
    for column in ("symbol", "open", "high", "low", "close", "volume"):
        last.add_column(column, justify="left" if column == "symbol" else "right")
    for row in report.last_hour:
        last.add_row(
            row["symbol"], *(f"{row[k]:,}" for k in ("open", "high", "low", "close", "volume"))
        )
    out.print(last)

    out.print(
        f"ledger: {report.ledger_entries} entries; {report.retried_duplicates} retried writes recorded once; "
        f"{report.execution_logs} execution logs"
    )
    positions = Table(title="positions", title_justify="left")
    for column in ("symbol", "qty", "avg price"):
        positions.add_column(column, justify="left" if column == "symbol" else "right")
    for p in report.positions:
        positions.add_row(p["symbol"], f"{p['qty']:,}", f"{p['avg_price']:,}")
    out.print(positions)

    cache = Table(
        title=f"cache ({report.cache.get('client') or 'none'}), {report.cache_reads:,} risk-loop reads",
        title_justify="left",
    )
    for column in ("kind", "ttl", "hits", "misses", "hit rate"):
        cache.add_column(column, justify="left" if column == "kind" else "right")
    for kind, s in report.cache.get("kinds", {}).items():
        if s["hits"] or s["misses"]:
            cache.add_row(
                kind,
                f"{s['ttl_ms']} ms",
                f"{s['hits']:,}",
                f"{s['misses']:,}",
                f"{s['hit_rate']:.1%}" if s["hit_rate"] is not None else "-",
            )
    out.print(cache)
    if report.tiered is not None:
        _print_tiered(report.tiered)
    steps = ", ".join(f"{k} {v:.2f}s" for k, v in report.timings.items())
    out.print(f"stack health: {report.health}; {steps}; total {elapsed:.1f} s")


def _print_tiered(report: TieredReport) -> None:
    out = console()
    table = Table(
        title=f"tiered reads ({report.adapter}: memory, disk {report.disk or '-'}, "
        f"store {report.store}, upstream {report.source or '-'})",
        title_justify="left",
    )
    for column in (
        "read",
        "attempt",
        "served by",
        "cache hits",
        "candles",
        "from",
        "ms",
        "upstream",
    ):
        table.add_column(
            column,
            justify="left" if column in ("read", "attempt", "served by", "from") else "right",
        )
    for read in report.reads:
        table.add_row(
            read.kind,
            read.attempt,
            read.served_by,
            f"{read.cache_hits}/{read.reads}",
            f"{read.rows:,}",
            ", ".join(f"{tier} {n:,}" for tier, n in read.rows_by_tier.items()),
            f"{read.ms:.1f}",
            str(read.upstream_calls),
        )
    out.print(table)
    stats = report.stats
    tiers = ", ".join(
        f"{name} {t['hits']}/{t['consulted']}"
        for name, t in stats.get("tiers", {}).items()
        if t["consulted"]
    )
    rate = stats.get("hit_rate")
    out.print(
        f"upstream calls this run: {report.upstream_calls} ({report.upstream_candles:,} candles); "
        f"tier hits {tiers}; cache hit rate {rate:.1%}"
        if rate is not None
        else "no candle reads"
    )
