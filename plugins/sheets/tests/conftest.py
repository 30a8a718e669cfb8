"""Fixtures of the sheets plugin's tests: the local Sheets API stand-in, adapters on it,
and a guard that fails any attempt to reach a host off this machine (Google included)."""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio

from qts_data_sheets import SheetsSettings
from qts_data_sheets.adapter import SheetsAdapter
from qts_data_sheets.testing import SheetsStandIn, fixtures
from qts_data_sheets.testing.fixtures import create_default_spreadsheet, standin_settings

# The stand-in's fixtures (a session-wide server; per test: no faults, empty log).
sheets_standin_server = fixtures.sheets_standin_server
sheets_standin = fixtures.sheets_standin

# -- no traffic off this machine -------------------------------------------------------------------
_guard = {"on": False}
#: Hosts the code under test tried to reach while the guard was on (should stay empty).
OFF_MACHINE: list[str] = []


def _local(host: Any) -> bool:
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _guard["on"]:
        return
    host = None
    if event == "socket.getaddrinfo":
        host = args[0]
    elif event == "socket.connect":
        address = args[1]
        host = address[0] if isinstance(address, tuple) else None
    else:
        return
    if isinstance(host, bytes):
        host = host.decode()
    if not _local(host):
        OFF_MACHINE.append(str(host))
        raise ConnectionRefusedError(f"test guard: no traffic off this machine (to {host!r})")


sys.addaudithook(_audit)


@pytest.fixture(autouse=True)
def no_traffic_off_this_machine() -> Iterator[None]:
    """Every test of this plugin: a name lookup or connection off loopback fails, and fails the test."""
    OFF_MACHINE.clear()
    _guard["on"] = True
    try:
        yield
    finally:
        _guard["on"] = False
    assert not OFF_MACHINE, f"the code tried to reach hosts off this machine: {OFF_MACHINE}"


# -- adapters on the stand-in -------------------------------------------------------------------------
MakeAdapter = Callable[..., Awaitable[SheetsAdapter]]


@pytest.fixture
def spreadsheet(sheets_standin: SheetsStandIn) -> str:
    """A fresh spreadsheet with the four default worksheets (header rows only)."""
    return create_default_spreadsheet(sheets_standin)


@pytest_asyncio.fixture
async def make_sheets_adapter(
    sheets_standin: SheetsStandIn, spreadsheet: str
) -> AsyncIterator[MakeAdapter]:
    """``await make_sheets_adapter(**settings)``: an opened adapter on the stand-in (closed after)."""
    made: list[SheetsAdapter] = []

    async def make(spreadsheet_id: str | None = None, **overrides: Any) -> SheetsAdapter:
        settings = standin_settings(sheets_standin, spreadsheet_id or spreadsheet, **overrides)
        adapter = SheetsAdapter(SheetsSettings(**settings))
        made.append(adapter)
        await adapter.open()
        return adapter

    yield make
    for adapter in made:
        await adapter.close()


@pytest_asyncio.fixture
async def adapter(make_sheets_adapter: MakeAdapter) -> SheetsAdapter:
    return await make_sheets_adapter()
