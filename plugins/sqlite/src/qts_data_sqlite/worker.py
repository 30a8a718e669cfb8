"""The thread that owns the connection: every SQLite call of an adapter runs there, in order.

A ``sqlite3`` connection must stay on the thread that made it, and its calls
block; so each adapter has one single-thread executor that opens the
connection, runs every operation (``await worker.call(fn, *args)`` runs
``fn(conn, *args)`` there) and closes it. The event loop only waits on a
future. Operations of one adapter are serialized, which is also what SQLite
wants of writers; in WAL mode other processes keep reading meanwhile.

A cancelled ``await`` does not stop an operation that has started: it runs to
its end (a write commits or rolls back whole) and its result is dropped.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from qts_data.errors import BackendError

if TYPE_CHECKING:
    from qts_data_sqlite import SqliteSettings

P = ParamSpec("P")
T = TypeVar("T")

MEMORY = ":memory:"


def connect(settings: SqliteSettings) -> sqlite3.Connection:
    """Open the database and apply the connection settings (on the worker thread).

    Autocommit mode (``isolation_level=None``): single statements commit on
    their own, and multi-statement writes use :func:`transaction`.
    """
    path = settings.path
    if path != MEMORY:
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise BackendError(f"sqlite database {path}: its folder {folder} does not exist")
    conn = sqlite3.connect(
        path,
        timeout=settings.busy_timeout_ms / 1000,
        isolation_level=None,
        cached_statements=256,
    )
    try:
        # The values come from validated settings (literals and integers), never from data.
        conn.execute(f"PRAGMA busy_timeout = {int(settings.busy_timeout_ms)}")
        _set_journal_mode(conn, settings.journal_mode, settings.busy_timeout_ms / 1000)
        conn.execute(f"PRAGMA synchronous = {settings.synchronous}")
        conn.execute(f"PRAGMA cache_size = {-int(settings.cache_size_kib)}")
    except BaseException:
        conn.close()
        raise
    return conn


def _set_journal_mode(conn: sqlite3.Connection, mode: str, timeout_s: float) -> str:
    """Switch the journal mode unless it already is ``mode``; the mode in force is returned.

    Changing the mode needs the file to itself, and SQLite answers "database is
    locked" at once (without its busy handler) while another connection opens
    or converts the same file; so this retries until ``timeout_s`` has passed.
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.001
    while True:
        try:
            current = str(conn.execute("PRAGMA journal_mode").fetchone()[0])
            if current.upper() == mode or current == "memory":  # ":memory:" has no journal file
                return current
            return str(conn.execute(f"PRAGMA journal_mode = {mode}").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; ``ROLLBACK`` when anything in it (or the commit) fails.

    IMMEDIATE takes the write lock at the start, so a writer waits for another
    process's lock (``busy_timeout``) before doing any work, instead of failing
    when it upgrades a read transaction.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class Worker:
    """One thread owning one ``sqlite3`` connection."""

    def __init__(self, thread_name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._conn: sqlite3.Connection | None = None
        self._stopped = False

    @property
    def stopped(self) -> bool:
        return self._stopped

    async def start(self, settings: SqliteSettings) -> None:
        """Open the connection on the thread; on failure the worker is stopped and the error raised."""

        def run() -> None:
            self._conn = connect(settings)

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, run)
        except BaseException:
            await self.stop()
            raise

    async def call(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run ``fn(conn, *args, **kwargs)`` on the connection's thread and return its result."""
        if self._stopped:
            raise BackendError("the sqlite connection is closed")
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(self._invoke, fn, *args, **kwargs)
        )

    def _invoke(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        conn = self._conn
        if conn is None:
            raise BackendError("the sqlite connection is closed")
        return fn(conn, *args, **kwargs)

    async def stop(self) -> None:
        """Run ``PRAGMA optimize``, close the connection (after the calls already queued), end the thread.

        Idempotent.
        """
        if self._stopped:
            return
        self._stopped = True

        def run() -> None:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                conn.execute("PRAGMA optimize")
            except sqlite3.Error:
                pass
            conn.close()

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, run)
        finally:
            self._executor.shutdown(wait=False)
