"""Bulk tick ingest: batches of bounded size, each written whole or not at all.

A batch is written in one transaction: binary COPY into a staging table private
to the transaction, then ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` into
``tick_data``, whose unique index on ``(symbol, time, dedup_key)`` skips
duplicates (of earlier ingests and within the batch). Because writing a batch
again changes nothing, a batch cut off by a lost connection is simply retried.

Pipelining: while the server inserts batch N, batch N+1 is read from the source
and sent to the staging table of a second connection; its INSERT waits for batch
N's commit, so ticks are stored (and numbered by ``seq``) in the order given.
At most two batches are in flight and one is being read: memory stays bounded
by three batches.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

from qts_data.contracts import TickData
from qts_data.interfaces import TickSource
from qts_data_timescale.errors import ElementTypeError
from qts_data_timescale.rows import row_getter

Row = tuple[Any, ...]
#: Writes one batch (after awaiting the previous batch, if given); returns rows inserted.
WriteBatch = Callable[[list[Row], "asyncio.Future[int] | None"], Awaitable[int]]

_tick_row = row_getter(TickData)


@dataclass
class IngestOutcome:
    received: int = 0
    inserted: int = 0
    first_time: datetime | None = None
    last_time: datetime | None = None


async def batches(source: TickSource, size: int) -> AsyncIterator[list[Any]]:
    """``source`` (iterable or async iterable) in lists of at most ``size`` elements."""
    if isinstance(source, AsyncIterable):
        batch: list[Any] = []
        async for item in source:
            batch.append(item)
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch
        return
    iterator = iter(source)
    while True:
        batch = list(islice(iterator, size))
        if not batch:
            return
        yield batch


def tick_rows(batch: list[Any], offset: int) -> list[Row]:
    """The database rows of ``batch``; an element that is not a TickData fails the batch."""
    for index, tick in enumerate(batch):
        if tick.__class__ is not TickData and not isinstance(tick, TickData):
            raise ElementTypeError(
                f"ingest_ticks: element {offset + index} is {type(tick).__name__}, not TickData; "
                f"its batch of {len(batch)} (elements {offset}-{offset + len(batch) - 1}) "
                "was not stored"
            )
    return [_tick_row(tick) for tick in batch]


async def run_ingest(
    source: TickSource, batch_size: int, write: WriteBatch, *, pipelined: bool
) -> IngestOutcome:
    """Read ``source`` in batches and write each with ``write``; see the module docstring."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    outcome = IngestOutcome()
    in_flight: deque[asyncio.Future[int]] = deque()
    limit = 2 if pipelined else 1
    try:
        async for batch in batches(source, batch_size):
            rows = tick_rows(batch, outcome.received)
            del batch
            first = min(row[0] for row in rows)
            last = max(row[0] for row in rows)
            if outcome.first_time is None or first < outcome.first_time:
                outcome.first_time = first
            if outcome.last_time is None or last > outcome.last_time:
                outcome.last_time = last
            previous = in_flight[-1] if in_flight else None
            in_flight.append(asyncio.ensure_future(write(rows, previous)))
            outcome.received += len(rows)
            del rows
            while len(in_flight) >= limit:
                outcome.inserted += await in_flight.popleft()
        while in_flight:
            outcome.inserted += await in_flight.popleft()
    except BaseException as exc:
        await _settle(in_flight, cancel=not isinstance(exc, Exception))
        raise
    return outcome


async def _settle(in_flight: deque[asyncio.Future[int]], *, cancel: bool) -> None:
    """Let earlier batches finish (they are whole batches); cancel them when interrupted."""
    for future in in_flight:
        if cancel:
            future.cancel()
    for future in in_flight:
        with contextlib.suppress(BaseException):
            await future
    in_flight.clear()
