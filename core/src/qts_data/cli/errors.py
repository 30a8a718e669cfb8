"""Command-line error handling: one masked line, never a traceback (unless QTS_DATA_DEBUG=1)."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any, NoReturn

import click

from qts_data.config.secrets import mask
from qts_data.errors import ConfigError, PluginError, QtsDataError

EXIT_UNHEALTHY = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
#: What a shell reports for a program ended by SIGPIPE (128 + 13), as ``yes | head`` does.
EXIT_BROKEN_PIPE = 141


def debugging() -> bool:
    """``QTS_DATA_DEBUG`` is set (to anything but empty or 0): errors show their traceback."""
    return os.environ.get("QTS_DATA_DEBUG", "") not in ("", "0")


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"qts-data: error: {mask(message)}", err=True)
    sys.exit(code)


def end_on_broken_pipe() -> NoReturn:
    """The reader of stdout went away (``qts-data ... | head``): stop quietly, as Unix tools do.

    Later writes (the interpreter's flush at exit) go to /dev/null, not to a second error.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(EXIT_BROKEN_PIPE)


class QtsGroup(click.Group):
    """A click group that turns library errors into one line on stderr."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # a bad argument, a missing file: one line too
            where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
            fail(f"{exc.format_message()}{where}", EXIT_USAGE)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except BrokenPipeError:
            end_on_broken_pipe()
        except (ConfigError, PluginError) as exc:
            _failed(exc, EXIT_USAGE)
        except QtsDataError as exc:
            _failed(exc, EXIT_UNHEALTHY)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except Exception as exc:
            hint = "" if debugging() else " (set QTS_DATA_DEBUG=1 to see the traceback)"
            _failed(exc, EXIT_INTERNAL, f"internal error: {type(exc).__name__}: {exc}{hint}")


def _failed(exc: BaseException, code: int, message: str | None = None) -> NoReturn:
    """One line on stderr and exit ``code``; with QTS_DATA_DEBUG the traceback first."""
    if debugging():
        click.echo(mask("".join(traceback.format_exception(exc))).rstrip(), err=True)
    fail(str(exc) if message is None else message, code)
