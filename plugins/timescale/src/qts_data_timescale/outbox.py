"""The hybrid dual-write's outbox in PostgreSQL, committed with the primary write.

:meth:`PostgresOutbox.commit_with` runs one write of the adapter with a
*companion*: the adapter's write (:meth:`TimescaleAdapter._write`) finds it in
a context variable and sends its statement and the outbox insert as ONE
statement (:func:`.queries.with_outbox`): one round trip, committed together
or not at all, and retried together through a lost connection when the write
alone would be (a retry after a commit whose answer was lost stores a second
record: one more, harmless, delivery). The record is inserted after the write
took its row locks, so writes of one key get their outbox ids in the order
they committed.

Processes sharing the database take turns delivering through a lease row
(``qts_outbox_lease``): the relay of the holder delivers; the others wait, and
take over when the holder releases it (on close) or stops renewing it (dies).
The holder renews it in the background every third of ``lease_s``, so a
delivery slowed down by a Sheets quota storm keeps its turn however long it
takes. Only a holder cut off from the database (or frozen) for longer than
``lease_s`` in the middle of a delivery can overlap with its successor: the
idempotency keys keep the ledger free of duplicates, and a position sent late
is corrected by the next write of its symbol.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from qts_data.errors import BackendError
from qts_data.outbox import (
    INTENT,
    READY,
    OutboxMissingError,
    OutboxRecord,
    TransactionalOutbox,
)

if TYPE_CHECKING:
    from qts_data_timescale.adapter import TimescaleAdapter
    from qts_data_timescale.schema import Conn

__all__ = ["Companion", "PostgresOutbox", "take_companion"]

log = logging.getLogger("qts_data.outbox")

T = TypeVar("T")

_COLUMNS = "id, op, key, payload, state, owner, created_us, attempts, last_error, extra"
_INSERT = (
    "INSERT INTO qts_outbox (op, key, payload, state, owner, created_us, extra) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id"
)
_PEEK = f"SELECT {_COLUMNS} FROM qts_outbox WHERE state = ANY($1::text[]) ORDER BY id LIMIT $2"
_LEFTOVERS = (
    f"SELECT {_COLUMNS} FROM qts_outbox WHERE state = '{INTENT}' AND owner <> $1 ORDER BY id"
)
_ACK = "DELETE FROM qts_outbox WHERE id = ANY($1::bigint[])"
_FAILED = (
    "UPDATE qts_outbox SET attempts = attempts + 1, last_error = $2 WHERE id = ANY($1::bigint[])"
)
_DEPTH = "SELECT count(*), min(created_us) FROM qts_outbox"
_KEYS = "SELECT op, key FROM qts_outbox ORDER BY id"
#: Take the lease when it is free, expired or already ours; returns a row when we hold it.
_LEASE = """INSERT INTO qts_outbox_lease AS l (name, holder, expires_at)
VALUES ('relay', $1, now() + make_interval(secs => $2))
ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
WHERE l.holder = EXCLUDED.holder OR l.expires_at < now()
RETURNING holder"""
_RELEASE = "DELETE FROM qts_outbox_lease WHERE name = 'relay' AND holder = $1"


@dataclass
class Companion:
    """The outbox record that rides along with one write of ``adapter``: the values of its
    columns (op, key, payload, state, owner, created_us, extra), and its id once inserted."""

    adapter: TimescaleAdapter
    record: tuple[str, str, str, str, str, int, str | None]
    record_id: int | None = None
    taken: bool = False


_companion: ContextVar[Companion | None] = ContextVar("qts_timescale_outbox", default=None)


def take_companion(adapter: TimescaleAdapter) -> Companion | None:
    """The companion waiting for ``adapter``'s next write (once), or None."""
    companion = _companion.get()
    if companion is None or companion.adapter is not adapter:
        return None
    if companion.taken:
        raise RuntimeError(
            "commit_with: the write made more than one write on the database; "
            "an outbox record commits with exactly one"
        )
    companion.taken = True
    return companion


