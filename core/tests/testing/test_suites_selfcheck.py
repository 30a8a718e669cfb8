"""Self-check of the conformance suites of qts_data.testing.

* The three suites run against the in-memory reference implementations.
* A memory adapter without some capabilities checks the NotSupportedError path.
* In a throwaway project (its own rootdir, pytest-asyncio in STRICT mode, no
  repository configuration), the suites pass against the memory plugin and
  catch deliberately broken implementations.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, cast

import pytest

from qts_data.contracts import OHLCV, Event, Interval, TickData
from qts_data.errors import NotSupportedError
from qts_data.interfaces import Capability, EventSink, IngestResult, TickSource
from qts_data.testing import AdapterConformance, CacheClientConformance, EventSinkConformance

memory_adapter = pytest.importorskip("qts_data_memory.adapter")
memory_cache = pytest.importorskip("qts_data_memory.cache")
memory_sink = pytest.importorskip("qts_data_memory.sink")


class TestMemoryAdapterConformance(AdapterConformance):
    raw_sheet_names = ("positions", "ledger", "strategies", "risk_configs", "execution_logs")

    @pytest.fixture
    def make_adapter(self) -> Callable[[], Any]:
        return cast(Callable[[], Any], memory_adapter.MemoryAdapter)


class _NoMarketDataAdapter(memory_adapter.MemoryAdapter):  # type: ignore[name-defined,misc]
    """The memory adapter as a backend without market data (like a spreadsheet)."""

    capabilities = Capability.ALL - {Capability.TICKS, Capability.OHLCV}

    async def ingest_ticks(self, ticks: TickSource, *, batch_size: int = 10_000) -> IngestResult:
        raise NotSupportedError("no-market-data adapter: ingest_ticks is not supported")

    async def fetch_tick_data(self, symbol: str, start: datetime, end: datetime) -> list[TickData]:
        raise NotSupportedError("no-market-data adapter: fetch_tick_data is not supported")

    async def upsert_ohlcv(
        self, candles: Iterable[OHLCV], interval: Interval | str = Interval.D1
    ) -> int:
        raise NotSupportedError("no-market-data adapter: upsert_ohlcv is not supported")

    async def fetch_ohlcv(
        self, symbol: str, start: datetime, end: datetime, interval: Interval | str = Interval.D1
    ) -> list[OHLCV]:
        raise NotSupportedError("no-market-data adapter: fetch_ohlcv is not supported")


class TestAdapterWithoutMarketDataConformance(AdapterConformance):
    raw_sheet_names = ("positions", "ledger")

    @pytest.fixture
    def make_adapter(self) -> Callable[[], Any]:
        async def make() -> Any:  # an awaitable factory result is accepted too
            return _NoMarketDataAdapter()

        return make


class TestMemoryCacheClientConformance(CacheClientConformance):
    @pytest.fixture
    def make_cache_client(self) -> Callable[[], Any]:
        return cast(Callable[[], Any], memory_cache.MemoryCacheClient)


class TestMemoryEventSinkConformance(EventSinkConformance):
    @pytest.fixture
    def make_event_sink(self) -> Callable[[], Any]:
        return cast(Callable[[], Any], memory_sink.MemoryEventSink)

    async def delivered(self, sink: EventSink) -> list[Event]:
        return list(sink.events)  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_delivered_must_be_overridden() -> None:
    with pytest.raises(NotImplementedError, match="must override"):
        await EventSinkConformance().delivered(memory_sink.MemoryEventSink())


def test_suite_classes_are_not_collected_by_themselves() -> None:
    for suite in (AdapterConformance, CacheClientConformance, EventSinkConformance):
        assert not suite.__name__.startswith("Test")


# -- in a foreign project, STRICT mode, against broken implementations --------------------------

FOREIGN_TESTS = """
import pytest

from qts_data.testing import AdapterConformance, CacheClientConformance, EventSinkConformance
from qts_data_memory.adapter import MemoryAdapter
from qts_data_memory.cache import MemoryCacheClient
from qts_data_memory.sink import MemoryEventSink


class TestGoodAdapter(AdapterConformance):
    raw_sheet_names = ("positions", "ledger", "strategies", "risk_configs", "execution_logs")

    @pytest.fixture
    def make_adapter(self):
        return MemoryAdapter


class TestGoodCache(CacheClientConformance):
    @pytest.fixture
    def make_cache_client(self):
        return MemoryCacheClient


class TestGoodSink(EventSinkConformance):
    @pytest.fixture
    def make_event_sink(self):
        return MemoryEventSink

    async def delivered(self, sink):
        return sink.events


# Broken implementations: each must fail the named tests.

