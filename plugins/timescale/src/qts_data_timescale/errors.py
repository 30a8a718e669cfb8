"""asyncpg's exceptions translated into qts-data's, and which failures are worth a retry."""

from __future__ import annotations

import asyncio

import asyncpg
from asyncpg import exceptions as pgerr

from qts_data.config.secrets import mask
from qts_data.errors import BackendError, ContractError, ElementTypeError, QtsDataError

__all__ = [
    "ElementTypeError",
    "SchemaMissingError",
    "is_connection_error",
    "is_replica_conflict",
    "translate",
]


class SchemaMissingError(BackendError):
    """The database has no qts-data schema (or an older one): run ``qts-data migrate``."""


#: SQLSTATE classes of failures that end with the connection (08: connection
#: exception; 57P01-57P03: shutdown, crash, starting up; 53300: too many connections).
_CONNECTION_STATES = ("57P01", "57P02", "57P03", "53300")


def is_broken_connection(exc: BaseException) -> bool:
    """True when asyncpg refuses a connection that a failure left in the middle of an
    operation (a server restart during a COPY): it must be dropped, not reused."""
    if isinstance(exc, pgerr.InternalClientError):
        return True
    return isinstance(exc, pgerr.InterfaceError) and "another operation is in progress" in str(exc)


def is_connection_error(exc: BaseException) -> bool:
    """True for a lost, refused or broken connection: the operation may succeed on another one."""
    if isinstance(exc, (pgerr.PostgresConnectionError, ConnectionError, OSError)):
        return True
    if is_broken_connection(exc):
        return True
    if isinstance(exc, pgerr.InterfaceError) and not isinstance(exc, ValueError):
        text = str(exc).lower()
        return "connection" in text and ("closed" in text or "lost" in text or "was closed" in text)
    if isinstance(exc, pgerr.PostgresError):
        state = getattr(exc, "sqlstate", "") or ""
        return state.startswith("08") or state in _CONNECTION_STATES
    return False


def is_replica_conflict(exc: BaseException) -> bool:
    """A hot standby cancelled the query (conflict with recovery) or refuses it as read-only."""
    if isinstance(exc, pgerr.PostgresError):
        state = getattr(exc, "sqlstate", "") or ""
        return state in ("40001", "25006")
    return False


def _refusal(exc: BaseException) -> str:
    """One line for a value PostgreSQL refused: the column or constraint, then its message
    (the multi-line DETAIL is left out: it may repeat the row)."""
    message = " ".join(str(exc).split())
    table = getattr(exc, "table_name", None)
    column = getattr(exc, "column_name", None)
    constraint = getattr(exc, "constraint_name", None)
    if column:
        named = f"{table}.{column}" if table else column
    elif constraint:
        named = f"constraint {constraint}" + (f" of {table}" if table else "")
    else:
        named = ""
    return mask(f"{named}: {message}" if named else f"{type(exc).__name__}: {message}")


def translate(exc: BaseException, where: str, address: str, *, writes: bool = True) -> QtsDataError:
    """A qts-data error for ``exc``, raised by the operation ``where`` against ``address``
    (``writes``: an operation that writes, so a refusal says nothing was written)."""
    if isinstance(exc, QtsDataError):
        return exc
    detail = mask(" ".join(f"{type(exc).__name__}: {exc}".split()))
    unwritten = "; nothing was written" if writes else ""
    if isinstance(exc, pgerr.UndefinedTableError | pgerr.UndefinedColumnError):
        return SchemaMissingError(
            f"{where}: the database at {address} lacks the qts-data schema or has an older "
            f"version ({detail}); run `qts-data migrate`"
        )
    if isinstance(exc, pgerr.DataError | pgerr.IntegrityConstraintViolationError):
        # Class 22 (bad value: overflow, too long, invalid text) and 23 (constraint).
        return ContractError(f"{where}: the database refused a value: {_refusal(exc)}{unwritten}")
    if (isinstance(exc, pgerr.InterfaceError) and isinstance(exc, ValueError)) or isinstance(
        exc, OverflowError
    ):
        # asyncpg's client-side DataError, or its encoder's OverflowError (binary COPY):
        # a value it cannot send (an integer out of the int64 range...).
        return ContractError(
            f"{where}: a value cannot be sent to the database: {detail}{unwritten}"
        )
    if isinstance(exc, asyncio.TimeoutError | pgerr.QueryCanceledError):
        return BackendError(f"{where}: {address} did not answer in time ({detail})")
    if is_connection_error(exc):
        return BackendError(f"{where}: cannot reach PostgreSQL at {address} ({detail})")
    if isinstance(exc, asyncpg.PostgresError):
        return BackendError(f"{where}: PostgreSQL at {address} failed: {detail}")
    return BackendError(f"{where}: {detail}")
