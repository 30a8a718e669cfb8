"""A durable outbox in a local SQLite file (WAL), for primaries that cannot hold one themselves.

The file belongs to one process at a time: the first to open it holds an
advisory lock on ``<file>.lock`` (released when it closes or dies) and is the
only one that adds records, delivers them and replays the intents a dead
process left. Another process opening the file (``qts-data check`` or
``verify`` while the trading process runs) can read its depth and keys, but a
write through it is refused before anything is written: its intents would look
like a dead process's leftovers to the owner. Processes that write at the same
time need outbox files of their own. (Without ``fcntl``, on Windows, the lock
is not taken and keeping to one process per file is up to you.)

Its statements are single-row
inserts and deletes that take tens of microseconds (WAL with
``synchronous=NORMAL``: no fsync per commit), so they run on the event loop:
handing each to a thread would cost several times the statement itself and
doubled the latency of a dual write. WAL with ``synchronous=NORMAL`` survives
the death of the process (what the relay must outlive); ``durable = "full"``
also survives a power cut, at the price of an fsync per record.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from qts_data.errors import BackendError
from qts_data.outbox.record import INTENT, READY, Outbox, OutboxRecord

T = TypeVar("T")

try:
    import fcntl

    _HAS_FCNTL = True
except ImportError:  # pragma: no cover - Windows
    _HAS_FCNTL = False

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL,
    key TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    owner TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    extra TEXT
);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox (state, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class SqliteOutbox(Outbox):
    """The outbox in the SQLite file ``path``.

    ``reader``: never take the file (a process that only inspects it). ``delivers_to``:
    the side its records go to (``"db"`` or ``"sheets"``), recorded in the file by its
    owner so that a later phase knows where the records left in it belong."""

    def __init__(
        self,
        path: str | Path,
        owner: str,
        *,
        durable: str = "normal",
        reader: bool = False,
        delivers_to: str | None = None,
    ) -> None:
        self.path = str(path)
        self.owner = owner
        self.durable = durable
        self.reader = reader
        self.delivers_to = delivers_to
        self._db: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        #: No advisory lock to take: an in-memory database, or no fcntl (Windows).
        self._unlockable = self.path == ":memory:" or not _HAS_FCNTL

    @property
    def owns_file(self) -> bool:
        """Whether this process holds the file (adds, delivers, replays); see the module."""
        if self._db is None or self.reader:
            return False
        return self._lock_fd is not None or self._unlockable

    def _lock(self) -> None:
        if self._unlockable:
            return
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held by another process: open as a reader
            os.close(fd)
            return
        self._lock_fd = fd

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._db is None:
            raise RuntimeError(f"outbox {self.path} is not open")
        return fn(self._db)

    async def open(self) -> None:
        if self._db is not None:
            return
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'FULL' if self.durable == 'full' else 'NORMAL'}")
        db.executescript(_SCHEMA)
        self._db = db
        if not self.reader:
            self._lock()
        if self.delivers_to is not None and self.owns_file:
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('delivers_to', ?)",
                (self.delivers_to,),
            )

    async def recorded_target(self) -> str | None:
        """The side the records go to, as its last owner recorded it (None: not recorded)."""
        row = await self._run(
            lambda db: db.execute("SELECT value FROM meta WHERE key = 'delivers_to'").fetchone()
        )
        return None if row is None else str(row[0])

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            db.close()
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            os.close(fd)  # releases the lock

    async def claim_delivery(self) -> bool:
        return self.owns_file

    async def add(
        self, op: str, key: str, payload: str, *, state: str = INTENT, extra: str | None = None
    ) -> int:
        if self._db is not None and not self.owns_file:
            raise BackendError(
                f"outbox {self.path} belongs to another running process: this one can read it "
                "but not write through it (give each writing process its own outbox_path)"
            )
        created = time.time_ns() // 1000

        def insert(db: sqlite3.Connection) -> int:
            cursor = db.execute(
                "INSERT INTO outbox (op, key, payload, state, owner, created_us, extra) VALUES (?,?,?,?,?,?,?)",
                (op, key, payload, state, self.owner, created, extra),
            )
            return int(cursor.lastrowid or 0)

        return await self._run(insert)

    async def mark_ready(self, record_id: int) -> None:
        await self._run(
            lambda db: db.execute("UPDATE outbox SET state=? WHERE id=?", (READY, record_id))
        )

    async def cancel(self, record_id: int) -> None:
        await self._run(lambda db: db.execute("DELETE FROM outbox WHERE id=?", (record_id,)))

    async def peek(self, limit: int, *, states: Sequence[str] = (READY,)) -> list[OutboxRecord]:
        marks = ",".join("?" * len(states))

        def select(db: sqlite3.Connection) -> list[OutboxRecord]:
            rows = db.execute(
                "SELECT id, op, key, payload, state, owner, created_us, attempts, last_error, extra "
                f"FROM outbox WHERE state IN ({marks}) ORDER BY id LIMIT ?",
                (*states, limit),
            ).fetchall()
            return [OutboxRecord(*row) for row in rows]

        return await self._run(select)

    async def ack(self, record_ids: Sequence[int]) -> None:
        ids = list(record_ids)
        if ids:
            await self._run(
                lambda db: db.executemany("DELETE FROM outbox WHERE id=?", [(i,) for i in ids])
            )

    async def note_failure(self, record_ids: Sequence[int], error: str) -> None:
        ids = list(record_ids)

        def update(db: sqlite3.Connection) -> Any:
            return db.executemany(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                [(error[:500], i) for i in ids],
            )

        if ids:
            await self._run(update)

    async def pending_keys(self) -> list[tuple[str, str]]:
        def select(db: sqlite3.Connection) -> list[tuple[str, str]]:
            return [(op, key) for op, key in db.execute("SELECT op, key FROM outbox ORDER BY id")]

        return await self._run(select)

    async def depth(self) -> tuple[int, int | None]:
        def count(db: sqlite3.Connection) -> tuple[int, int | None]:
            n, oldest = db.execute("SELECT count(*), min(created_us) FROM outbox").fetchone()
            return int(n), oldest

        return await self._run(count)

    async def leftover_intents(self) -> list[OutboxRecord]:
        """Intent records of other (dead) processes: their primary write may not have happened.
        Only the process that holds the file replays them (none for a reader)."""
        if not self.owns_file:
            return []

        def select(db: sqlite3.Connection) -> list[OutboxRecord]:
            rows = db.execute(
                "SELECT id, op, key, payload, state, owner, created_us, attempts, last_error, extra "
                "FROM outbox WHERE state = ? AND owner <> ? ORDER BY id",
                (INTENT, self.owner),
            ).fetchall()
            return [OutboxRecord(*row) for row in rows]

        return await self._run(select)
