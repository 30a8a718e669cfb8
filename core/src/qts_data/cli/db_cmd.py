"""``qts-data db status|gaps|maintain``: storage, candle gaps and upkeep of a stack's store.

Also home of what the data commands (``migrate``, ``ingest``, ``query``, ``db``)
share: choosing the adapter that offers an optional operation, and reading times.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.table import Table

from qts_data.cli.check_cmd import config_argument
from qts_data.cli.output import console, echo_json
from qts_data.config.secrets import mask
from qts_data.contracts import Interval
from qts_data.errors import ConfigError, ContractError
from qts_data.interfaces import (
    DataSourceAdapter,
    GapChecking,
    Maintainable,
    MaintenanceReport,
    StorageInspectable,
    StorageReport,
)
from qts_data.plugins.manager import get_plugin_host
from qts_data.plugins.registry import ComponentKind
from qts_data.stack import Stack, open_stack

#: At most this many candle series are checked for gaps by ``db status``.
STATUS_GAP_SERIES = 50
F = TypeVar("F", bound=Callable[..., Any])
INTERVALS = [interval.value for interval in Interval]


# -- shared by the data commands ---------------------------------------------------------------


def adapter_option() -> Callable[[F], F]:
    return click.option(
        "--adapter",
        "adapter_name",
        metavar="NAME",
        help="The adapter component to use (default: the first one of the configuration that can).",
    )


def load_stack(config: str | None) -> Stack:
    """The stack of CONFIG (or $QTS_DATA_CONFIG, or the embedded default), built but not opened
    (inspect-only: a hybrid's relay, which the running process owns, stays idle)."""
    source = config_argument(config)
    return open_stack(Path(source) if source else None, inspect_only=True)


def _adapters(stack: Stack) -> list[tuple[str, str, DataSourceAdapter]]:
    """``(name, type, adapter)`` of the stack's adapter components, in configuration order."""
    found = []
    for (kind, name), component_config in stack.config.components.items():
        if kind is not ComponentKind.ADAPTER:
            continue
        component = stack.components[(kind, name)]
        if isinstance(component, DataSourceAdapter):
            found.append((name, component_config.spec.name, component))
    return found


def pick_adapter(
    stack: Stack, protocol: type | None, operation: str, name: str | None
) -> tuple[str, Any]:
    """The adapter named ``name``, or the first adapter of the configuration implementing
    ``protocol`` (``None``: the stack's adapter). Raises a one-line ConfigError otherwise."""
    adapters = _adapters(stack)
    listed = ", ".join(f"{n} ({t})" for n, t, _ in adapters) or "none"
    if name is not None:
        for candidate, type_name, adapter in adapters:
            if candidate == name:
                if protocol is not None and not isinstance(adapter, protocol):
                    raise ConfigError(
                        f"{stack.config.source}: adapters.{name} ({type_name}) does not support "
                        f"{operation} (it does not implement {protocol.__name__})"
                    )
                return candidate, adapter
        raise ConfigError(
            f"{stack.config.source}: no adapter named {name!r}; the adapters are: {listed}"
        )
    if protocol is None:
        return stack.config.stack.adapter, stack.adapter
    for candidate, _, adapter in adapters:
        if isinstance(adapter, protocol):
            return candidate, adapter
    installed = ", ".join(sorted(s.name for s in get_plugin_host().specs(ComponentKind.ADAPTER)))
    raise ConfigError(
        f"{stack.config.source}: no adapter supports {operation} ({protocol.__name__}): "
        f"{listed}; installed adapter types: {installed}"
    )


def parse_time(value: str, option: str) -> datetime:
    """An ISO 8601 time; without an offset it is read as UTC."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise click.BadParameter(  # a usage error: exit 2, like a bad --interval
            f"{value!r} is not an ISO 8601 time (e.g. 2024-01-02 or 2024-01-02T09:00:00+09:00)",
            param_hint=f"'{option}'",
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def parse_window(start: str, end: str) -> tuple[datetime, datetime]:
    """``--from`` and ``--to``; ``--from`` after ``--to`` is a usage error, not an empty answer."""
    begin, finish = parse_time(start, "--from"), parse_time(end, "--to")
    if begin > finish:
        raise click.BadParameter(f"{start} is after --to {end}", param_hint="'--from'")
    return begin, finish


def time_options(func: F) -> F:
    func = click.option(
        "--to",
        "end",
        required=True,
        metavar="ISO",
        help="End, excluded (ISO 8601; UTC if no offset).",
    )(func)
    return click.option(
        "--from",
        "start",
        required=True,
        metavar="ISO",
        help="Start, included (ISO 8601; UTC if no offset).",
    )(func)


def human_bytes(value: Any) -> str:
    if not isinstance(value, int):
        return "-" if value is None else str(value)
    size = float(value)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)


# -- db status ----------------------------------------------------------------------------------


async def _gap_summary(checker: Any, report: StorageReport) -> list[dict[str, Any]]:
    """Missing buckets of each stored candle series listed in ``report.details["candle_series"]``
    (``symbol``, ``interval``, ``first``, ``last``), between its first and last candle."""
    summary = []
    for series in list(report.details.get("candle_series") or [])[:STATUS_GAP_SERIES]:
        try:
            interval = Interval.parse(series["interval"])
            first = parse_time(str(series["first"]), "first")
            last = parse_time(str(series["last"]), "last")
        except (KeyError, ContractError):
            continue
        missing = await checker.find_gaps(series["symbol"], interval, first, last + interval.delta)
        summary.append(
            {
                "symbol": series["symbol"],
                "interval": interval.value,
                "first": first.isoformat(),
                "last": last.isoformat(),
                "missing": len(missing),
                "first_missing": [m.isoformat() for m in missing[:3]],
            }
        )
    return summary


def _print_tables(report: StorageReport) -> None:
    out = console()
    table = Table(title=f"storage ({report.backend})", title_justify="left")
    columns: list[str] = []
    for row in report.tables:
        for key in row:
            if key not in columns:
                columns.append(key)
    for column in columns:
        table.add_column(column, justify="left" if column in ("name", "kind") else "right")
    for row in report.tables:
        cells = []
        for column in columns:
            value = row.get(column)
            cells.append(
                human_bytes(value) if "bytes" in column else ("-" if value is None else str(value))
            )
        table.add_row(*cells)
    out.print(table)
    for key, value in report.details.items():
        if key in ("candle_series", "policies"):
            continue
        out.print(f"{key}: {mask(str(value))}")
    policies = report.details.get("policies") or []
    if policies:
        table = Table(title="policies", title_justify="left")
        keys: list[str] = []
        for policy in policies:
            keys.extend(k for k in policy if k not in keys)
        for key in keys:
            table.add_column(key)
        for policy in policies:
            table.add_row(*(str(policy.get(key, "")) for key in keys))
        out.print(table)


@click.group("db")
def db_group() -> None:
    """Storage of the stack's store: status, candle gaps, maintenance."""


@db_group.command("status")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@adapter_option()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def status_command(config: str | None, adapter_name: str | None, as_json: bool) -> None:
    """Tables (hypertables, chunks, compression, partitions) with sizes, and gaps in stored candles."""
    stack = load_stack(config)
    name, inspectable = pick_adapter(stack, StorageInspectable, "db status", adapter_name)

    async def run() -> tuple[StorageReport, list[dict[str, Any]] | None]:
        async with stack:
            report: StorageReport = await inspectable.storage_report()
            gaps = None
            if isinstance(inspectable, GapChecking):
                gaps = await _gap_summary(inspectable, report)
            return report, gaps

    report, gaps = asyncio.run(run())
    if as_json:
        echo_json(
            {
                "adapter": name,
                "backend": report.backend,
                "tables": report.tables,
                "details": report.details,
                "gaps": gaps,
            }
        )
        return
    console().print(f"adapter: {name}")
    _print_tables(report)
    if gaps is None:
        return
    if not gaps:
        console().print("candle gaps: no stored candles")
        return
    table = Table(title="gaps in stored candles", title_justify="left")
    for column in ("symbol", "interval", "first", "last", "missing", "first missing"):
        table.add_column(column, justify="right" if column == "missing" else "left")
    for item in gaps:
        table.add_row(
            item["symbol"],
            item["interval"],
            item["first"],
            item["last"],
            str(item["missing"]),
            ", ".join(item["first_missing"]) or "-",
        )
    console().print(table)


# -- db gaps ----------------------------------------------------------------------------------------


@db_group.command("gaps")
@click.argument("symbol")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--interval", required=True, type=click.Choice(INTERVALS), help="Candle interval.")
@time_options
@adapter_option()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def gaps_command(
    symbol: str,
    config: str | None,
    interval: str,
    start: str,
    end: str,
    adapter_name: str | None,
    as_json: bool,
) -> None:
    """Starts of the INTERVAL buckets of SYMBOL in [--from, --to) that have no stored candle."""
    begin, finish = parse_window(start, end)
    stack = load_stack(config)
    _, checker = pick_adapter(stack, GapChecking, "db gaps", adapter_name)

    async def run() -> list[datetime]:
        async with stack:
            found: list[datetime] = await checker.find_gaps(
                symbol, Interval(interval), begin, finish
            )
            return found

    missing = asyncio.run(run())
    if as_json:
        echo_json(
            {
                "symbol": symbol,
                "interval": interval,
                "from": begin.isoformat(),
                "to": finish.isoformat(),
                "missing": [m.isoformat() for m in missing],
            }
        )
        return
    for when in missing:
        click.echo(when.isoformat())
    console().print(
        f"{len(missing)} missing {interval} bucket(s) of {symbol} in [{begin.isoformat()}, {finish.isoformat()})",
        highlight=False,
    )


# -- db maintain ------------------------------------------------------------------------------------


@db_group.command("maintain")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@adapter_option()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def maintain_command(config: str | None, adapter_name: str | None, as_json: bool) -> None:
    """Apply retention and upkeep now (e.g. VACUUM/ANALYZE, policy jobs); run it from cron."""
    stack = load_stack(config)
    name, maintainable = pick_adapter(stack, Maintainable, "db maintain", adapter_name)

    async def run() -> MaintenanceReport:
        async with stack:
            done: MaintenanceReport = await maintainable.maintain()
            return done

    report = asyncio.run(run())
    if as_json:
        echo_json({"adapter": name, "actions": report.actions, "details": report.details})
        return
    out = console()
    out.print(f"adapter: {name}")
    for action in report.actions:
        out.print(f"- {mask(action)}")
    if not report.actions:
        out.print("nothing to do")
