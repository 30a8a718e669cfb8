"""Shared output helpers: a rich console on stdout, JSON for scripts."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console

from qts_data.cli.errors import end_on_broken_pipe
from qts_data.config.secrets import mask

#: Line width when stdout is not a terminal: wide enough that no value is cut or folded
#: (rich would otherwise assume 80 columns and shorten cells to "ModuleNotFound…").
PIPED_WIDTH = 10_000


class _Console(Console):
    def on_broken_pipe(self) -> None:  # rich >= 13.4; rich's own ends with exit code 1
        end_on_broken_pipe()


def console() -> Console:
    """The console of a command's output: on a terminal, tables fit its width; piped or
    redirected, every value is printed whole."""
    out = _Console(highlight=False, soft_wrap=False)
    if not out.is_terminal:
        out = _Console(highlight=False, soft_wrap=False, width=PIPED_WIDTH)
    return out


def echo_json(data: Any) -> None:
    click.echo(mask(json.dumps(data, indent=2, default=str)))


def state_style(state: str) -> str:
    return {
        "HEALTHY": "green",
        "DEGRADED": "yellow",
        "UNHEALTHY": "bold red",
        "loaded": "green",
    }.get(state, "red")
