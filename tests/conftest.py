"""Cross-plugin and end-to-end tests: stacks from configuration, the CLI, the demo."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from qts_data.plugins.manager import reset_plugin_host


@dataclass
class Run:
    code: int
    out: str
    err: str


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60
) -> Run:
    """Run the installed ``qts-data`` command in a fresh process."""
    proc = subprocess.run(
        [sys.executable, "-m", "qts_data.cli", *args],
        capture_output=True,
        text=True,
        env=env if env is not None else {**os.environ, "COLUMNS": "200"},
        cwd=cwd,
        timeout=timeout,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(autouse=True)
def fresh_plugin_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test discovers plugins anew, without the caller's plugin environment variables."""
    for name in list(os.environ):
        if name.startswith("QTS_DATA"):
            monkeypatch.delenv(name)
    reset_plugin_host()
    yield
    reset_plugin_host()
