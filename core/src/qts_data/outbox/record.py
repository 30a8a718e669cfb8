"""Outbox records: writes that a secondary store must still receive.

A record names the operation, the idempotency key of what it writes (the
ledger entry's order id, the position's symbol...) and the contract as JSON.
Delivery is at least once; the key makes a repeated delivery harmless.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qts_data.contracts import (
    OHLCV,
    Contract,
    ExecutionLog,
    LedgerEntry,
    Position,
    RiskConfig,
    StrategyParam,
)

#: Operation name -> the contract its payload holds.
OPERATIONS: dict[str, type[Contract]] = {
    "ledger": LedgerEntry,
    "position": Position,
    "candle": OHLCV,
    "execution_log": ExecutionLog,
    "strategy": StrategyParam,
    "risk": RiskConfig,
}

#: States: ``intent`` (written before the primary write; a leftover after a crash
#: is replayed to the primary), ``ready`` (the primary has it; deliver to the secondary).
INTENT, READY = "intent", "ready"


@dataclass(frozen=True)
class OutboxRecord:
    id: int
    op: str
    key: str
    payload: str  # the contract's JSON
    state: str
    owner: str  # the process that wrote it
    created_us: int
    attempts: int = 0
    last_error: str | None = None
    extra: str | None = None  # e.g. the candle interval

    def contract(self) -> Any:
        return OPERATIONS[self.op].from_json(self.payload)


class Outbox(abc.ABC):
    """A durable queue of records, oldest first."""

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def add(
        self, op: str, key: str, payload: str, *, state: str = INTENT, extra: str | None = None
    ) -> int:
        """Append a record; returns its id. Durable when it returns."""

    @abc.abstractmethod
    async def mark_ready(self, record_id: int) -> None: ...

    @abc.abstractmethod
    async def cancel(self, record_id: int) -> None:
        """Remove a record whose primary write failed."""

    @abc.abstractmethod
    async def peek(self, limit: int, *, states: Sequence[str] = (READY,)) -> list[OutboxRecord]:
        """The oldest records in the given states."""

    @abc.abstractmethod
    async def ack(self, record_ids: Sequence[int]) -> None:
        """Delivered: remove them."""

    @abc.abstractmethod
    async def note_failure(self, record_ids: Sequence[int], error: str) -> None: ...

    @abc.abstractmethod
    async def pending_keys(self) -> list[tuple[str, str]]:
        """``(op, key)`` of every record not yet delivered."""

    @abc.abstractmethod
    async def depth(self) -> tuple[int, int | None]:
        """(records waiting, creation time of the oldest in µs or None)."""
