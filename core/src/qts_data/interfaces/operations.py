"""Optional operations an adapter may offer beyond the data interface.

The command line looks for them on the stack's adapters (``qts-data migrate``,
``qts-data db status``, ``qts-data db gaps``, ``qts-data db maintain``): an
adapter offers one by implementing the method; ``isinstance(adapter, Migratable)``
tells whether it does (the protocols are runtime-checkable).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from qts_data.contracts import Interval

if TYPE_CHECKING:
    from qts_data.outbox.record import TransactionalOutbox


@dataclass
class MigrationReport:
    """What ``migrate`` did (or, with ``dry_run``, would do)."""

    from_version: int
    to_version: int
    applied: list[str] = field(default_factory=list)  # names of the migrations applied
    statements: list[str] = field(default_factory=list)  # the SQL, for --dry-run
    notes: list[str] = field(
        default_factory=list
    )  # e.g. "TimescaleDB absent: using plain PostgreSQL"


@dataclass
class StorageReport:
    """Tables (or hypertables, partitions, files) with their sizes, for ``qts-data db status``."""

    backend: str
    tables: list[dict[str, Any]] = field(
        default_factory=list
    )  # name, rows, bytes, and backend details
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class MaintenanceReport:
    """What ``maintain`` did, for ``qts-data db maintain``."""

    actions: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class RowErrorReporting(Protocol):
    """An adapter over data people edit (a spreadsheet), which skips rows it cannot parse:
    ``last_read_errors`` names each row its most recent read skipped (sheet, row, column,
    problem). The migration tools count them: a skipped row is never a silent loss."""

    last_read_errors: list[str]


@runtime_checkable
class Migratable(Protocol):
    async def migrate(self, *, dry_run: bool = False) -> MigrationReport:
        """Bring the schema to the newest version; re-running is harmless."""
        ...


@runtime_checkable
class StorageInspectable(Protocol):
    async def storage_report(self) -> StorageReport: ...


@runtime_checkable
class GapChecking(Protocol):
    async def find_gaps(
        self, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> list[datetime]:
        """Starts of the buckets in ``[start, end)`` that have no stored candle, in order."""
        ...


@runtime_checkable
class Maintainable(Protocol):
    async def maintain(self) -> MaintenanceReport: ...


@runtime_checkable
class OutboxHosting(Protocol):
    """An adapter that can keep the hybrid dual-write's outbox in its own database, so that
    a write and its outbox record commit in one transaction (the ``hybrid`` composition
    uses it when this adapter is the primary)."""

    def transactional_outbox(self, owner: str, *, lease_s: float = 15.0) -> TransactionalOutbox:
        """A new, unopened outbox in this adapter's store; ``owner`` names the process.

        Processes sharing the store deliver one at a time: a relay's turn lasts ``lease_s``
        without renewal, so after a crash another process delivers within ``lease_s``."""
        ...
