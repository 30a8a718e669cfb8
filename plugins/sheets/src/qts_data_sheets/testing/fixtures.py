"""pytest fixtures and helpers around :class:`~qts_data_sheets.testing.standin.SheetsStandIn`.

In a conftest::

    from qts_data_sheets.testing import sheets_standin  # noqa: F401 - a fixture

    async def test_x(sheets_standin):
        sid = create_default_spreadsheet(sheets_standin)
        adapter = SheetsAdapter(SheetsSettings(**standin_settings(sheets_standin, sid)))
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from qts_data_sheets.settings import DEFAULT_WORKSHEETS, ROLE_CONTRACTS
from qts_data_sheets.testing.standin import SheetsStandIn

__all__ = [
    "create_default_spreadsheet",
    "default_header_rows",
    "sheets_standin",
    "sheets_standin_server",
    "standin_settings",
]


@pytest.fixture(scope="session")
def sheets_standin_server() -> Iterator[SheetsStandIn]:
    """One stand-in server for the test session."""
    with SheetsStandIn() as standin:
        yield standin


@pytest.fixture
def sheets_standin(sheets_standin_server: SheetsStandIn) -> Iterator[SheetsStandIn]:
    """The session's stand-in, with no faults pending and an empty request log."""
    standin = sheets_standin_server
    standin.reset_faults()
    standin.clear_log()
    standin.require_auth = False
    yield standin
    standin.reset_faults()


def default_header_rows(
    headers: dict[str, dict[str, str]] | None = None,
) -> dict[str, list[list[str]]]:
    """Worksheet title -> [header row] for the four default worksheets."""
    rows = {}
    for role, title in DEFAULT_WORKSHEETS.items():
        mapping = ROLE_CONTRACTS[role].headers((headers or {}).get(role))
        rows[title] = [list(mapping.values())]
    return rows


def create_default_spreadsheet(standin: SheetsStandIn, **kwargs: Any) -> str:
    """A spreadsheet with the default worksheets holding only their header rows; its id."""
    return standin.create_spreadsheet(default_header_rows(), **kwargs)


def standin_settings(
    standin: SheetsStandIn, spreadsheet_id: str, **overrides: Any
) -> dict[str, Any]:
    """Settings of a sheets adapter on the stand-in, with short timeouts and backoffs for tests."""
    settings: dict[str, Any] = {
        "spreadsheet_id": spreadsheet_id,
        "api_base_url": standin.base_url,
        "requests_per_minute": 100_000,
        "max_retries": 4,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.2,
        "timeout_s": 5.0,
    }
    settings.update(overrides)
    return settings
