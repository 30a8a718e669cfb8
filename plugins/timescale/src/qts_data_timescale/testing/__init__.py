"""Test support of the ``timescale`` plugin: a real TimescaleDB engine on a loopback port.

In a conftest::

    from qts_data_timescale.testing import fixtures

    timescaledb_engine = fixtures.timescaledb_engine  # the session's engine


    def pytest_collection_modifyitems(config, items):
        fixtures.prepare_engine(config, items)  # installs it before the run, or stops the run

See :mod:`qts_data_timescale.testing.engine` for what the engine is and its limits.
"""

from qts_data_timescale.testing.engine import EngineError, TimescaleEngine, install_engine

__all__ = ["EngineError", "TimescaleEngine", "install_engine"]
