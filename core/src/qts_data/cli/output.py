"""Shared output helpers: a rich console on stdout, JSON for scripts."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console

from qts_data.config.secrets import mask


def console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def echo_json(data: Any) -> None:
    click.echo(mask(json.dumps(data, indent=2, default=str)))


def state_style(state: str) -> str:
    return {
        "HEALTHY": "green",
        "DEGRADED": "yellow",
        "UNHEALTHY": "bold red",
        "loaded": "green",
    }.get(state, "red")
