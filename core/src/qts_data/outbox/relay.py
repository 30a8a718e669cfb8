"""The relay: delivers outbox records to the secondary store, in order, in batches.

Delivery is at least once: a record is removed only after the secondary
accepted it, and the secondary's idempotency (order id for the ledger, symbol
for positions) makes a repeated delivery harmless. A failing secondary is
retried with exponential backoff; the primary never waits for it. Records left
in the ``intent`` state by a process that died are replayed to the primary
first (its write may not have happened), then delivered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, TypedDict

from qts_data.contracts import Interval
from qts_data.interfaces import DataSourceAdapter
from qts_data.outbox.record import INTENT, READY, Outbox, OutboxRecord

log = logging.getLogger("qts_data.outbox")


async def apply_record(adapter: DataSourceAdapter, record: OutboxRecord) -> None:
    """Perform one record's write on ``adapter``."""
    contract = record.contract()
    op = record.op
    if op == "ledger":
        await adapter.append_ledger(contract)
    elif op == "position":
        await adapter.save_position(contract)
    elif op == "candle":
        await adapter.upsert_ohlcv([contract], Interval.parse(record.extra or "1d"))
    elif op == "execution_log":
        await adapter.store_execution_result(contract)
    elif op == "strategy":
        await adapter.save_strategy_param(contract)
    elif op == "risk":
        await adapter.save_risk_config(contract)
    else:  # pragma: no cover - OPERATIONS and this function change together
        raise ValueError(f"unknown outbox operation {op!r}")


#: Records handled between two yields to the event loop: the relay shares the loop with the
#: writers, and a batch decoded in one go would hold them up for a millisecond.
YIELD_EVERY = 8


async def _contracts(records: Sequence[OutboxRecord]) -> list[Any]:
    decoded = []
    for i, record in enumerate(records, 1):
        decoded.append(record.contract())
        if i % YIELD_EVERY == 0:
            await asyncio.sleep(0)
    return decoded


async def apply_batch(adapter: DataSourceAdapter, records: Sequence[OutboxRecord]) -> None:
    """Deliver records in order, using the adapter's batch writes when it has them."""
    i = 0
    while i < len(records):
        op = records[i].op
        j = i
        while j < len(records) and records[j].op == op:
            j += 1
        group = records[i:j]
        ledger_batch: Any = getattr(adapter, "append_ledger_batch", None)
        position_batch: Any = getattr(adapter, "save_positions", None)
        if op == "ledger" and ledger_batch is not None:
            await ledger_batch(await _contracts(group))
        elif op == "position" and position_batch is not None:
            latest = {}
            for contract in await _contracts(group):  # only the newest write of each symbol
                latest[contract.symbol] = contract
            await position_batch(list(latest.values()))
        else:
            for n, record in enumerate(group, 1):
                await apply_record(adapter, record)
                if n % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        i = j


class RelayPacing(TypedDict, total=False):
    """How a relay batches and retries (the ``relay_*`` settings of the hybrid)."""

    batch_size: int
    coalesce_s: float
    interval_s: float
    max_backoff_s: float


