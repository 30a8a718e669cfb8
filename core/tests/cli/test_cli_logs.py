"""The command line's log handler: one masked line per record, the traceback only when debugging."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest

from qts_data.cli.logs import CommandLineFormatter, StderrHandler, configure_logging

FLOOR = "Failed to restore the pool connection floor; retrying"


def _failed_record() -> logging.LogRecord:
    try:
        raise OSError("connect call failed\nto postgresql://qts:s3cr3t-pw@db/qts")
    except OSError:
        return logging.getLogger("asyncpg.pool").makeRecord(
            "asyncpg.pool", logging.WARNING, __file__, 1, FLOOR, (), sys.exc_info()
        )


def test_a_record_with_an_exception_is_one_masked_line() -> None:
    record = _failed_record()
    line = CommandLineFormatter().format(record)
    assert line == (
        f"qts-data: warning: asyncpg.pool: {FLOOR} "
        "(OSError: connect call failed to postgresql://qts:***@db/qts)"
    )
    assert record.exc_info is not None  # left whole for other handlers


def test_debugging_adds_the_traceback_below_the_line() -> None:
    text = CommandLineFormatter(debug=True).format(_failed_record())
    first, *rest = text.splitlines()
    assert first.startswith(f"qts-data: warning: asyncpg.pool: {FLOOR} (OSError: ")
    assert rest[0] == "Traceback (most recent call last):"
    assert "s3cr3t-pw" not in text


@pytest.fixture
def cli_logging() -> Iterator[None]:
    root = logging.getLogger()
    before = list(root.handlers)
    yield
    for handler in root.handlers:
        if handler not in before:
            root.removeHandler(handler)


@pytest.mark.parametrize("debug", ["", "0", "1"])
def test_configure_logging_writes_to_the_current_stderr_once(
    cli_logging: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    debug: str,
) -> None:
    monkeypatch.setenv("QTS_DATA_DEBUG", debug)
    configure_logging()
    configure_logging()  # a second call replaces the first handler
    assert sum(isinstance(h, StderrHandler) for h in logging.getLogger().handlers) == 1
    logger = logging.getLogger("asyncpg.pool")
    logger.info("not shown")
    try:
        raise ConnectionRefusedError(111, "Connect call failed")
    except OSError:
        logger.warning(FLOOR, exc_info=True)
    err = capsys.readouterr().err
    line = f"qts-data: warning: asyncpg.pool: {FLOOR} (ConnectionRefusedError: [Errno 111] Connect call failed)"
    if debug == "1":
        assert err.startswith(line + "\nTraceback (most recent call last):\n"), err
    else:
        assert err == line + "\n"
