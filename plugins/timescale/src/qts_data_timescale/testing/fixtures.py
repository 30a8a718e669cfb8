"""pytest fixtures around :class:`~qts_data_timescale.testing.engine.TimescaleEngine`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qts_data_timescale.testing.engine import EngineError, TimescaleEngine, install_engine

__all__ = ["ENGINE_FIXTURE", "prepare_engine", "timescaledb_engine"]

ENGINE_FIXTURE = "timescaledb_engine"


def prepare_engine(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Before any test runs: when a collected test uses the engine, install it now (reporting
    that on the terminal), or stop the whole run with one line saying what is missing."""
    if not any(ENGINE_FIXTURE in getattr(item, "fixturenames", ()) for item in items):
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    announce = reporter.write_line if reporter is not None else None
    try:
        install_engine(announce=announce)
    except EngineError as exc:
        pytest.exit(f"qts-data-timescale tests: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.fixture(scope="session")
def timescaledb_engine() -> Iterator[TimescaleEngine]:
    """A TimescaleDB engine of this test session (started on first use, stopped at the end)."""
    engine = TimescaleEngine()
    try:
        engine.start()
    except EngineError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield engine
    finally:
        engine.stop()
