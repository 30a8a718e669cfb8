"""Command-line error handling: one masked line, never a traceback (unless QTS_DATA_DEBUG=1)."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from qts_data.config.secrets import mask
from qts_data.errors import ConfigError, PluginError, QtsDataError

EXIT_UNHEALTHY = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


def fail(message: str, code: int = EXIT_USAGE) -> None:
    click.echo(f"qts-data: error: {mask(message)}", err=True)
    sys.exit(code)


class QtsGroup(click.Group):
    """A click group that turns library errors into one line on stderr."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except (ConfigError, PluginError) as exc:
            fail(str(exc), EXIT_USAGE)
        except QtsDataError as exc:
            fail(str(exc), EXIT_UNHEALTHY)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except Exception as exc:
            if os.environ.get("QTS_DATA_DEBUG"):
                raise
            fail(
                f"internal error: {type(exc).__name__}: {exc} (set QTS_DATA_DEBUG=1 to see the traceback)",
                EXIT_INTERNAL,
            )
        return None
