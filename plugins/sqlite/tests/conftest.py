"""Fixtures of the sqlite plugin's tests."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from qts_data_sqlite.adapter import SqliteAdapter


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A database file that does not exist yet, in a folder of its own."""
    return tmp_path / "qts.sqlite3"


@pytest.fixture
def make_file_adapter(tmp_path: Path) -> Callable[[], SqliteAdapter]:
    """Each call: a new, unopened adapter over a new (empty) file."""
    counter = itertools.count()
    return lambda: SqliteAdapter(tmp_path / f"store-{next(counter)}.sqlite3")
