"""The conformance suite of :class:`~qts_data.interfaces.DataSourceAdapter`.

Subclass :class:`AdapterConformance` in a test module of your plugin and give it
a ``make_adapter`` fixture::

    import pytest
    from qts_data.testing import AdapterConformance

    class TestMyAdapter(AdapterConformance):
        raw_sheet_names = ("positions", "ledger")   # names fetch_raw_data knows

        @pytest.fixture
        def make_adapter(self, my_database):
            # a NEW, unopened adapter over an EMPTY store
            return lambda: MyAdapter(dsn=my_database)

Every test checks one behaviour promised by the docstrings of
:class:`~qts_data.interfaces.DataSourceAdapter` (the contract). For an optional
capability the adapter lacks (absent from ``adapter.capabilities``), the tests
of that capability check that the operation raises
:class:`~qts_data.errors.NotSupportedError` naming the operation, and are then
reported as skipped with that reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, ClassVar

import pytest
import pytest_asyncio

from qts_data.contracts import (
    OHLCV,
    ExecutionLog,
    Interval,
    LedgerEntry,
    Position,
    RiskConfig,
    StrategyParam,
    TickData,
)
from qts_data.errors import ContractError, NotSupportedError, QtsDataError
from qts_data.interfaces import Capability, DataSourceAdapter, IngestResult
from qts_data.testing._suite_support import (
    T0,
    agen,
    at,
    build,
    check_close_twice,
    check_close_unopened,
    check_health,
    dumps,
)

__all__ = ["AdapterConformance"]

D = Decimal
KST = timezone(timedelta(hours=9))
#: A far end for "everything" ranges.
FAR = T0 + timedelta(days=3650)
BEFORE = T0 - timedelta(days=3650)


def tick(
    when: datetime,
    price: str | int = "100",
    volume: int = 1,
    *,
    symbol: str = "BTC",
    trade_id: str | None = None,
    **fields: Any,
) -> TickData:
    return TickData(
        time=when, symbol=symbol, price=D(str(price)), volume=volume, trade_id=trade_id, **fields
    )


def entry(
    when: datetime,
    *,
    symbol: str = "AAPL",
    side: str = "BUY",
    qty: str = "1",
    price: str = "100",
    order_id: str | None = None,
    fill_id: str | None = None,
    **fields: Any,
) -> LedgerEntry:
    return LedgerEntry(
        timestamp=when,
        symbol=symbol,
        side=side,
        qty=D(qty),
        price=D(price),
        order_id=order_id,
        fill_id=fill_id,
        **fields,
    )


def candle(
    when: datetime,
    o: str,
    h: str,
    lo: str,
    c: str,
    v: int,
    *,
    symbol: str = "BTC",
) -> OHLCV:
    return OHLCV(time=when, symbol=symbol, open=D(o), high=D(h), low=D(lo), close=D(c), volume=v)


def log(
    when: datetime, order_id: str, stage: str, *, symbol: str = "AAPL", **fields: Any
) -> ExecutionLog:
    return ExecutionLog(
        time=when, order_id=order_id, symbol=symbol, stage=stage, success=True, **fields
    )


def ohlcv_view(candles: Sequence[OHLCV]) -> list[tuple[Any, ...]]:
    return [(c.time, c.symbol, c.open, c.high, c.low, c.close, c.volume) for c in candles]


def tick_view(ticks: Sequence[TickData]) -> list[tuple[Any, ...]]:
    return [(t.time, t.symbol, t.price, t.volume, t.trade_id) for t in ticks]


# Ticks spread over the buckets of every interval (offset from T0, price, volume),
# and the candles each interval must aggregate them into.
AGG_TICKS: tuple[tuple[timedelta, str, int], ...] = (
    (timedelta(seconds=5), "100", 1),
    (timedelta(seconds=30), "105", 2),
    (timedelta(seconds=59, microseconds=999_999), "99.12345678", 3),
    (timedelta(minutes=1), "101", 4),
    (timedelta(minutes=4, seconds=59), "110", 5),
    (timedelta(minutes=5), "90", 6),
    (timedelta(minutes=14, seconds=59, microseconds=500_000), "95", 7),
    (timedelta(minutes=15), "120", 8),
    (timedelta(minutes=59, seconds=59), "80", 9),
    (timedelta(hours=1), "130", 10),
    (timedelta(days=1), "140", 11),
)

_M = timedelta(minutes=1)
AGG_EXPECTED: dict[str, list[tuple[timedelta, str, str, str, str, int]]] = {
    "1m": [
        (0 * _M, "100", "105", "99.12345678", "99.12345678", 6),
        (1 * _M, "101", "101", "101", "101", 4),
        (4 * _M, "110", "110", "110", "110", 5),
        (5 * _M, "90", "90", "90", "90", 6),
        (14 * _M, "95", "95", "95", "95", 7),
        (15 * _M, "120", "120", "120", "120", 8),
        (59 * _M, "80", "80", "80", "80", 9),
        (60 * _M, "130", "130", "130", "130", 10),
        (timedelta(days=1), "140", "140", "140", "140", 11),
    ],
    "5m": [
        (0 * _M, "100", "110", "99.12345678", "110", 15),
        (5 * _M, "90", "90", "90", "90", 6),
        (10 * _M, "95", "95", "95", "95", 7),
        (15 * _M, "120", "120", "120", "120", 8),
        (55 * _M, "80", "80", "80", "80", 9),
        (60 * _M, "130", "130", "130", "130", 10),
        (timedelta(days=1), "140", "140", "140", "140", 11),
    ],
    "15m": [
        (0 * _M, "100", "110", "90", "95", 28),
        (15 * _M, "120", "120", "120", "120", 8),
        (45 * _M, "80", "80", "80", "80", 9),
        (60 * _M, "130", "130", "130", "130", 10),
        (timedelta(days=1), "140", "140", "140", "140", 11),
    ],
    "1h": [
        (0 * _M, "100", "120", "80", "80", 45),
        (60 * _M, "130", "130", "130", "130", 10),
        (timedelta(days=1), "140", "140", "140", "140", 11),
    ],
    "1d": [
        (0 * _M, "100", "130", "80", "130", 55),
        (timedelta(days=1), "140", "140", "140", "140", 11),
    ],
}


class AdapterConformance:
    """Conformance tests of a :class:`~qts_data.interfaces.DataSourceAdapter`.

    Provide in the subclass:

    * ``make_adapter`` (fixture, required): returns a zero-argument callable that
      creates a new, unopened adapter over an empty store (it may return an
      awaitable of the adapter). The suite's ``adapter`` fixture opens it and
      closes it after the test.

    Attributes you may override:

    * ``raw_sheet_names``: names ``fetch_raw_data`` must know (each is fetched,
      and each must be listed in the error for an unknown name).
    * ``raw_positions_sheet``: the name whose raw rows hold the positions (a
      saved position must show up there); None to leave this unchecked.
    """

    pytestmark: ClassVar[Any] = pytest.mark.asyncio

    raw_sheet_names: ClassVar[Sequence[str]] = ("positions", "ledger")
    raw_positions_sheet: ClassVar[str | None] = "positions"

    # -- fixtures and helpers ---------------------------------------------------------------
    @pytest_asyncio.fixture(loop_scope="function")
    async def adapter(self, make_adapter: Callable[[], Any]) -> AsyncIterator[DataSourceAdapter]:
        """The adapter under test, opened, over an empty store; closed after the test."""
        made: DataSourceAdapter = await build(make_adapter, DataSourceAdapter, "make_adapter")
        await made.open()
        try:
            yield made
        finally:
            await made.close()

    async def require_or_check_unsupported(
        self,
        adapter: DataSourceAdapter,
        capability: str,
        operation: str,
        call: Callable[[], Awaitable[object]],
    ) -> None:
        """Return when ``adapter`` has ``capability``; otherwise check the operation is refused.

        For a lacking capability, ``call()`` (an invocation of ``operation``) must
        raise :class:`NotSupportedError` whose message names ``operation``; the
        test then ends as skipped, saying so.
        """
        if capability in adapter.capabilities:
            return
        with pytest.raises(NotSupportedError) as info:
            await call()
        assert operation in str(info.value), (
            f"{type(adapter).__name__} lacks {capability!r}: the NotSupportedError of "
            f"{operation} must name the operation, got {str(info.value)!r}"
        )
        pytest.skip(
            f"{type(adapter).__name__} lacks capability {capability!r}: "
            f"{operation} raised NotSupportedError as required"
        )

    # -- capabilities ---------------------------------------------------------------------------
    async def test_capabilities_are_known_names(self, adapter: DataSourceAdapter) -> None:
        capabilities = adapter.capabilities
        assert isinstance(capabilities, (set, frozenset))
        unknown = set(capabilities) - Capability.ALL
        assert not unknown, f"capabilities not in Capability.ALL: {sorted(unknown)}"

    async def test_lacking_capabilities_refuse_every_operation(
        self, adapter: DataSourceAdapter
    ) -> None:
        lacking = Capability.ALL - set(adapter.capabilities)
        if not lacking:
            pytest.skip(f"{type(adapter).__name__} has every capability")
        operations: dict[str, list[tuple[str, Callable[[], Awaitable[object]]]]] = {
            Capability.POSITIONS: [
                ("fetch_positions", lambda: adapter.fetch_positions()),
                (
                    "save_position",
                    lambda: adapter.save_position(Position(symbol="X", qty=1, avg_price=1)),
                ),
            ],
            Capability.LEDGER: [
                ("append_ledger", lambda: adapter.append_ledger(entry(T0))),
                ("fetch_ledger", lambda: adapter.fetch_ledger()),
            ],
            Capability.TICKS: [
                ("ingest_ticks", lambda: adapter.ingest_ticks([tick(T0)])),
                ("fetch_tick_data", lambda: adapter.fetch_tick_data("BTC", T0, FAR)),
            ],
            Capability.OHLCV: [
                ("upsert_ohlcv", lambda: adapter.upsert_ohlcv([candle(T0, "1", "1", "1", "1", 1)])),
                ("fetch_ohlcv", lambda: adapter.fetch_ohlcv("BTC", T0, FAR)),
            ],
            Capability.EXECUTION_LOGS: [
                (
                    "store_execution_result",
                    lambda: adapter.store_execution_result(log(T0, "o", "s")),
                ),
                ("fetch_execution_logs", lambda: adapter.fetch_execution_logs()),
            ],
            Capability.STRATEGIES: [
                (
                    "save_strategy_param",
                    lambda: adapter.save_strategy_param(
                        StrategyParam(strategy_id="s", param_name="p", value="v")
                    ),
                ),
                ("fetch_strategy_params", lambda: adapter.fetch_strategy_params()),
            ],
            Capability.RISK: [
                (
                    "save_risk_config",
                    lambda: adapter.save_risk_config(RiskConfig(config_key="k", value=1)),
                ),
                ("fetch_risk_configs", lambda: adapter.fetch_risk_configs()),
            ],
            Capability.RAW: [
                (
                    "fetch_raw_data",
                    lambda: adapter.fetch_raw_data(next(iter(self.raw_sheet_names), "positions")),
                ),
            ],
        }
        for capability in sorted(lacking):
            for operation, call in operations[capability]:
                with pytest.raises(NotSupportedError) as info:
                    await call()
                assert operation in str(info.value), (
                    f"the NotSupportedError of {operation} must name it, got {str(info.value)!r}"
                )

    # -- positions ------------------------------------------------------------------------------
    async def _require_positions(self, adapter: DataSourceAdapter) -> None:
        await self.require_or_check_unsupported(
            adapter,
            Capability.POSITIONS,
            "save_position",
            lambda: adapter.save_position(Position(symbol="X", qty=1, avg_price=1)),
        )

    async def test_update_position_returns_the_stored_contract(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_positions(adapter)
        returned = await adapter.update_position(
            "005930",
            D("9876543210.12345678"),
            "71000.12345678",
            market="KRX",
            unrealized_pnl=D("-1234.56"),
        )
        assert isinstance(returned, Position)
        assert returned.symbol == "005930"
        assert returned.qty == D("9876543210.12345678")
        assert returned.avg_price == D("71000.12345678")
        stored = await adapter.fetch_position("005930")
        assert dumps(stored) == dumps(returned)

    async def test_fetch_positions_is_ordered_by_symbol(self, adapter: DataSourceAdapter) -> None:
        await self._require_positions(adapter)
        for symbol in ("MSFT", "005930", "AAPL", "TSLA", "000660"):
            await adapter.update_position(symbol, 1, 1)
        positions = await adapter.fetch_positions()
        assert [p.symbol for p in positions] == ["000660", "005930", "AAPL", "MSFT", "TSLA"]

    async def test_save_position_replaces_the_same_symbol(self, adapter: DataSourceAdapter) -> None:
        await self._require_positions(adapter)
        await adapter.update_position("AAPL", 10, "150.5")
        await adapter.update_position("MSFT", 3, 300)
        latest = await adapter.update_position("AAPL", 4, "151.25", market="US")
        positions = await adapter.fetch_positions()
        assert [p.symbol for p in positions] == ["AAPL", "MSFT"]
        assert dumps(positions[0]) == dumps(latest)
        assert dumps(await adapter.fetch_position("AAPL")) == dumps(latest)

    async def test_save_position_stores_the_contract_as_given(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_positions(adapter)
        position = Position(
            symbol="KRW-BTC",
            qty=D("0.00000001"),
            avg_price=D("98765432.12345678"),
            market="UPBIT",
            exposure_value=D("12345.67"),
            exposure_pct=D("0.1234"),
            unrealized_pnl=D("-0.01"),
            updated_at=datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=KST),
        )
        await adapter.save_position(position)
        assert dumps(await adapter.fetch_position("KRW-BTC")) == dumps(position)
        assert dumps(await adapter.fetch_positions()) == [dumps(position)]

    async def test_fetch_position_of_a_missing_symbol_is_none(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_positions(adapter)
        assert await adapter.fetch_position("NOPE") is None
        await adapter.update_position("AAPL", 1, 1)
        assert await adapter.fetch_position("NOPE") is None
        assert await adapter.fetch_positions() != []

    async def test_position_with_zero_quantity_is_kept(self, adapter: DataSourceAdapter) -> None:
        await self._require_positions(adapter)
        await adapter.update_position("AAPL", 5, 100)
        await adapter.update_position("AAPL", 0, 0)
        stored = await adapter.fetch_position("AAPL")
        assert stored is not None
        assert stored.qty == 0
        assert stored.avg_price == 0
        assert [p.symbol for p in await adapter.fetch_positions()] == ["AAPL"]

    # -- ledger ------------------------------------------------------------------------------------
    async def _require_ledger(self, adapter: DataSourceAdapter) -> None:
        await self.require_or_check_unsupported(
            adapter, Capability.LEDGER, "append_ledger", lambda: adapter.append_ledger(entry(T0))
        )

    async def test_append_ledger_returns_true_and_stores_the_entry(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_ledger(adapter)
        first = entry(
            at(us=123456),
            qty="0.12345678",
            price="71000.12345678",
            fee="1.25",
            order_id="o-1",
            strategy_tag="mean-rev",
            broker="kis",
        )
        assert await adapter.append_ledger(first) is True
        assert dumps(await adapter.fetch_ledger()) == [dumps(first)]

    async def test_append_ledger_with_a_recorded_idempotency_key_returns_false(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_ledger(adapter)
        original = entry(at(seconds=1), order_id="o-1", price="100")
        assert await adapter.append_ledger(original) is True
        assert await adapter.append_ledger(original) is False
        retried = entry(at(seconds=2), order_id="o-1", price="101")
        assert await adapter.append_ledger(retried) is False
        assert dumps(await adapter.fetch_ledger()) == [dumps(original)]

    async def test_partial_fills_of_one_order_are_all_stored(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_ledger(adapter)
        fills = [
            entry(at(seconds=1), order_id="o-7", fill_id="1", qty="1"),
            entry(at(seconds=2), order_id="o-7", fill_id="2", qty="2"),
            entry(at(seconds=3), order_id="o-7", fill_id="3", qty="3"),
        ]
        for fill in fills:
            assert await adapter.append_ledger(fill) is True
        assert await adapter.append_ledger(fills[1]) is False
        stored = await adapter.fetch_ledger()
        assert [(e.order_id, e.fill_id, e.qty) for e in stored] == [
            ("o-7", "1", D(1)),
            ("o-7", "2", D(2)),
            ("o-7", "3", D(3)),
        ]

    async def test_a_fill_and_its_order_without_fill_id_are_distinct(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_ledger(adapter)
        assert await adapter.append_ledger(entry(at(seconds=1), order_id="o-8")) is True
        assert (
            await adapter.append_ledger(entry(at(seconds=2), order_id="o-8", fill_id="1")) is True
        )
        assert len(await adapter.fetch_ledger()) == 2

    async def test_entries_without_order_id_are_all_stored(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_ledger(adapter)
        same = entry(at(seconds=1))
        assert await adapter.append_ledger(same) is True
        assert await adapter.append_ledger(same) is True
        stored = await adapter.fetch_ledger()
        assert dumps(stored) == [dumps(same), dumps(same)]

    async def test_fetch_ledger_filters_by_symbol(self, adapter: DataSourceAdapter) -> None:
        await self._require_ledger(adapter)
        await adapter.append_ledger(entry(at(seconds=1), symbol="AAPL", order_id="a1"))
        await adapter.append_ledger(entry(at(seconds=2), symbol="MSFT", order_id="m1"))
        await adapter.append_ledger(entry(at(seconds=3), symbol="AAPL", order_id="a2"))
        assert [e.order_id for e in await adapter.fetch_ledger(symbol="AAPL")] == ["a1", "a2"]
        assert [e.order_id for e in await adapter.fetch_ledger(symbol="MSFT")] == ["m1"]
        assert await adapter.fetch_ledger(symbol="TSLA") == []

    async def test_a_reversed_range_is_an_error_naming_the_method(
        self, adapter: DataSourceAdapter
    ) -> None:
        """``start`` after ``end`` is a mistake (``--from`` after ``--to``), not an empty answer."""
        later, earlier = at(seconds=5), at(seconds=1)
        reads: list[tuple[str, str, Callable[[], Awaitable[Any]]]] = [
            (
                Capability.LEDGER,
                "fetch_ledger",
                lambda: adapter.fetch_ledger(start=later, end=earlier),
            ),
            (
                Capability.TICKS,
                "fetch_tick_data",
                lambda: adapter.fetch_tick_data("BTC", later, earlier),
            ),
            (Capability.OHLCV, "fetch_ohlcv", lambda: adapter.fetch_ohlcv("BTC", later, earlier)),
            (
                Capability.EXECUTION_LOGS,
                "fetch_execution_logs",
                lambda: adapter.fetch_execution_logs(start=later, end=earlier),
            ),
        ]
        checked = 0
        for capability, method, call in reads:
            if capability not in adapter.capabilities:
                continue
            with pytest.raises(ContractError, match=rf"^{method}: start .* is after end "):
                await call()
            checked += 1
        if not checked:
            pytest.skip(f"{type(adapter).__name__} has no ranged reads")

    async def test_fetch_ledger_range_is_half_open(self, adapter: DataSourceAdapter) -> None:
        await self._require_ledger(adapter)
        for second in range(5):
            await adapter.append_ledger(entry(at(seconds=second), order_id=f"o{second}"))

        async def ids(**query: Any) -> list[str | None]:
            return [e.order_id for e in await adapter.fetch_ledger(**query)]

        assert await ids(start=at(seconds=1), end=at(seconds=3)) == ["o1", "o2"]
        assert await ids(start=at(seconds=1)) == ["o1", "o2", "o3", "o4"]
        assert await ids(end=at(seconds=1)) == ["o0"]
        assert await ids(start=at(seconds=1, us=1), end=at(seconds=4, us=1)) == ["o2", "o3", "o4"]
        assert await ids(start=at(seconds=2), end=at(seconds=2)) == []
        assert await ids(symbol="AAPL", start=at(seconds=3), end=FAR) == ["o3", "o4"]
        # Bounds in another timezone denote the same instants.
        assert await ids(
            start=at(seconds=1).astimezone(KST), end=at(seconds=3).astimezone(KST)
        ) == ["o1", "o2"]

    async def test_fetch_ledger_is_ordered_by_timestamp(self, adapter: DataSourceAdapter) -> None:
        await self._require_ledger(adapter)
        for second in (3, 1, 4, 0, 2):
            await adapter.append_ledger(entry(at(seconds=second), order_id=f"o{second}"))
        stored = await adapter.fetch_ledger()
        assert [e.order_id for e in stored] == ["o0", "o1", "o2", "o3", "o4"]

    # -- ticks ---------------------------------------------------------------------------------------
    async def _require_ticks(self, adapter: DataSourceAdapter) -> None:
        await self.require_or_check_unsupported(
            adapter, Capability.TICKS, "ingest_ticks", lambda: adapter.ingest_ticks([tick(T0)])
        )

    async def test_ingest_ticks_from_a_list(self, adapter: DataSourceAdapter) -> None:
        await self._require_ticks(adapter)
        ticks = [tick(at(seconds=i), 100 + i, i + 1, trade_id=f"t{i}") for i in range(10)]
        result = await adapter.ingest_ticks(ticks)
        assert isinstance(result, IngestResult)
        assert (result.received, result.inserted, result.duplicates) == (10, 10, 0)
        stored = await adapter.fetch_tick_data("BTC", T0, FAR)
        assert tick_view(stored) == tick_view(ticks)

    async def test_ingest_ticks_from_an_async_generator(self, adapter: DataSourceAdapter) -> None:
        await self._require_ticks(adapter)
        ticks = [tick(at(seconds=i), 100 + i, i + 1, trade_id=f"t{i}") for i in range(10)]
        result = await adapter.ingest_ticks(agen(ticks))
        assert (result.received, result.inserted, result.duplicates) == (10, 10, 0)
        stored = await adapter.fetch_tick_data("BTC", T0, FAR)
        assert tick_view(stored) == tick_view(ticks)

    async def test_ingest_of_nothing_stores_nothing(self, adapter: DataSourceAdapter) -> None:
        await self._require_ticks(adapter)
        result = await adapter.ingest_ticks([])
        assert (result.received, result.inserted) == (0, 0)
        result = await adapter.ingest_ticks(agen([]))
        assert (result.received, result.inserted) == (0, 0)
        assert await adapter.fetch_tick_data("BTC", BEFORE, FAR) == []

    async def test_reingesting_the_same_ticks_adds_nothing(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_ticks(adapter)
        with_ids = [tick(at(seconds=i), 100, 1, trade_id=f"t{i}") for i in range(5)]
        without_ids = [tick(at(seconds=10 + i), 100 + i, 1) for i in range(5)]
        first = await adapter.ingest_ticks(with_ids + without_ids)
        assert (first.received, first.inserted) == (10, 10)
        again = await adapter.ingest_ticks(with_ids + without_ids)
        assert (again.received, again.inserted, again.duplicates) == (10, 0, 10)
        again = await adapter.ingest_ticks(agen(with_ids[:2]))
        assert (again.received, again.inserted, again.duplicates) == (2, 0, 2)
        assert len(await adapter.fetch_tick_data("BTC", T0, FAR)) == 10

    async def test_duplicates_within_one_ingest_are_skipped(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_ticks(adapter)
        a = tick(at(seconds=1), 100, 1, trade_id="t1")
        b = tick(at(seconds=2), 100, 1)
        result = await adapter.ingest_ticks([a, b, a, b, a])
        assert (result.received, result.inserted, result.duplicates) == (5, 2, 3)
        assert tick_view(await adapter.fetch_tick_data("BTC", T0, FAR)) == tick_view([a, b])

    async def test_ticks_sharing_time_and_symbol_with_different_trade_ids_are_kept(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_ticks(adapter)
        when = at(seconds=1, us=500)
        ticks = [tick(when, 100, 1, trade_id=f"t{i}") for i in range(3)]
        result = await adapter.ingest_ticks(ticks)
        assert result.inserted == 3
        stored = await adapter.fetch_tick_data("BTC", T0, FAR)
        assert sorted(t.trade_id or "" for t in stored) == ["t0", "t1", "t2"]

    async def test_ticks_without_trade_id_are_deduplicated_on_every_field(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_ticks(adapter)
        when = at(seconds=1)
        base = tick(when, 100, 1)
        variants = [
            base,
            tick(when, 101, 1),
            tick(when, 100, 2),
            tick(when, 100, 1, bid=D("99")),
            tick(when, 100, 1, ask=D("101")),
            tick(when, 100, 1, source="upbit"),
        ]
        result = await adapter.ingest_ticks([*variants, base])
        assert (result.received, result.inserted) == (7, 6)
        assert len(await adapter.fetch_tick_data("BTC", T0, FAR)) == 6

    async def test_fetch_tick_data_range_is_half_open(self, adapter: DataSourceAdapter) -> None:
        await self._require_ticks(adapter)
        ticks = [tick(at(seconds=i), 100 + i, 1, trade_id=f"t{i}") for i in range(5)]
        await adapter.ingest_ticks(ticks)

        async def ids(start: datetime, end: datetime) -> list[str | None]:
            return [t.trade_id for t in await adapter.fetch_tick_data("BTC", start, end)]

        assert await ids(at(seconds=1), at(seconds=3)) == ["t1", "t2"]
        assert await ids(at(seconds=1, us=1), at(seconds=3, us=1)) == ["t2", "t3"]
        assert await ids(at(seconds=2), at(seconds=2)) == []
        assert await ids(BEFORE, at()) == []
        assert await ids(at(seconds=4, us=1), FAR) == []
        assert await ids(at(seconds=1).astimezone(KST), at(seconds=3).astimezone(KST)) == [
            "t1",
            "t2",
        ]

    async def test_fetch_tick_data_is_in_time_order(self, adapter: DataSourceAdapter) -> None:
        await self._require_ticks(adapter)
        seconds = [7, 2, 9, 0, 5, 3, 8, 1, 6, 4]
        await adapter.ingest_ticks(
            [tick(at(seconds=s), 100 + s, 1, trade_id=f"t{s}") for s in seconds]
        )
        await adapter.ingest_ticks(
            [tick(at(seconds=s, us=1), 1, 1, trade_id=f"u{s}") for s in (5, 0)]
        )
        stored = await adapter.fetch_tick_data("BTC", T0, FAR)
        times = [t.time for t in stored]
        assert times == sorted(times)
        assert len(stored) == 12

    async def test_fetch_tick_data_returns_only_the_symbol(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_ticks(adapter)
        await adapter.ingest_ticks(
            [
                tick(at(seconds=1), 100, 1, symbol="BTC", trade_id="1"),
                tick(at(seconds=1), 200, 1, symbol="ETH", trade_id="1"),
                tick(at(seconds=2), 300, 1, symbol="BTCX", trade_id="2"),
            ]
        )
        assert [t.price for t in await adapter.fetch_tick_data("BTC", T0, FAR)] == [100]
        assert [t.price for t in await adapter.fetch_tick_data("ETH", T0, FAR)] == [200]
        assert await adapter.fetch_tick_data("XRP", T0, FAR) == []

    @pytest.mark.parametrize("source", ["list", "async generator"])
    async def test_ingest_with_a_small_batch_size_stores_every_tick(
        self, adapter: DataSourceAdapter, source: str
    ) -> None:
        await self._require_ticks(adapter)
        ticks = [tick(at(seconds=i), 100 + i, 1, trade_id=f"t{i}") for i in range(25)]
        offered = ticks + ticks[:3]  # duplicates in a later batch
        result = await adapter.ingest_ticks(
            offered if source == "list" else agen(offered), batch_size=7
        )
        assert (result.received, result.inserted, result.duplicates) == (28, 25, 3)
        assert tick_view(await adapter.fetch_tick_data("BTC", T0, FAR)) == tick_view(ticks)

    async def test_ticks_keep_microseconds_and_every_decimal_digit(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_ticks(adapter)
        exact = [
            TickData(
                time=datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc),
                symbol="BTC",
                price=D("71000.12345678"),
                volume=2**53 + 1,
                bid=D("70999.99999999"),
                ask=D("71000.00000001"),
                source="upbit",
                trade_id="t-1",
            ),
            TickData(
                time=datetime(2024, 1, 2, 13, 4, 5, 1, tzinfo=KST),  # 04:04:05.000001 UTC
                symbol="BTC",
                price=D("9876543210.12345678"),
                volume=0,
                trade_id="t-2",
            ),
        ]
        await adapter.ingest_ticks(exact)
        stored = await adapter.fetch_tick_data("BTC", T0, FAR)
        assert dumps(stored) == dumps(exact)
        assert stored[0].time.microsecond == 678901
        assert str(stored[1].price.normalize()) == "9876543210.12345678"

    # -- candles ------------------------------------------------------------------------------------
    async def _require_ohlcv(self, adapter: DataSourceAdapter) -> None:
        await self.require_or_check_unsupported(
            adapter, Capability.OHLCV, "fetch_ohlcv", lambda: adapter.fetch_ohlcv("BTC", T0, FAR)
        )

    async def test_upsert_and_fetch_daily_candles(self, adapter: DataSourceAdapter) -> None:
        await self._require_ohlcv(adapter)
        candles = [candle(at(days=d), "100", "110.5", "90.25", "105", 1000 + d) for d in range(3)]
        assert await adapter.upsert_ohlcv(candles) == 3
        assert ohlcv_view(await adapter.fetch_ohlcv("BTC", T0, FAR)) == ohlcv_view(candles)
        assert ohlcv_view(await adapter.fetch_ohlcv("BTC", T0, FAR, Interval.D1)) == ohlcv_view(
            candles
        )
        assert ohlcv_view(await adapter.fetch_ohlcv("BTC", T0, FAR, "1d")) == ohlcv_view(candles)

    async def test_upsert_ohlcv_keeps_every_decimal_digit(self, adapter: DataSourceAdapter) -> None:
        await self._require_ohlcv(adapter)
        exact = candle(
            T0, "9876543210.12345678", "9876543210.12345679", "0.00000001", "1.10000001", 2**53 + 1
        )
        await adapter.upsert_ohlcv([exact], "1d")
        assert dumps(await adapter.fetch_ohlcv("BTC", T0, FAR)) == [dumps(exact)]

    async def test_upsert_ohlcv_replaces_the_same_symbol_and_time(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_ohlcv(adapter)
        await adapter.upsert_ohlcv(
            [candle(T0, "1", "2", "1", "2", 10), candle(at(days=1), "5", "5", "5", "5", 5)]
        )
        replacement = candle(T0, "3", "4", "3", "4", 20)
        assert await adapter.upsert_ohlcv([replacement]) == 1
        stored = await adapter.fetch_ohlcv("BTC", T0, FAR)
        assert ohlcv_view(stored) == ohlcv_view(
            [replacement, candle(at(days=1), "5", "5", "5", "5", 5)]
        )

    async def test_candles_of_one_interval_are_not_candles_of_another(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_ohlcv(adapter)
        hourly = candle(T0, "1", "2", "1", "2", 10)
        daily = candle(T0, "7", "8", "7", "8", 70)
        await adapter.upsert_ohlcv([hourly], Interval.H1)
        assert await adapter.fetch_ohlcv("BTC", T0, FAR, Interval.D1) == []
        await adapter.upsert_ohlcv([daily], "1d")
        assert ohlcv_view(await adapter.fetch_ohlcv("BTC", T0, FAR, "1h")) == ohlcv_view([hourly])
        assert ohlcv_view(await adapter.fetch_ohlcv("BTC", T0, FAR, "1d")) == ohlcv_view([daily])

    async def test_fetch_ohlcv_returns_buckets_starting_in_the_half_open_range(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_ohlcv(adapter)
        candles = [candle(at(days=d), "1", "1", "1", "1", d) for d in range(5)]
        await adapter.upsert_ohlcv(reversed(candles))

        async def days(start: datetime, end: datetime) -> list[int]:
            return [c.volume for c in await adapter.fetch_ohlcv("BTC", start, end)]

        assert await days(at(days=1), at(days=3)) == [1, 2]
        assert await days(at(days=1, hours=1), at(days=3, hours=1)) == [2, 3]
        assert await days(at(days=2), at(days=2)) == []
        assert await days(BEFORE, FAR) == [0, 1, 2, 3, 4]

    async def test_fetch_ohlcv_returns_only_the_symbol(self, adapter: DataSourceAdapter) -> None:
        await self._require_ohlcv(adapter)
        await adapter.upsert_ohlcv(
            [
                candle(T0, "1", "1", "1", "1", 1, symbol="BTC"),
                candle(T0, "2", "2", "2", "2", 2, symbol="ETH"),
                candle(T0, "3", "3", "3", "3", 3, symbol="BTCX"),
            ]
        )
        assert [c.volume for c in await adapter.fetch_ohlcv("BTC", T0, FAR)] == [1]
        assert [c.volume for c in await adapter.fetch_ohlcv("ETH", T0, FAR)] == [2]
        assert await adapter.fetch_ohlcv("XRP", T0, FAR) == []

    async def test_unknown_interval_is_rejected_with_contract_error(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_ohlcv(adapter)
        with pytest.raises(ContractError):
            await adapter.fetch_ohlcv("BTC", T0, FAR, "7m")
        with pytest.raises(ContractError):
            await adapter.upsert_ohlcv([candle(T0, "1", "1", "1", "1", 1)], "2d")
        assert await adapter.fetch_ohlcv("BTC", BEFORE, FAR) == []

    async def _ingest_aggregation_ticks(
        self, adapter: DataSourceAdapter, symbol: str = "BTC"
    ) -> None:
        ticks = [
            tick(T0 + offset, price, volume, symbol=symbol, trade_id=f"a{i}")
            for i, (offset, price, volume) in enumerate(AGG_TICKS)
        ]
        await adapter.ingest_ticks(list(reversed(ticks)))

    @pytest.mark.parametrize("interval", ["1m", "5m", "15m", "1h", "1d"])
    async def test_fetch_ohlcv_aggregates_ticks(
        self, adapter: DataSourceAdapter, interval: str
    ) -> None:
        await self._require_ohlcv(adapter)
        await self._require_ticks(adapter)
        await self._ingest_aggregation_ticks(adapter)
        await self._ingest_aggregation_ticks(adapter, symbol="ETH")  # must not leak into BTC
        expected = [
            candle(T0 + offset, o, h, lo, c, v) for offset, o, h, lo, c, v in AGG_EXPECTED[interval]
        ]
        got = await adapter.fetch_ohlcv("BTC", T0, T0 + timedelta(days=2), interval)
        assert ohlcv_view(got) == ohlcv_view(expected)
        got = await adapter.fetch_ohlcv("BTC", T0, T0 + timedelta(days=2), Interval(interval))
        assert ohlcv_view(got) == ohlcv_view(expected)

    async def test_aggregated_buckets_start_in_the_half_open_range(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_ohlcv(adapter)
        await self._require_ticks(adapter)
        await self._ingest_aggregation_ticks(adapter)
        got = await adapter.fetch_ohlcv("BTC", at(minutes=5), at(minutes=15), "5m")
        assert [c.time for c in got] == [at(minutes=5), at(minutes=10)]
        # The bucket holding ``start`` begins before it, so it is not returned.
        got = await adapter.fetch_ohlcv("BTC", at(minutes=2), at(minutes=11), "5m")
        assert [c.time for c in got] == [at(minutes=5), at(minutes=10)]
        assert await adapter.fetch_ohlcv("BTC", at(minutes=16), at(minutes=55), "5m") == []

    async def test_stored_candle_wins_over_tick_aggregation(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_ohlcv(adapter)
        await self._require_ticks(adapter)
        await self._ingest_aggregation_ticks(adapter)
        stored = candle(T0, "1", "2", "0.5", "1.5", 12345)
        await adapter.upsert_ohlcv([stored], "1m")
        got = await adapter.fetch_ohlcv("BTC", T0, at(minutes=2), "1m")
        assert ohlcv_view(got) == ohlcv_view(
            [stored, candle(at(minutes=1), "101", "101", "101", "101", 4)]
        )
        daily = candle(T0, "7", "8", "6", "7", 1)
        await adapter.upsert_ohlcv([daily], "1d")
        got = await adapter.fetch_ohlcv("BTC", T0, at(days=2), "1d")
        assert ohlcv_view(got) == ohlcv_view(
            [daily, candle(at(days=1), "140", "140", "140", "140", 11)]
        )

    async def test_newest_bar_is_aggregated_from_ticks(self, adapter: DataSourceAdapter) -> None:
        await self._require_ohlcv(adapter)
        await self._require_ticks(adapter)
        history = [candle(at(days=d), "10", "12", "9", "11", 100) for d in range(3)]
        await adapter.upsert_ohlcv(history, "1d")
        await adapter.ingest_ticks(
            [
                tick(at(days=3, hours=9), "11", 5, trade_id="n1"),
                tick(at(days=3, hours=10), "13.5", 6, trade_id="n2"),
                tick(at(days=3, hours=11), "10.25", 7, trade_id="n3"),
            ]
        )
        got = await adapter.fetch_ohlcv("BTC", T0, at(days=4), "1d")
        assert ohlcv_view(got) == ohlcv_view(
            [*history, candle(at(days=3), "11", "13.5", "10.25", "10.25", 18)]
        )

    # -- failed writes ----------------------------------------------------------------------------
    async def test_failed_ingest_leaves_stored_ticks_unchanged(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_ticks(adapter)
        kept = [tick(at(seconds=i), 100, 1, trade_id=f"k{i}") for i in range(3)]
        await adapter.ingest_ticks(kept)
        bad: list[Any] = [
            tick(at(seconds=10), 100, 1, trade_id="new-1"),
            {"time": at(seconds=11), "symbol": "BTC", "price": "1", "volume": 1},
            tick(at(seconds=12), 100, 1, trade_id="new-2"),
        ]
        with pytest.raises(Exception):  # noqa: B017 - the contract fixes the outcome, not the type
            await adapter.ingest_ticks(bad)
        assert tick_view(await adapter.fetch_tick_data("BTC", BEFORE, FAR)) == tick_view(kept)

    async def test_failed_upsert_leaves_stored_candles_unchanged(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_ohlcv(adapter)
        kept = candle(T0, "1", "1", "1", "1", 1)
        await adapter.upsert_ohlcv([kept])
        bad: list[Any] = [
            candle(T0, "2", "2", "2", "2", 2),
            "not a candle",
            candle(at(days=1), "3", "3", "3", "3", 3),
        ]
        with pytest.raises(Exception):  # noqa: B017 - the contract fixes the outcome, not the type
            await adapter.upsert_ohlcv(bad)
        assert ohlcv_view(await adapter.fetch_ohlcv("BTC", BEFORE, FAR)) == ohlcv_view([kept])

    # -- execution logs ---------------------------------------------------------------------------
    async def _require_logs(self, adapter: DataSourceAdapter) -> None:
        await self.require_or_check_unsupported(
            adapter,
            Capability.EXECUTION_LOGS,
            "store_execution_result",
            lambda: adapter.store_execution_result(log(T0, "o", "s")),
        )

    async def test_store_and_fetch_execution_logs(self, adapter: DataSourceAdapter) -> None:
        await self._require_logs(adapter)
        logs = [
            log(at(us=1), "o-1", "submit", latency_ms=D("12.345")),
            ExecutionLog(
                time=at(us=2),
                order_id="o-1",
                symbol="AAPL",
                stage="ack",
                success=False,
                error_code="E42",
            ),
        ]
        for item in logs:
            assert isinstance(await adapter.store_execution_result(item), bool)
        assert dumps(await adapter.fetch_execution_logs()) == dumps(logs)

    async def test_fetch_execution_logs_filters_by_order_id(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_logs(adapter)
        for i, order in enumerate(["o-1", "o-2", "o-1", "o-3"]):
            await adapter.store_execution_result(log(at(seconds=i), order, f"stage{i}"))
        assert [x.stage for x in await adapter.fetch_execution_logs(order_id="o-1")] == [
            "stage0",
            "stage2",
        ]
        assert [x.stage for x in await adapter.fetch_execution_logs(order_id="o-3")] == ["stage3"]
        assert await adapter.fetch_execution_logs(order_id="o-9") == []

    async def test_fetch_execution_logs_range_is_half_open_and_ordered(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_logs(adapter)
        for second in (3, 0, 4, 1, 2):
            await adapter.store_execution_result(
                log(at(seconds=second), f"o-{second % 2}", f"s{second}")
            )

        async def stages(**query: Any) -> list[str]:
            return [x.stage for x in await adapter.fetch_execution_logs(**query)]

        assert await stages() == ["s0", "s1", "s2", "s3", "s4"]
        assert await stages(start=at(seconds=1), end=at(seconds=3)) == ["s1", "s2"]
        assert await stages(start=at(seconds=3)) == ["s3", "s4"]
        assert await stages(end=at(seconds=1)) == ["s0"]
        assert await stages(order_id="o-0", start=at(seconds=1), end=FAR) == ["s2", "s4"]

    # -- strategy parameters --------------------------------------------------------------------
    async def _require_strategies(self, adapter: DataSourceAdapter) -> None:
        await self.require_or_check_unsupported(
            adapter,
            Capability.STRATEGIES,
            "fetch_strategy_params",
            lambda: adapter.fetch_strategy_params(),
        )

    async def test_save_and_fetch_strategy_params(self, adapter: DataSourceAdapter) -> None:
        await self._require_strategies(adapter)
        param = StrategyParam(
            strategy_id="momentum",
            param_name="window",
            value="20",
            value_type="int",
            description="lookback in bars",
            updated_at=at(us=123456),
        )
        await adapter.save_strategy_param(param)
        assert dumps(await adapter.fetch_strategy_params()) == [dumps(param)]

    async def test_save_strategy_param_replaces_the_same_key(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_strategies(adapter)
        await adapter.save_strategy_param(
            StrategyParam(strategy_id="s1", param_name="p", value="1", value_type="int")
        )
        await adapter.save_strategy_param(
            StrategyParam(strategy_id="s1", param_name="q", value="x")
        )
        newer = StrategyParam(strategy_id="s1", param_name="p", value="0.5", value_type="decimal")
        await adapter.save_strategy_param(newer)
        stored = await adapter.fetch_strategy_params()
        assert [(p.strategy_id, p.param_name, p.value) for p in stored] == [
            ("s1", "p", "0.5"),
            ("s1", "q", "x"),
        ]
        assert dumps(stored[0]) == dumps(newer)

    async def test_strategy_params_are_ordered_and_filtered_by_strategy(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_strategies(adapter)
        keys = [("beta", "z"), ("alpha", "m"), ("beta", "a"), ("alpha", "b"), ("gamma", "k")]
        for strategy, name in keys:
            await adapter.save_strategy_param(
                StrategyParam(strategy_id=strategy, param_name=name, value="v")
            )
        stored = await adapter.fetch_strategy_params()
        assert [(p.strategy_id, p.param_name) for p in stored] == sorted(keys)
        beta = await adapter.fetch_strategy_params("beta")
        assert [(p.strategy_id, p.param_name) for p in beta] == [("beta", "a"), ("beta", "z")]
        assert await adapter.fetch_strategy_params(strategy_id="delta") == []

    # -- risk configuration ------------------------------------------------------------------------
    async def _require_risk(self, adapter: DataSourceAdapter) -> None:
        await self.require_or_check_unsupported(
            adapter, Capability.RISK, "fetch_risk_configs", lambda: adapter.fetch_risk_configs()
        )

    async def test_save_and_fetch_risk_configs(self, adapter: DataSourceAdapter) -> None:
        await self._require_risk(adapter)
        config = RiskConfig(
            config_key="max_exposure",
            value=D("1234567890.12345678"),
            description="per symbol",
            updated_at=at(us=42),
        )
        await adapter.save_risk_config(config)
        assert dumps(await adapter.fetch_risk_configs()) == [dumps(config)]

    async def test_save_risk_config_replaces_the_same_key(self, adapter: DataSourceAdapter) -> None:
        await self._require_risk(adapter)
        await adapter.save_risk_config(RiskConfig(config_key="max_loss", value=D("100")))
        newer = RiskConfig(config_key="max_loss", value=D("-0.5"), description="changed")
        await adapter.save_risk_config(newer)
        assert dumps(await adapter.fetch_risk_configs()) == [dumps(newer)]

    async def test_risk_configs_are_ordered_by_key(self, adapter: DataSourceAdapter) -> None:
        await self._require_risk(adapter)
        for key in ("max_loss", "daily_limit", "max_exposure", "cooldown"):
            await adapter.save_risk_config(RiskConfig(config_key=key, value=1))
        stored = await adapter.fetch_risk_configs()
        assert [c.config_key for c in stored] == [
            "cooldown",
            "daily_limit",
            "max_exposure",
            "max_loss",
        ]

    # -- raw rows --------------------------------------------------------------------------------------
    async def _require_raw(self, adapter: DataSourceAdapter) -> None:
        name = next(iter(self.raw_sheet_names), "positions")
        await self.require_or_check_unsupported(
            adapter, Capability.RAW, "fetch_raw_data", lambda: adapter.fetch_raw_data(name)
        )

    async def _seed_for_raw(self, adapter: DataSourceAdapter) -> None:
        capabilities = adapter.capabilities
        if Capability.POSITIONS in capabilities:
            await adapter.update_position("RAWTEST", "1.5", "100.25")
        if Capability.LEDGER in capabilities:
            await adapter.append_ledger(entry(T0, symbol="RAWTEST", order_id="raw-1"))
        if Capability.STRATEGIES in capabilities:
            await adapter.save_strategy_param(
                StrategyParam(strategy_id="raw", param_name="p", value="v")
            )
        if Capability.RISK in capabilities:
            await adapter.save_risk_config(RiskConfig(config_key="raw", value=1))
        if Capability.EXECUTION_LOGS in capabilities:
            await adapter.store_execution_result(log(T0, "raw-1", "submit", symbol="RAWTEST"))

    async def test_fetch_raw_data_returns_rows_of_text(self, adapter: DataSourceAdapter) -> None:
        await self._require_raw(adapter)
        assert self.raw_sheet_names, "raw_sheet_names must list at least one name"
        await self._seed_for_raw(adapter)
        for name in self.raw_sheet_names:
            rows = await adapter.fetch_raw_data(name)
            assert isinstance(rows, list), f"fetch_raw_data({name!r}) must return a list"
            for row in rows:
                assert isinstance(row, dict), f"fetch_raw_data({name!r}) rows must be dicts"
                bad = {
                    k: v for k, v in row.items() if not isinstance(k, str) or not isinstance(v, str)
                }
                assert not bad, f"fetch_raw_data({name!r}) rows must map str to str: {bad!r}"

    async def test_fetch_raw_data_holds_saved_positions(self, adapter: DataSourceAdapter) -> None:
        await self._require_raw(adapter)
        if self.raw_positions_sheet is None:
            pytest.skip("raw_positions_sheet is None")
        await self._require_positions(adapter)
        await adapter.update_position("RAWTEST", "1.5", "100.25")
        rows = await adapter.fetch_raw_data(self.raw_positions_sheet)
        assert any("RAWTEST" in row.values() for row in rows), (
            f"no row of fetch_raw_data({self.raw_positions_sheet!r}) has a cell 'RAWTEST': {rows!r}"
        )

    async def test_fetch_raw_data_of_an_unknown_name_lists_the_known_ones(
        self, adapter: DataSourceAdapter
    ) -> None:
        await self._require_raw(adapter)
        with pytest.raises(QtsDataError) as info:
            await adapter.fetch_raw_data("no_such_sheet_xyz")
        message = str(info.value)
        assert "no_such_sheet_xyz" in message, (
            f"the error should name the unknown sheet: {message!r}"
        )
        missing = [name for name in self.raw_sheet_names if name not in message]
        assert not missing, f"the error should list the known names {missing}: {message!r}"

    # -- lifecycle and health ------------------------------------------------------------------------
    async def test_health_check_returns_a_health_status(self, adapter: DataSourceAdapter) -> None:
        await check_health(adapter)

    async def test_close_of_an_unopened_adapter_does_not_raise(
        self, make_adapter: Callable[[], Any]
    ) -> None:
        await check_close_unopened(await build(make_adapter, DataSourceAdapter, "make_adapter"))

    async def test_close_twice_does_not_raise(self, make_adapter: Callable[[], Any]) -> None:
        await check_close_twice(await build(make_adapter, DataSourceAdapter, "make_adapter"))
