"""Bad input: hostile symbols, SQL in values, bad batch elements, unusable files. Nothing is lost."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from qts_data.contracts import Position, StrategyParam, TickData
from qts_data.errors import BackendError, ContractError, QtsDataError
from qts_data_sqlite.adapter import ElementTypeError, SqliteAdapter

T0 = datetime(2024, 1, 2, tzinfo=timezone.utc)
FAR = datetime(2100, 1, 1, tzinfo=timezone.utc)

HOSTILE = [
    "BTC'; DROP TABLE positions; --",
    'BTC" OR 1=1 --',
    "x' UNION SELECT * FROM ledger --",
    "BTC%",
    "*",
]
#: Texts to look up: the hostile ones and a valid symbol that is a LIKE pattern.
QUERIES = [*HOSTILE, "BTC_"]


@pytest.fixture
async def adapter(db_path: Path) -> AsyncIterator[SqliteAdapter]:
    made = SqliteAdapter(db_path)
    await made.open()
    try:
        yield made
    finally:
        await made.close()


def tick(i: int, symbol: str = "BTC") -> TickData:
    return TickData(
        time=T0 + timedelta(seconds=i),
        symbol=symbol,
        price=Decimal(100 + i),
        volume=1,
        trade_id=f"t{i}",
    )


def count(db_path: Path, table: str) -> int:
    conn = sqlite3.connect(db_path)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize("symbol", HOSTILE)
def test_contracts_reject_hostile_symbols(symbol: str) -> None:
    with pytest.raises(ContractError, match="symbol"):
        Position(symbol=symbol, qty=1, avg_price=1)
    with pytest.raises(ContractError, match="symbol"):
        TickData(time=T0, symbol=symbol, price=1, volume=1)


async def test_hostile_text_in_queries_is_only_ever_a_value(
    adapter: SqliteAdapter, db_path: Path
) -> None:
    await adapter.update_position("BTC", 1, 1)
    await adapter.ingest_ticks([tick(0), tick(1, "BTCX")])
    for symbol in QUERIES:
        assert await adapter.fetch_position(symbol) is None
        assert await adapter.fetch_tick_data(symbol, T0, FAR) == []
        assert await adapter.fetch_ohlcv(symbol, T0, FAR, "1m") == []
        assert await adapter.fetch_ledger(symbol=symbol) == []
        assert await adapter.fetch_execution_logs(order_id=symbol) == []
        assert await adapter.fetch_strategy_params(symbol) == []
        assert len(await adapter.find_gaps(symbol, "1h", T0, T0 + timedelta(hours=3))) == 3
    # LIKE wildcards mean nothing: "BTC_" and "BTC%" did not match "BTCX".
    assert [p.symbol for p in await adapter.fetch_positions()] == ["BTC"]
    assert count(db_path, "positions") == 1
    assert count(db_path, "ticks") == 2


async def test_text_fields_holding_sql_are_stored_verbatim(adapter: SqliteAdapter) -> None:
    sql = "'); DROP TABLE strategies; --"
    param = StrategyParam(strategy_id=sql, param_name="x' OR '1'='1", value=sql, description=sql)
    await adapter.save_strategy_param(param)
    assert await adapter.fetch_strategy_params(sql) == [param]
    assert await adapter.fetch_strategy_params("x") == []


async def test_a_bad_element_leaves_its_batch_unstored_and_earlier_batches_stored(
    adapter: SqliteAdapter, db_path: Path
) -> None:
    source: list[Any] = [tick(i) for i in range(7)]
    source[7:7] = [{"symbol": "BTC"}]  # element 7: the second element of batch 2
    source += [tick(i) for i in range(7, 12)]
    with pytest.raises(ElementTypeError) as info:
        await adapter.ingest_ticks(source, batch_size=3)
    message = str(info.value)
    assert "element 7 is dict, not TickData" in message
    assert "its batch of 3 (elements 6-8) was not stored" in message
    assert isinstance(info.value, ContractError)
    stored = await adapter.fetch_tick_data("BTC", T0, FAR)
    assert [t.trade_id for t in stored] == [f"t{i}" for i in range(6)]
    assert count(db_path, "ticks") == 6
    # Ingest is idempotent: the corrected source can simply be ingested again.
    fixed = [tick(i) for i in range(12)]
    result = await adapter.ingest_ticks(fixed, batch_size=3)
    assert (result.received, result.inserted, result.duplicates) == (12, 6, 6)


async def test_writes_of_the_wrong_type_are_refused_and_change_nothing(
    adapter: SqliteAdapter, db_path: Path
) -> None:
    with pytest.raises(ElementTypeError, match="save_position: expected Position, got dict"):
        await adapter.save_position({"symbol": "BTC"})  # type: ignore[arg-type]
    with pytest.raises(ElementTypeError, match="append_ledger: expected LedgerEntry"):
        await adapter.append_ledger("entry")  # type: ignore[arg-type]
    assert count(db_path, "positions") == count(db_path, "ledger") == 0


async def test_naive_times_are_rejected_with_the_operation_named(adapter: SqliteAdapter) -> None:
    naive = datetime(2024, 1, 2)
    with pytest.raises(ContractError, match=r"fetch_tick_data: start .* is naive"):
        await adapter.fetch_tick_data("BTC", naive, FAR)
    with pytest.raises(ContractError, match=r"fetch_ledger: end .* is naive"):
        await adapter.fetch_ledger(end=naive)
    with pytest.raises(ContractError, match="fetch_execution_logs: start must be a datetime"):
        await adapter.fetch_execution_logs(start="2024-01-02")  # type: ignore[arg-type]


async def test_a_file_that_is_not_a_database_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database, but long enough to have a header " * 20)
    adapter = SqliteAdapter(path)
    with pytest.raises(
        BackendError,
        match=r"sqlite adapter \(.*notes.txt\): cannot open the database: file is not a database",
    ):
        await adapter.open()
    await adapter.close()
    assert path.read_text().startswith("not a database")


async def test_a_missing_folder_is_refused_by_name(tmp_path: Path) -> None:
    adapter = SqliteAdapter(tmp_path / "missing" / "qts.sqlite3")
    with pytest.raises(BackendError, match=r"its folder .*missing does not exist"):
        await adapter.open()
    assert not (tmp_path / "missing").exists()


async def test_unknown_raw_sheet_lists_the_known_ones(adapter: SqliteAdapter) -> None:
    with pytest.raises(
        QtsDataError,
        match="unknown sheet 'x; DROP TABLE ledger': the sqlite adapter has execution_logs, ledger",
    ):
        await adapter.fetch_raw_data("x; DROP TABLE ledger")
    assert await adapter.fetch_raw_data("T_Ledger") == []
