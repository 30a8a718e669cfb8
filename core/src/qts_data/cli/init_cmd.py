"""``qts-data init``: write a commented starter configuration."""

from __future__ import annotations

from pathlib import Path

import click

from qts_data.cli.errors import fail
from qts_data.config.loader import starter_config_text


@click.command("init")
@click.argument("path", required=False, default="qts-data.toml", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init_command(path: str, force: bool) -> None:
    """Write a commented starter configuration to PATH (default: qts-data.toml)."""
    target = Path(path)
    if target.exists() and not force:
        fail(f"{target} already exists (use --force to overwrite it)")
    try:
        target.write_text(starter_config_text(), "utf-8")
    except OSError as exc:
        fail(f"{target}: cannot write: {exc.strerror}")
    click.echo(f"wrote {target}; check it with: qts-data check {target}")