class OutboxRelay:
    def __init__(
        self,
        outbox: Outbox,
        primary: DataSourceAdapter,
        secondary: DataSourceAdapter,
        *,
        batch_size: int = 200,
        interval_s: float = 0.5,
        max_backoff_s: float = 30.0,
        owner: str | None = None,
        coalesce_s: float = 0.25,
    ) -> None:
        self.coalesce_s = coalesce_s
        self.outbox, self.primary, self.secondary = outbox, primary, secondary
        #: This process's intents whose primary write completed (kept in memory: a durable
        #: update per write would double the cost, and after a crash the intents are
        #: replayed to the primary anyway, which is idempotent).
        self.owner = owner
        self.completed: set[int] = set()
        self.batch_size, self.interval_s, self.max_backoff_s = batch_size, interval_s, max_backoff_s
        self.delivered = 0
        self.failures = 0
        self.replayed = 0
        self.last_error: str | None = None
        self.last_success: float | None = None
        self._backoff = 0.0
        self._wake = asyncio.Event()
        self._delivering = asyncio.Lock()
        #: Whether this relay had the turn to deliver at its last try (see Outbox.claim_delivery).
        self.has_turn = True
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.recover()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._loop(), name="qts-outbox-relay"
            )

    async def stop(self) -> None:
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def kick(self) -> None:
        """A record is ready: deliver soon (unless backing off)."""
        self._wake.set()

    async def recover(self, *, best_effort: bool = False) -> None:
        """Replay leftover intents of dead processes to the primary, then make them deliverable.

        A record whose replay fails stays an intent (the relay delivers nothing past it)
        unless ``best_effort``: then it is delivered all the same (a later phase's
        handover, where the primary is no longer the side that matters)."""
        for record in await self.outbox.leftover_intents():
            try:
                await apply_record(self.primary, record)
                self.replayed += 1
            except Exception as exc:
                log.error("replay of outbox record %s to the primary failed: %s", record.id, exc)
                if not best_effort:
                    continue
            await self.outbox.mark_ready(record.id)

    async def run_once(self) -> int:
        """Deliver one batch; returns how many records were delivered (raises on failure)."""
        async with self._delivering:  # drain() and the loop must not send one batch twice
            return await self._deliver_batch()

    async def _deliver_batch(self) -> int:
        self.has_turn = await self.outbox.claim_delivery()
        if not self.has_turn:
            return 0  # another process's relay delivers
        records = await self.outbox.peek(self.batch_size, states=(INTENT, READY))
        ready = []
        for record in records:  # keep order: stop at a write whose primary is still in flight
            if record.state != READY and not (
                record.owner == self.owner and record.id in self.completed
            ):
                break
            ready.append(record)
        if not ready:
            return 0
        try:
            await apply_batch(self.secondary, ready)
        except Exception as exc:
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            await self.outbox.note_failure([r.id for r in ready], self.last_error)
            raise
        await self.outbox.ack([r.id for r in ready])
        self.completed.difference_update(r.id for r in ready)
        self.delivered += len(ready)
        self.last_success = time.time()
        return len(ready)

    async def drain(self, timeout_s: float | None = 30.0) -> bool:
        """Deliver until the outbox is empty (records another process delivers included);
        False when it is not empty after ``timeout_s`` (None: wait as long as it takes).
        Failed deliveries are retried with the relay's backoff."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        backoff = 0.0

        def left() -> float:
            return float("inf") if deadline is None else deadline - time.monotonic()

        while left() > 0:
            try:
                delivered = await self.run_once()
                depth = (await self.outbox.depth())[0] if delivered == 0 else -1
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                backoff = self._next_backoff(backoff, first=0.05)
                await asyncio.sleep(min(backoff, max(0.0, left())))
                continue
            backoff = 0.0
            if delivered == 0:
                if depth == 0:
                    return True
                # an intent whose primary write is in flight, or another process's turn
                await asyncio.sleep(min(0.01 if self.has_turn else 0.2, max(0.0, left())))
        return False

    def _next_backoff(self, current: float, *, first: float) -> float:
        """The wait after one more failure: ``first``, then doubling up to ``max_backoff_s``."""
        return min(self.max_backoff_s, max(first, current * 2))

    async def _loop(self) -> None:
        while True:
            try:
                delivered = await self.run_once()
                self._backoff = 0.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._backoff = self._next_backoff(self._backoff, first=self.interval_s)
                log.warning("outbox delivery failed, next try in %.1f s: %s", self._backoff, exc)
                await asyncio.sleep(self._backoff)
                continue
            if delivered < self.batch_size:
                self._wake.clear()
                # asyncio.wait, not wait_for: on Python 3.11 wait_for can swallow a
                # cancellation that arrives as the event is set, and stop() would hang.
                waiter = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait({waiter}, timeout=self.interval_s)
                finally:
                    waiter.cancel()
                if self._wake.is_set():
                    # let the writes of the next moments join this batch: one delivery (and one
                    # ack) per batch, not per write, keeps the relay off the writers' path
                    await asyncio.sleep(self.coalesce_s)

    def summary(self) -> dict[str, Any]:
        return {
            "delivered": self.delivered,
            "failures": self.failures,
            "replayed_after_restart": self.replayed,
            "last_error": self.last_error,
            "backoff_s": self._backoff,
        }