class NoIdempotency(MemoryAdapter):
    async def append_ledger(self, entry):
        self._ledger.add(entry.timestamp, entry)
        return True


class InclusiveEnd(MemoryAdapter):
    async def fetch_tick_data(self, symbol, start, end):
        from datetime import timedelta
        return await super().fetch_tick_data(symbol, start, end + timedelta(microseconds=1))


class FloatPrices(MemoryAdapter):
    async def fetch_tick_data(self, symbol, start, end):
        from decimal import Decimal
        rows = await super().fetch_tick_data(symbol, start, end)
        return [r.model_copy(update={"price": Decimal(float(r.price))}) for r in rows]


class NoAggregation(MemoryAdapter):
    async def fetch_ohlcv(self, symbol, start, end, interval="1d"):
        saved, self._ticks = self._ticks, {}
        try:
            return await super().fetch_ohlcv(symbol, start, end, interval)
        finally:
            self._ticks = saved


class HalfAppliedIngest(MemoryAdapter):
    async def ingest_ticks(self, ticks, *, batch_size=10_000):
        return await super().ingest_ticks(ticks, batch_size=1)


class QuietRaw(MemoryAdapter):
    async def fetch_raw_data(self, sheet):
        from qts_data.errors import QtsDataError
        try:
            return await super().fetch_raw_data(sheet)
        except QtsDataError:
            raise QtsDataError("unknown sheet") from None


class TicklessWrongMessage(MemoryAdapter):
    from qts_data.interfaces import Capability
    capabilities = Capability.ALL - {Capability.TICKS}

    async def ingest_ticks(self, ticks, *, batch_size=10_000):
        self.require("ticks")


class TicklessSilent(MemoryAdapter):
    from qts_data.interfaces import Capability
    capabilities = Capability.ALL - {Capability.TICKS}


class TestNoIdempotency(AdapterConformance):
    @pytest.fixture
    def make_adapter(self):
        return NoIdempotency


class TestInclusiveEnd(AdapterConformance):
    @pytest.fixture
    def make_adapter(self):
        return InclusiveEnd


class TestFloatPrices(AdapterConformance):
    @pytest.fixture
    def make_adapter(self):
        return FloatPrices


class TestNoAggregation(AdapterConformance):
    @pytest.fixture
    def make_adapter(self):
        return NoAggregation


class TestHalfAppliedIngest(AdapterConformance):
    @pytest.fixture
    def make_adapter(self):
        return HalfAppliedIngest


class TestQuietRaw(AdapterConformance):
    @pytest.fixture
    def make_adapter(self):
        return QuietRaw


class TestTicklessWrongMessage(AdapterConformance):
    @pytest.fixture
    def make_adapter(self):
        return TicklessWrongMessage


class TestTicklessSilent(AdapterConformance):
    @pytest.fixture
    def make_adapter(self):
        return TicklessSilent


class NoTtl(MemoryCacheClient):
    async def set(self, key, value, ttl_ms=None):
        await super().set(key, value)


class TtlOfMissingIsNone(MemoryCacheClient):
    async def ttl_ms(self, key):
        value = await super().ttl_ms(key)
        return None if value == -2 else value


class EmptyHashesLinger(MemoryCacheClient):
    async def hdel(self, key, *fields):
        current = self._hash(key)
        if current is None:
            return 0
        return sum(current.pop(f, None) is not None for f in fields)


class ScanFirstPageOnly(MemoryCacheClient):
    async def scan_iter(self, match="*", count=500):
        n = 0
        async for key in super().scan_iter(match, count):
            if n == 1000:
                return
            n += 1
            yield key


class HsetDropsTtl(MemoryCacheClient):
    async def hset(self, key, mapping, ttl_ms=None):
        added = await super().hset(key, mapping, ttl_ms)
        if ttl_ms is None:
            self._expires.pop(key, None)
        return added


class TestNoTtl(CacheClientConformance):
    @pytest.fixture
    def make_cache_client(self):
        return NoTtl


class TestTtlOfMissingIsNone(CacheClientConformance):
    @pytest.fixture
    def make_cache_client(self):
        return TtlOfMissingIsNone


class TestEmptyHashesLinger(CacheClientConformance):
    @pytest.fixture
    def make_cache_client(self):
        return EmptyHashesLinger


class TestScanFirstPageOnly(CacheClientConformance):
    @pytest.fixture
    def make_cache_client(self):
        return ScanFirstPageOnly


class TestHsetDropsTtl(CacheClientConformance):
    @pytest.fixture
    def make_cache_client(self):
        return HsetDropsTtl