class PostgresOutbox(TransactionalOutbox):
    """The outbox in the ``qts_outbox`` table of a :class:`TimescaleAdapter`'s database.

    Uses the adapter's pool: open the adapter first. ``lease_s`` is how long the
    relay's turn lasts without renewal (renewed in the background while it is held;
    a process that does not hold it asks again at most every third of ``lease_s``)."""

    def __init__(self, adapter: TimescaleAdapter, owner: str, *, lease_s: float = 15.0) -> None:
        self.adapter = adapter
        self.owner = owner
        self.lease_s = lease_s
        self._lease_until = 0.0  # monotonic time until which we hold the lease
        self._next_claim = 0.0  # not the holder: when to ask again
        self._heartbeat: asyncio.Task[None] | None = None
        self._open = False

    def __repr__(self) -> str:
        return f"PostgresOutbox({self.adapter.address}, owner={self.owner!r})"

    async def _run(self, where: str, work: Callable[[Conn], Awaitable[T]], *, retry: bool) -> T:
        if not self._open:
            raise BackendError(f"outbox {where}: the outbox in {self.adapter.address} is not open")
        return await self.adapter._primary(f"outbox {where}", work, retry=retry, timed=False)

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        if self._open:
            return

        async def exists(conn: Conn) -> bool:
            return bool(await conn.fetchval("SELECT to_regclass('qts_outbox') IS NOT NULL"))

        if not await self.adapter._primary("outbox open", exists, retry=True, timed=False):
            raise OutboxMissingError(
                f"the database at {self.adapter.address} has no outbox table (schema version 4); "
                "run `qts-data migrate` (or set auto_migrate = true)"
            )
        self._open = True

    async def close(self) -> None:
        if not self._open:
            return
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
        try:
            if self._lease_until > time.monotonic():

                async def release(conn: Conn) -> None:
                    await conn.execute(_RELEASE, self.owner)

                await self._run("close", release, retry=False)
        except BackendError:
            pass  # the lease expires on its own
        finally:
            self._lease_until = self._next_claim = 0.0
            self._open = False

    # -- writing -------------------------------------------------------------------------------
    async def add(
        self, op: str, key: str, payload: str, *, state: str = INTENT, extra: str | None = None
    ) -> int:
        created = time.time_ns() // 1000

        async def insert(conn: Conn) -> int:
            record_id = await conn.fetchval(
                _INSERT, op, key, payload, state, self.owner, created, extra
            )
            return int(record_id)

        return await self._run("add", insert, retry=False)

    async def commit_with(
        self,
        op: str,
        key: str,
        payload: str,
        write: Callable[[], Awaitable[T]],
        *,
        extra: str | None = None,
    ) -> tuple[int, T]:
        if not self._open:
            raise BackendError(
                f"outbox commit_with: the outbox in {self.adapter.address} is not open"
            )
        record = (op, key, payload, READY, self.owner, time.time_ns() // 1000, extra)
        companion = Companion(self.adapter, record)
        token = _companion.set(companion)
        try:
            result = await write()
        finally:
            _companion.reset(token)
        if companion.record_id is None:
            # The write stored nothing through this database (an empty batch): keep the
            # record anyway, on its own; delivering it again is harmless.
            return await self.add(op, key, payload, state=READY, extra=extra), result
        return companion.record_id, result

    async def mark_ready(self, record_id: int) -> None:
        async def update(conn: Conn) -> None:
            await conn.execute("UPDATE qts_outbox SET state = $2 WHERE id = $1", record_id, READY)

        await self._run("mark_ready", update, retry=True)

    async def cancel(self, record_id: int) -> None:
        await self.ack([record_id])

    # -- delivering ----------------------------------------------------------------------------
    async def claim_delivery(self) -> bool:
        now = time.monotonic()
        if self._lease_until > now:
            return True  # held, and renewed by the heartbeat
        if now < self._next_claim:
            return False
        if not await self._renew():
            self._next_claim = now + self.lease_s / 3
            return False
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.get_running_loop().create_task(
                self._keep_lease(), name="qts-outbox-lease"
            )
        return True

    async def _renew(self) -> bool:
        """Take or extend the lease; whether this process holds it now."""
        started = time.monotonic()

        async def lease(conn: Conn) -> bool:
            return await conn.fetchval(_LEASE, self.owner, self.lease_s) is not None

        held = await self._run("lease", lease, retry=True)
        self._lease_until = started + self.lease_s if held else 0.0
        return held

    async def _keep_lease(self) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                if await self._renew():
                    continue
                log.warning("outbox in %s: another relay took the turn", self.adapter.address)
            except Exception as exc:  # the database is unreachable: the lease runs out
                log.warning("outbox in %s: lease not renewed: %s", self.adapter.address, exc)
                continue
            return

    async def peek(self, limit: int, *, states: Sequence[str] = (READY,)) -> list[OutboxRecord]:
        async def select(conn: Conn) -> list[OutboxRecord]:
            rows = await conn.fetch(_PEEK, list(states), limit)
            return [OutboxRecord(*row) for row in rows]

        return await self._run("peek", select, retry=True)

    async def ack(self, record_ids: Sequence[int]) -> None:
        ids = list(record_ids)
        if not ids:
            return

        async def delete(conn: Conn) -> None:
            await conn.execute(_ACK, ids)

        await self._run("ack", delete, retry=True)

    async def note_failure(self, record_ids: Sequence[int], error: str) -> None:
        ids = list(record_ids)
        if not ids:
            return

        async def update(conn: Conn) -> None:
            await conn.execute(_FAILED, ids, error[:500])

        await self._run("note_failure", update, retry=True)

    async def pending_keys(self) -> list[tuple[str, str]]:
        async def select(conn: Conn) -> list[tuple[str, str]]:
            return [(row[0], row[1]) for row in await conn.fetch(_KEYS)]

        return await self._run("pending_keys", select, retry=True)

    async def depth(self) -> tuple[int, int | None]:
        async def count(conn: Conn) -> tuple[int, int | None]:
            row = await conn.fetchrow(_DEPTH)
            assert row is not None
            return int(row[0]), None if row[1] is None else int(row[1])

        return await self._run("depth", count, retry=True)

    async def leftover_intents(self) -> list[OutboxRecord]:
        async def select(conn: Conn) -> list[OutboxRecord]:
            return [OutboxRecord(*row) for row in await conn.fetch(_LEFTOVERS, self.owner)]

        return await self._run("leftover_intents", select, retry=True)
