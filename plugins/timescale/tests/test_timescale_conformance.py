"""The core's adapter conformance suite against a real PostgreSQL server."""

from __future__ import annotations

import pytest
from timescale_support import Factory, make

from qts_data.testing import AdapterConformance
from qts_data_timescale.adapter import SHEETS


class TestTimescaleAdapterConformance(AdapterConformance):
    """Plain PostgreSQL flavour, binary-COPY ingest, pipelined batches."""

    raw_sheet_names = tuple(SHEETS)

    @pytest.fixture
    def make_adapter(self, empty_database: str) -> Factory:
        return lambda: make(empty_database)


class TestTimescaleAdapterConformanceArrays(AdapterConformance):
    """The same behaviour with INSERT ... unnest ingest, no pipelining, no statement cache."""

    raw_sheet_names = tuple(SHEETS)

    @pytest.fixture
    def make_adapter(self, empty_database: str) -> Factory:
        return lambda: make(
            empty_database, ingest_method="unnest", ingest_pipeline=False, pgbouncer=True
        )