class ReversingSink(MemoryEventSink):
    async def deliver(self, events):
        await super().deliver(list(reversed(events)))


class TestReversingSink(EventSinkConformance):
    @pytest.fixture
    def make_event_sink(self):
        return ReversingSink

    async def delivered(self, sink):
        return sink.events


class TestSinkWithoutDelivered(EventSinkConformance):
    @pytest.fixture
    def make_event_sink(self):
        return MemoryEventSink
"""

#: Broken implementation -> tests of it that must fail (others may fail too).
MUST_FAIL: dict[str, set[str]] = {
    "TestNoIdempotency": {
        "test_append_ledger_with_a_recorded_idempotency_key_returns_false",
        "test_partial_fills_of_one_order_are_all_stored",
    },
    "TestInclusiveEnd": {"test_fetch_tick_data_range_is_half_open"},
    "TestFloatPrices": {"test_ticks_keep_microseconds_and_every_decimal_digit"},
    "TestNoAggregation": {
        "test_fetch_ohlcv_aggregates_ticks[1m]",
        "test_fetch_ohlcv_aggregates_ticks[1d]",
        "test_newest_bar_is_aggregated_from_ticks",
    },
    "TestHalfAppliedIngest": {"test_failed_ingest_leaves_stored_ticks_unchanged"},
    "TestQuietRaw": {"test_fetch_raw_data_of_an_unknown_name_lists_the_known_ones"},
    "TestTicklessWrongMessage": {
        "test_ingest_ticks_from_a_list",
        "test_lacking_capabilities_refuse_every_operation",
    },
    "TestTicklessSilent": {
        "test_ingest_ticks_from_a_list",
        "test_reingesting_the_same_ticks_adds_nothing",
    },
    "TestNoTtl": {
        "test_set_with_ttl_expires",
        "test_ttl_ms_reports_missing_persistent_and_remaining",
    },
    "TestTtlOfMissingIsNone": {"test_expire_of_a_missing_key_returns_false"},
    "TestEmptyHashesLinger": {"test_hdel_counts_removed_fields_and_the_last_removes_the_key"},
    "TestScanFirstPageOnly": {"test_scan_iter_finds_every_matching_key_and_no_other"},
    "TestHsetDropsTtl": {"test_hset_keeps_the_ttl_unless_given"},
    "TestReversingSink": {
        "test_delivers_a_batch_in_order",
        "test_batches_in_sequence_keep_their_order",
    },
    "TestSinkWithoutDelivered": {"test_delivers_a_batch_in_order"},
}
GOOD = ("TestGoodAdapter", "TestGoodCache", "TestGoodSink")


@pytest.fixture(scope="module")
def foreign_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """Outcome of each test of ``FOREIGN_TESTS`` run in a project of its own, in strict mode."""
    project = tmp_path_factory.mktemp("foreign_project")
    (project / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n", "utf-8"
    )
    (project / "test_foreign.py").write_text(textwrap.dedent(FOREIGN_TESTS), "utf-8")
    report = project / "report.xml"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            f"--junitxml={report}",
            "--rootdir",
            str(project),
            "-c",
            str(project / "pytest.ini"),
            *(f"test_foreign.py::{suite}" for suite in GOOD),
            *(
                f"test_foreign.py::{cls}::{name}"
                for cls, names in MUST_FAIL.items()
                for name in names
            ),
        ],
        cwd=project,
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert report.exists(), completed.stdout + completed.stderr
    outcomes: dict[str, dict[str, str]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        cls = case.get("classname", "").rsplit(".", 1)[-1]
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = "failed" if child.tag == "failure" else child.tag
        outcomes.setdefault(cls, {})[case.get("name", "")] = outcome
    assert outcomes, completed.stdout + completed.stderr
    return outcomes


@pytest.mark.slow
@pytest.mark.parametrize("suite", GOOD)
def test_suites_pass_in_a_strict_mode_project(
    foreign_run: dict[str, dict[str, str]], suite: str
) -> None:
    outcomes = foreign_run[suite]
    bad = {
        name: outcome for name, outcome in outcomes.items() if outcome not in ("passed", "skipped")
    }
    assert not bad
    assert sum(outcome == "passed" for outcome in outcomes.values()) >= 8


@pytest.mark.slow
@pytest.mark.parametrize("broken", sorted(MUST_FAIL))
def test_suites_catch_broken_implementations(
    foreign_run: dict[str, dict[str, str]], broken: str
) -> None:
    outcomes = foreign_run[broken]
    for name in MUST_FAIL[broken]:
        assert outcomes.get(name) in ("failed", "error"), (
            f"{broken}.{name} should fail, was {outcomes.get(name)}"
        )
