"""Log records on the command line: one masked line each, never a traceback (unless QTS_DATA_DEBUG=1).

The command owns its process's logging: warnings and errors of every logger, ours and
the libraries' (asyncpg's pool logs ``Failed to restore the pool connection floor;
retrying`` with its traceback on every PostgreSQL restart), go to stderr as

    qts-data: warning: asyncpg.pool: Failed to restore ...; retrying (ConnectionRefusedError: ...)

An exception attached to a record is summed up as ``Type: message`` on the same line;
with ``QTS_DATA_DEBUG`` set its traceback follows the line. Records are not changed,
so other handlers (a log file an embedding application configures) still get the
whole exception.
"""

from __future__ import annotations

import logging
import sys

from qts_data.cli.errors import debugging
from qts_data.config.secrets import mask


def exception_summary(exc: BaseException) -> str:
    """``Type: message`` of ``exc`` on one line (just ``Type`` when it has no message)."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


class CommandLineFormatter(logging.Formatter):
    """``qts-data: <level>: <logger>: <message> (<Type>: <exception>)``, masked, one line;
    the traceback (and stack) below it only when ``debug``."""

    def __init__(self, *, debug: bool = False) -> None:
        super().__init__()
        self.debug = debug

    def format(self, record: logging.LogRecord) -> str:
        message = " ".join(record.getMessage().split())
        line = f"qts-data: {record.levelname.lower()}: {record.name}: {message}"
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            line += f" ({exception_summary(exc)})"
        if self.debug:
            if record.exc_info and record.exc_info[0] is not None:
                line += "\n" + self.formatException(record.exc_info).rstrip()
            if record.stack_info:
                line += "\n" + self.formatStack(record.stack_info).rstrip()
        return mask(line)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the ``sys.stderr`` of the moment (a progress display may have replaced it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging() -> logging.Handler:
    """Send warnings and errors of every logger to stderr through :class:`CommandLineFormatter`
    (replacing the handler of an earlier call); returns the handler."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, StderrHandler):
            root.removeHandler(handler)
    handler = StderrHandler()
    handler.setLevel(logging.WARNING)
    handler.setFormatter(CommandLineFormatter(debug=debugging()))
    root.addHandler(handler)
    return handler
