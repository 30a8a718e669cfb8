"""The outbox of the hybrid dual-write: durable records of writes the secondary must receive."""

from typing import TYPE_CHECKING

from qts_data.outbox.record import (
    INTENT,
    OPERATIONS,
    READY,
    Outbox,
    OutboxMissingError,
    OutboxRecord,
    TransactionalOutbox,
)
from qts_data.outbox.relay import OutboxRelay, apply_batch, apply_record

__all__ = [
    "INTENT",
    "OPERATIONS",
    "READY",
    "Outbox",
    "OutboxMissingError",
    "OutboxRecord",
    "OutboxRelay",
    "SqliteOutbox",
    "TransactionalOutbox",
    "apply_batch",
    "apply_record",
]

if TYPE_CHECKING:
    from qts_data.outbox.sqlite_outbox import SqliteOutbox


def __getattr__(name: str) -> object:
    # SqliteOutbox imports sqlite3: only when asked for
    if name == "SqliteOutbox":
        from qts_data.outbox.sqlite_outbox import SqliteOutbox

        return SqliteOutbox
    raise AttributeError(name)
