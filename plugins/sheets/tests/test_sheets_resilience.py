"""Quota, backoff and idempotent writes, against faults injected by the stand-in."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone

import pytest

from qts_data.contracts import LedgerEntry
from qts_data.errors import BackendError
from qts_data_sheets.adapter import SheetsAdapter
from qts_data_sheets.ratelimit import SlidingWindowLimiter
from qts_data_sheets.retry import RetryPolicy
from qts_data_sheets.testing import SheetsStandIn

MakeAdapter = Callable[..., Awaitable[SheetsAdapter]]
T0 = datetime(2024, 1, 2, tzinfo=timezone.utc)


def entry(seconds: int = 0, **fields: object) -> LedgerEntry:
    values: dict[str, object] = {"symbol": "AAPL", "side": "BUY", "qty": 1, "price": 100}
    values.update(fields)
    return LedgerEntry(timestamp=T0 + timedelta(seconds=seconds), **values)


def most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max(
        (sum(1 for t in times[i:] if t < start + window) for i, start in enumerate(times)),
        default=0,
    )


# -- quota -----------------------------------------------------------------------------------------
def test_the_limiter_allows_n_starts_per_window() -> None:
    now = [0.0]
    limiter = SlidingWindowLimiter(3, 1.0, clock=lambda: now[0])
    assert [limiter.reserve() for _ in range(7)] == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0]
    now[0] = 5.0
    assert limiter.reserve() == 5.0
    now[0] = 5.5
    assert [limiter.reserve() for _ in range(3)] == [5.5, 5.5, 6.0]


async def test_the_rate_limiter_holds_n_requests_per_window(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter
) -> None:
    adapter = await make_sheets_adapter(requests_per_minute=10, quota_window_s=1.0)
    sheets_standin.clear_log()
    started = time.monotonic()
    await asyncio.gather(*(adapter.fetch_raw_data("positions") for _ in range(25)))
    elapsed = time.monotonic() - started
    arrivals = [r.received for r in sheets_standin.requests_for()]
    assert len(arrivals) == 25
    # Without the limiter all 25 arrive within a few ms. The slack covers requests
    # waiting for a worker thread after their slot was granted.
    assert most_in_any_window(arrivals, 1.0 - 0.15) <= 10
    assert 1.9 <= elapsed < 4.0, elapsed  # 25 (+1 for open) at 10 per second
    assert adapter.stats.quota_wait_s > 0


async def test_adapters_with_the_same_credentials_share_the_quota(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter
) -> None:
    first = await make_sheets_adapter(requests_per_minute=5, quota_window_s=0.5)
    second = await make_sheets_adapter(requests_per_minute=5, quota_window_s=0.5)
    assert first._limiter is second._limiter
    sheets_standin.clear_log()
    await asyncio.gather(*(a.fetch_raw_data("ledger") for a in (first, second) for _ in range(8)))
    arrivals = [r.received for r in sheets_standin.requests_for()]
    assert len(arrivals) == 16
    assert most_in_any_window(arrivals, 0.5 - 0.1) <= 5


# -- backoff ---------------------------------------------------------------------------------------
def test_backoff_jitter_stays_within_half_the_cap_and_the_cap() -> None:
    policy = RetryPolicy(max_retries=8, base_s=0.5, max_s=4.0)
    assert [policy.cap(n) for n in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert policy.delay(2, rng=lambda: 0.0) == 1.0
    assert policy.delay(2, rng=lambda: 1.0) == 2.0
    samples = [policy.delay(1) for _ in range(2000)]
    assert all(0.5 <= s <= 1.0 for s in samples)
    assert min(samples) < 0.55 and max(samples) > 0.95  # spread over the whole range
    assert len(set(samples)) > 1900


async def test_a_burst_of_429_is_retried_with_exponential_backoff(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter
) -> None:
    adapter = await make_sheets_adapter(backoff_base_s=0.05, backoff_max_s=1.0, max_retries=5)
    await adapter.update_position("AAPL", 1, 1)
    sheets_standin.clear_log()
    sheets_standin.fail_next(3, 429, match="values.get")
    retries_before = adapter.stats.retries
    started = time.monotonic()
    positions = await adapter.fetch_positions()
    elapsed = time.monotonic() - started
    assert [p.symbol for p in positions] == ["AAPL"]
    gets = sheets_standin.requests_for("values.get")
    assert [r.status for r in gets] == [429, 429, 429, 200]
    assert adapter.stats.retries - retries_before == 3
    assert adapter.stats.throttled == 3
    caps = [0.05, 0.1, 0.2]
    waits = list(adapter.stats.backoffs)[-3:]
    for cap, wait, (a, b) in zip(caps, waits, itertools.pairwise(gets), strict=True):
        assert cap / 2 <= wait <= cap, (cap, wait)
        assert b.received - a.received >= cap / 2 - 0.005  # seen by the server too
    assert elapsed >= sum(caps) / 2


async def test_retry_after_is_a_floor_for_the_backoff(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter
) -> None:
    adapter = await make_sheets_adapter(backoff_base_s=0.01, backoff_max_s=1.0)
    sheets_standin.clear_log()
    sheets_standin.fail_next(1, 429, match="values.get", retry_after=0.3)
    await adapter.fetch_positions()
    first, second = sheets_standin.requests_for("values.get")
    assert second.received - first.received >= 0.3


async def test_server_errors_on_reads_are_retried(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter
) -> None:
    adapter = await make_sheets_adapter()
    sheets_standin.clear_log()
    sheets_standin.fail_next(2, 500, match="values.get")
    sheets_standin.fail_next(1, 503, match="values.get")
    assert await adapter.fetch_ledger() == []
    assert [r.status for r in sheets_standin.requests_for("values.get")] == [500, 500, 503, 200]
    assert adapter.stats.server_errors == 3


async def test_retries_are_bounded_and_the_error_says_what_failed(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter
) -> None:
    adapter = await make_sheets_adapter(max_retries=2)
    sheets_standin.clear_log()
    sheets_standin.fail_next(10, 503, match="values.get")
    with pytest.raises(BackendError) as info:
        await adapter.fetch_positions()
    message = str(info.value)
    assert "read sheet 'Position'" in message
    assert "gave up after 3 attempt(s)" in message
    assert "HTTP 503" in message
    assert len(sheets_standin.requests_for("values.get")) == 3


async def test_a_refused_request_is_not_retried(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter
) -> None:
    adapter = await make_sheets_adapter()
    sheets_standin.clear_log()
    sheets_standin.fail_next(
        1, 403, match="values.get", message="The caller does not have permission"
    )
    with pytest.raises(
        BackendError, match=r"HTTP 403: The caller does not have permission \(share"
    ):
        await adapter.fetch_positions()
    assert len(sheets_standin.requests_for("values.get")) == 1


async def test_a_slow_answer_past_the_timeout_is_retried(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter
) -> None:
    adapter = await make_sheets_adapter(timeout_s=0.3)
    sheets_standin.clear_log()
    sheets_standin.slow(0.8, n=1, match="values.get")
    started = time.monotonic()
    assert await adapter.fetch_positions() == []
    assert 0.3 <= time.monotonic() - started < 0.8
    assert len(sheets_standin.requests_for("values.get")) == 2
    assert adapter.stats.timeouts == 1


async def test_the_stand_in_going_away_is_an_error_not_a_hang(
    make_sheets_adapter: MakeAdapter,
) -> None:
    with SheetsStandIn() as private:
        sid = private.create_spreadsheet({"Position": [["symbol", "qty", "avg_price"]]})
        adapter = await make_sheets_adapter(sid, api_base_url=private.base_url, max_retries=1)
    with pytest.raises(BackendError, match="gave up after 2 attempt"):
        await adapter.fetch_positions()


# -- idempotent writes -----------------------------------------------------------------------------
async def test_an_append_that_landed_but_timed_out_is_not_duplicated(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter, spreadsheet: str
) -> None:
    adapter = await make_sheets_adapter(timeout_s=0.3)
    sheets_standin.succeed_then_timeout(1, match="values.append", hold_s=1.0)
    assert await adapter.append_ledger(entry(order_id="o-1")) is True
    appends = sheets_standin.requests_for("values.append")
    assert len(appends) == 1 and appends[0].applied and appends[0].status == 0
    assert sheets_standin.data_rows(spreadsheet, "T_Ledger") == 1
    assert adapter.stats.uncertain_writes == 1
    assert adapter.stats.reconciled_landed == 1
    # The hybrid relay delivers it again: still one row.
    assert await adapter.append_ledger(entry(order_id="o-1")) is False
    assert sheets_standin.data_rows(spreadsheet, "T_Ledger") == 1


async def test_a_batch_that_landed_but_timed_out_is_not_duplicated(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter, spreadsheet: str
) -> None:
    adapter = await make_sheets_adapter(timeout_s=0.3)
    batch = [entry(i, order_id=f"o-{i}") for i in range(3)] + [entry(9)]
    sheets_standin.succeed_then_timeout(1, match="values.append", hold_s=1.0)
    assert await adapter.append_ledger_batch(batch) == 4
    assert sheets_standin.data_rows(spreadsheet, "T_Ledger") == 4
    assert await adapter.append_ledger_batch(batch[:3]) == 0
    assert len(sheets_standin.requests_for("values.append")) == 1


async def test_keyless_entries_that_landed_but_timed_out_are_not_duplicated(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter, spreadsheet: str
) -> None:
    adapter = await make_sheets_adapter(timeout_s=0.3)
    assert await adapter.append_ledger(entry(1))  # an identical row before: must not fool it
    sheets_standin.succeed_then_timeout(1, match="values.append", hold_s=1.0)
    assert await adapter.append_ledger(entry(1)) is True
    assert sheets_standin.data_rows(spreadsheet, "T_Ledger") == 2
    assert len(sheets_standin.requests_for("values.append")) == 2


async def test_an_append_lost_before_the_server_is_sent_again(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter, spreadsheet: str
) -> None:
    adapter = await make_sheets_adapter()
    sheets_standin.drop_next(1, match="values.append")
    assert await adapter.append_ledger(entry(order_id="o-1")) is True
    appends = sheets_standin.requests_for("values.append")
    assert [a.applied for a in appends] == [False, True]
    assert sheets_standin.data_rows(spreadsheet, "T_Ledger") == 1
    assert adapter.stats.reconciled_landed == 0


async def test_server_errors_on_an_append_are_checked_then_sent_again(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter, spreadsheet: str
) -> None:
    adapter = await make_sheets_adapter()
    sheets_standin.clear_log()
    sheets_standin.fail_next(2, 500, match="values.append")
    assert await adapter.append_ledger(entry(order_id="o-1")) is True
    assert [r.status for r in sheets_standin.requests_for("values.append")] == [500, 500, 200]
    assert sheets_standin.data_rows(spreadsheet, "T_Ledger") == 1
    assert adapter.stats.uncertain_writes == 2


async def test_429_on_an_append_is_simply_retried(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter, spreadsheet: str
) -> None:
    adapter = await make_sheets_adapter()
    await adapter.append_ledger(entry(0, order_id="warm"))  # keys loaded
    sheets_standin.clear_log()
    sheets_standin.fail_next(2, 429, match="values.append")
    assert await adapter.append_ledger(entry(order_id="o-1")) is True
    assert [r.operation for r in sheets_standin.requests_for()] == ["values.append"] * 3
    assert adapter.stats.uncertain_writes == 0


async def test_a_new_position_that_landed_but_timed_out_is_not_duplicated(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter, spreadsheet: str
) -> None:
    adapter = await make_sheets_adapter(timeout_s=0.3)
    sheets_standin.succeed_then_timeout(1, match="values.append", hold_s=1.0)
    await adapter.update_position("AAPL", 1, 100)
    assert sheets_standin.data_rows(spreadsheet, "Position") == 1
    await adapter.update_position("AAPL", 2, 100)
    assert sheets_standin.data_rows(spreadsheet, "Position") == 1
    [held] = await adapter.fetch_positions()
    assert held.qty == 2


async def test_an_uncertain_append_gives_up_after_max_retries(
    sheets_standin: SheetsStandIn, make_sheets_adapter: MakeAdapter, spreadsheet: str
) -> None:
    adapter = await make_sheets_adapter(max_retries=2)
    sheets_standin.fail_next(10, 502, match="values.append")
    with pytest.raises(BackendError, match=r"outcome unknown.*still not in the sheet after 3"):
        await adapter.append_ledger(entry(order_id="o-1"))
    assert sheets_standin.data_rows(spreadsheet, "T_Ledger") == 0
