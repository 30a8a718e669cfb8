"""Outbox records: writes that a secondary store must still receive.

A record names the operation, the idempotency key of what it writes (the
ledger entry's order id, the position's symbol...) and the contract as JSON.
Delivery is at least once; the key makes a repeated delivery harmless.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from qts_data.contracts import (
    OHLCV,
    Contract,
    ExecutionLog,
    LedgerEntry,
    Position,
    RiskConfig,
    StrategyParam,
)
from qts_data.errors import BackendError

T = TypeVar("T")

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

    async def recorded_target(self) -> str | None:
        """The side its records go to (``"db"`` or ``"sheets"``) when the outbox knows it;
        read when a later migration phase finds records left in it."""
        return None

    async def claim_delivery(self) -> bool:
        """Whether this process's relay may deliver now. An outbox that several processes
        share lets one relay deliver at a time (so records go out in order); a private
        one always says yes."""
        return True

    @abc.abstractmethod
    async def leftover_intents(self) -> list[OutboxRecord]:
        """Intent records of other (dead) owners, oldest first: their primary write may not
        have happened, so the relay replays them to the primary before delivering them."""


class OutboxMissingError(BackendError):
    """The store has no outbox: its schema predates it (nothing can be waiting in it)."""


class TransactionalOutbox(Outbox):
    """An outbox kept in the primary store itself (PostgreSQL for the ``timescale`` adapter).

    The record commits in the same transaction as the primary write: both are
    stored or neither is, so there is no intent to replay after a crash. Such an
    outbox may be shared by several processes; it lets one relay deliver at a time.
    """

    async def recorded_target(self) -> str | None:
        # its records were committed with the database's writes: Sheets is the other side
        return "sheets"

    @abc.abstractmethod
    async def commit_with(
        self,
        op: str,
        key: str,
        payload: str,
        write: Callable[[], Awaitable[T]],
        *,
        extra: str | None = None,
    ) -> tuple[int, T]:
        """Run ``write`` (one write on the primary) with a ``ready`` record in its transaction.

        Returns the record's id and what ``write`` returned. When ``write`` raises, nothing
        of it and no record is stored. ``write`` must make exactly one write on the store
        that keeps this outbox; anything else raises :class:`RuntimeError`."""
