"""The core's conformance suites (qts_data.testing) run against the memory components."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from qts_data.contracts import Event
from qts_data.interfaces import EventSink
from qts_data.testing import AdapterConformance, CacheClientConformance, EventSinkConformance
from qts_data_memory.adapter import SHEETS, MemoryAdapter
from qts_data_memory.cache import MemoryCacheClient
from qts_data_memory.sink import MemoryEventSink


class TestMemoryAdapterConformance(AdapterConformance):
    raw_sheet_names = tuple(SHEETS)

    @pytest.fixture
    def make_adapter(self) -> Callable[[], MemoryAdapter]:
        return MemoryAdapter


class TestMemoryCacheClientConformance(CacheClientConformance):
    @pytest.fixture
    def make_cache_client(self) -> Callable[[], MemoryCacheClient]:
        return MemoryCacheClient


class TestMemoryEventSinkConformance(EventSinkConformance):
    @pytest.fixture
    def make_event_sink(self) -> Callable[[], MemoryEventSink]:
        return MemoryEventSink

    async def delivered(self, sink: EventSink) -> list[Event]:
        assert isinstance(sink, MemoryEventSink)
        return sink.events
