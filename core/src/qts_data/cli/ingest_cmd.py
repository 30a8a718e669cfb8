"""``qts-data ingest ticks FILE``: bulk-load ticks from a CSV file into the stack's store.

The file is streamed: rows are parsed into :class:`~qts_data.contracts.TickData`
one at a time and handed to ``ingest_ticks`` a batch at a time, so memory is
bounded by the batch size, not by the file. A bad row (or a CSV error) stops the
ingest with the file and the line its record starts on; the batches before it are
stored, its own is not, and the message says how many ticks the store took (since
ingest is idempotent the corrected file can simply be loaded again).
"""

from __future__ import annotations

import asyncio
import csv
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from qts_data.cli.db_cmd import adapter_option, load_stack, pick_adapter
from qts_data.cli.output import console, echo_json
from qts_data.contracts import TickData
from qts_data.errors import ContractError
from qts_data.interfaces import IngestResult

REQUIRED = ("time", "symbol", "price", "volume")
OPTIONAL = ("bid", "ask", "source", "trade_id")
#: Progress is reported every this many bytes.
PROGRESS_STEP = 256 * 1024


def _lines(path: Path, advance: Callable[[int], None]) -> Iterator[str]:
    """The file's lines as text, reporting the bytes read to ``advance``."""
    pending = 0
    with path.open("rb") as handle:
        first = True
        for raw in handle:
            pending += len(raw)
            if pending >= PROGRESS_STEP:
                advance(pending)
                pending = 0
            if first:
                raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark
                first = False
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ContractError(f"{path}: not UTF-8 text ({exc})") from None
    advance(pending)


class TickReader:
    """Parses a tick CSV (header ``time,symbol,price,volume[,bid,ask,source,trade_id]``)."""

    def __init__(self, path: Path, advance: Callable[[int], None]) -> None:
        self.path = path
        self.advance = advance
        self.rows = 0  # valid rows yielded

    def __iter__(self) -> Iterator[TickData]:
        reader = csv.reader(_lines(self.path, self.advance), strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise ContractError(f"{self.path}: the file is empty; expected a header line") from None
        names = [name.strip().lower() for name in header]
        missing = [name for name in REQUIRED if name not in names]
        unknown = [name for name in names if name not in REQUIRED + OPTIONAL]
        if missing or unknown or len(set(names)) != len(names):
            problems = []
            if missing:
                problems.append(f"missing {', '.join(missing)}")
            if unknown:
                problems.append(f"unknown {', '.join(unknown)}")
            if len(set(names)) != len(names):
                problems.append("repeated columns")
            raise ContractError(
                f"{self.path}: line 1: bad header ({'; '.join(problems)}); expected "
                f"{','.join(REQUIRED)}[,{','.join(OPTIONAL)}]"
            )
        width = len(names)
        parse = TickData.parse
        while True:
            start = reader.line_num + 1  # the line the next record starts on
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise ContractError(self._csv_error(exc, start, reader.line_num)) from None
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            where = f"{self.path}: line {start}"
            if len(row) != width:
                raise ContractError(f"{where}: {len(row)} fields, the header has {width}")
            values: dict[str, Any] = {
                name: cell.strip()
                for name, cell in zip(names, row, strict=True)
                if cell.strip() != ""
            }
            yield parse(values, where=where)
            self.rows += 1

    def _csv_error(self, exc: csv.Error, start: int, end: int) -> str:
        reason = str(exc)
        if "field larger than field limit" in reason:
            reason = f"a field is longer than {csv.field_size_limit():,} characters"
        elif "NUL" in reason:  # Python 3.10's csv refuses NUL itself (3.11+ leaves it to us)
            reason = "contains the control character U+0000"
        elif "unexpected end of data" in reason or (end > start and "EOF" in reason):
            reason = "a quoted field opened here is never closed"
        if end > start:
            reason += f" (the record runs to line {end})"
        return f"{self.path}: line {start}: {reason}"


def batches(ticks: Iterator[TickData], size: int) -> Iterator[list[TickData]]:
    """``ticks`` in lists of ``size`` (the last one shorter)."""
    batch: list[TickData] = []
    for tick in ticks:
        batch.append(tick)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@click.group("ingest")
def ingest_group() -> None:
    """Bulk-load data into the stack's store."""


@ingest_group.command("ticks")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--batch-size",
    default=10_000,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="Ticks per batch (each batch is stored whole or not at all).",
)
@adapter_option()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def ingest_ticks_command(
    file: Path, config: str | None, batch_size: int, adapter_name: str | None, as_json: bool
) -> None:
    """Load the ticks of the CSV FILE (header time,symbol,price,volume[,bid,ask,source,trade_id]).

    Ticks already stored are skipped, so loading a file again adds nothing.
    """
    stack = load_stack(config)
    name, adapter = pick_adapter(stack, None, "ingest ticks", adapter_name)
    progress = Progress(
        TextColumn("ingest"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=as_json,
    )
    task = progress.add_task("ingest", total=file.stat().st_size)
    reader = TickReader(file, lambda n: progress.advance(task, n))

    async def run() -> IngestResult:
        # Batch by batch, so that when a row is bad what the store holds is known: every
        # batch before the bad row's, whole, and nothing of its own.
        received = inserted = duplicates = 0
        async with stack:
            try:
                for batch in batches(iter(reader), batch_size):
                    done = await adapter.ingest_ticks(batch, batch_size=batch_size)
                    received += done.received
                    inserted += done.inserted
                    duplicates += done.duplicates
            except ContractError as exc:
                stored = (
                    f"the {received} ticks before its batch were stored ({inserted} new, "
                    f"{duplicates} already there), nothing of its batch"
                    if received
                    else "nothing was stored"
                )
                raise ContractError(f"{exc}; {stored}") from None
        return IngestResult(received=received, inserted=inserted)

    started = time.perf_counter()
    with progress:
        result = asyncio.run(run())
    seconds = time.perf_counter() - started
    if as_json:
        echo_json(
            {
                "adapter": name,
                "file": str(file),
                "received": result.received,
                "inserted": result.inserted,
                "duplicates": result.duplicates,
                "seconds": round(seconds, 3),
            }
        )
        return
    rate = result.received / seconds if seconds > 0 else 0.0
    console().print(
        f"adapters.{name}: received {result.received}, inserted {result.inserted}, "
        f"duplicates {result.duplicates} ({seconds:.1f} s, {rate:,.0f} ticks/s)"
    )
