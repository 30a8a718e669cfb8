"""The exceptions of qts-data.

Every error the library raises on purpose derives from :class:`QtsDataError`.
Their messages name what is wrong and where (a file, a key path, a field, a
plugin), and never contain a secret: the command line prints them as one line.
"""

from __future__ import annotations

from enum import Enum


class QtsDataError(Exception):
    """Base class of every error raised on purpose by qts-data."""


class ContractError(QtsDataError, ValueError):
    """A value does not satisfy a data contract (bad field, bad row)."""


class ConfigError(QtsDataError):
    """The configuration is invalid: the message names the source and the key path."""


class PluginError(QtsDataError):
    """A plugin could not be loaded, or a component name is provided by no plugin."""


class ElementTypeError(ContractError, TypeError):
    """An element of a bulk write is not the contract the method takes."""


class NotSupportedError(QtsDataError, NotImplementedError):
    """The backend does not support this operation (e.g. tick data on Google Sheets)."""


class Failure(str, Enum):
    """How a backend call failed: what a caller (or a test) decides on, not the message."""

    #: No connection could be made (refused, unresolvable, TLS or authentication failed, or
    #: not made within the time budget): the operation was not sent.
    UNREACHABLE = "unreachable"
    #: Connected, but no reply came within the time budget (the call may still take effect).
    TIMEOUT = "timeout"
    #: The connection was lost during the call (closed or reset by the server or the network).
    DISCONNECTED = "disconnected"
    #: The client's pool had no connection free within its wait.
    BUSY = "busy"
    #: The client is closed or not open yet.
    CLOSED = "closed"
    #: The server answered with an error: it refused the command.
    REFUSED = "refused"


class BackendError(QtsDataError):
    """A backend (database, cache server, API) failed or could not be reached.

    Besides the one-line message, what failed is in fields (``None`` where a
    backend does not say): ``backend`` (the component, e.g. ``"redis_cache 'hot'"``),
    ``operation`` (``"GET"``, ``"fetch_positions"``), ``address`` (``"127.0.0.1:6379"``,
    never with a password) and ``failure`` (a :class:`Failure`).
    """

    def __init__(
        self,
        message: str,
        *,
        backend: str | None = None,
        operation: str | None = None,
        address: str | None = None,
        failure: Failure | None = None,
    ) -> None:
        super().__init__(message)
        self.backend = backend
        self.operation = operation
        self.address = address
        self.failure = failure


class CacheTypeError(QtsDataError, TypeError):
    """A cache operation was applied to a key holding another type (Redis' WRONGTYPE)."""
