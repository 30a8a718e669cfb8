"""The tiered composition: reads down memory -> disk -> store -> upstream, refills, metadata, real-time ticks."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tier_helpers import NOW, TODAY, Clock, GapStore, RecordingSource, candle, hours, times

from qts_data.compositions.tiered import TieredAdapter
from qts_data.contracts import Interval, TickData
from qts_data.errors import BackendError, ContractError
from qts_data.interfaces import Capability
from qts_data.tiers import StorageResponse
from qts_data_memory.adapter import MemoryAdapter

H1, D1, M1 = Interval.H1, Interval.D1, Interval.M1
WEEK = (TODAY - timedelta(days=7), TODAY)  # 168 complete hourly buckets


@dataclass
class Rig:
    tiered: TieredAdapter
    store: MemoryAdapter
    source: RecordingSource
    clock: Clock
    disk_path: Path


def rig(tmp_path: Path, *, store: MemoryAdapter | None = None, disk: bool = True, **kw: Any) -> Rig:
    clock = Clock()
    source_settings = kw.pop("source_settings", {})
    src = RecordingSource(clock, **source_settings)
    store = store if store is not None else MemoryAdapter()
    tiered = TieredAdapter(
        store,
        src,
        disk_path=str(tmp_path / "cache") if disk else None,
        clock=clock,
        wall_clock=clock,
        **kw,
    )
    return Rig(tiered, store, src, clock, tmp_path / "cache")


def summary(response: StorageResponse) -> tuple[str, bool, int]:
    meta = response.metadata
    return meta.source, meta.cache_hit, meta.data_count


async def test_a_read_goes_down_the_tiers_and_refills_them(tmp_path: Path) -> None:
    r = rig(tmp_path)
    first = await r.tiered.fetch_candles("BTC", *WEEK, H1)
    assert summary(first) == ("upstream", False, 168)
    assert first.metadata.tiers == ("memory", "disk", "store", "upstream")
    assert first.metadata.upstream_calls == 1 and len(r.source.log) == 1
    # upstream -> store
    assert times(await r.store.fetch_ohlcv("BTC", *WEEK, H1)) == times(first.data)

    second = await r.tiered.fetch_candles("BTC", *WEEK, H1)
    assert summary(second) == ("memory", True, 168)
    assert second.metadata.tiers == ("memory",)
    assert second.data == first.data

    r.tiered.memory.clear()
    third = await r.tiered.fetch_candles("BTC", *WEEK, H1)
    assert summary(third) == ("disk", True, 168)
    assert [c.to_json() for c in third.data] == [c.to_json() for c in first.data]
    assert (
        summary(await r.tiered.fetch_candles("BTC", *WEEK, H1))[0] == "memory"
    )  # disk refilled memory

    r.tiered.memory.clear()
    assert r.tiered.disk is not None
    r.tiered.disk.clear()
    fourth = await r.tiered.fetch_candles("BTC", *WEEK, H1)
    assert summary(fourth) == ("store", False, 168)
    assert fourth.metadata.tiers == ("memory", "disk", "store")
    assert len(r.source.log) == 1  # the store had it all
    assert list(r.disk_path.rglob("*.json.gz"))  # the store refilled the disk...
    assert summary(await r.tiered.fetch_candles("BTC", *WEEK, H1))[0] == "memory"  # ...and memory

    stats = r.tiered.stats()
    assert stats["requests"] == 6
    assert stats["cache_hits"] == 4  # memory 3, disk 1
    assert stats["hit_rate"] == pytest.approx(4 / 6)
    assert stats["tiers"]["memory"]["hits"] == 3 and stats["tiers"]["disk"]["hits"] == 1
    assert stats["tiers"]["upstream"]["consulted"] == 1
    assert stats["tiers"]["store"] == {
        "consulted": 2,
        "hits": 1,
        "misses": 1,
        "hit_rate": 0.5,
        "rows": 168,
    }
    assert stats["upstream_calls"] == 1 and stats["upstream_candles"] == 168


async def test_fetch_ohlcv_returns_the_candles_of_fetch_candles(tmp_path: Path) -> None:
    r = rig(tmp_path)
    response = await r.tiered.fetch_candles("BTC", *WEEK, H1)
    assert await r.tiered.fetch_ohlcv("BTC", *WEEK, H1) == response.data
    assert await r.tiered.fetch_ohlcv("BTC", *WEEK, "1h") == response.data


async def test_a_store_holding_part_of_the_range_gets_only_the_missing_part(tmp_path: Path) -> None:
    r = rig(tmp_path)
    held = hours(WEEK[0], 100, price="7")  # values the source would never give
    await r.store.upsert_ohlcv(held, H1)
    response = await r.tiered.fetch_candles("BTC", *WEEK, H1)
    assert summary(response) == ("upstream", False, 168)
    assert dict(response.metadata.rows_by_tier) == {"store": 100, "upstream": 68}
    (call,) = r.source.log
    assert (call.start, call.end) == (WEEK[0] + timedelta(hours=100), WEEK[1])
    assert response.data[:100] == held  # the store's candles are kept, not replaced
    assert len(await r.store.fetch_ohlcv("BTC", *WEEK, H1)) == 168


async def test_the_store_gaps_come_from_find_gaps_when_it_has_it(tmp_path: Path) -> None:
    store = GapStore()
    r = rig(tmp_path, store=store)
    await store.upsert_ohlcv([c for c in hours(WEEK[0], 168) if c.time.hour != 5], H1)
    response = await r.tiered.fetch_candles("BTC", *WEEK, H1)
    assert store.gap_calls  # asked the store which buckets it lacks
    assert dict(response.metadata.rows_by_tier) == {"store": 161, "upstream": 7}
    assert len(r.source.log) == 1  # one call for the hull of the gaps
    assert [c.time.hour for c in response.data if c.volume > 1000] == [5] * 7


async def test_a_wider_read_asks_lower_tiers_only_for_the_extension(tmp_path: Path) -> None:
    r = rig(tmp_path)
    await r.tiered.fetch_candles("BTC", *WEEK, H1)
    wider = (WEEK[0] - timedelta(days=1), WEEK[1])
    response = await r.tiered.fetch_candles("BTC", *wider, H1)
    assert summary(response) == ("upstream", False, 192)
    assert dict(response.metadata.rows_by_tier) == {"memory": 168, "upstream": 24}
    assert (r.source.log[-1].start, r.source.log[-1].end) == (wider[0], WEEK[0])
    assert times(response.data) == sorted(times(response.data))
    inner = await r.tiered.fetch_candles(
        "BTC", WEEK[0] - timedelta(hours=3), WEEK[0] + timedelta(hours=3), H1
    )
    assert summary(inner) == ("memory", True, 6)


async def test_the_current_bucket_is_never_asked_upstream(tmp_path: Path) -> None:
    r = rig(tmp_path)
    end = NOW + timedelta(hours=5)  # into the future
    response = await r.tiered.fetch_candles("BTC", TODAY, end, H1)
    assert response.metadata.data_count == 12  # 00:00 .. 11:00; 12:00 is still open
    assert r.source.log[-1].end == TODAY + timedelta(hours=12)
    again = await r.tiered.fetch_candles("BTC", TODAY, end, H1)
    assert summary(again) == ("memory", True, 12)
    r.clock.advance(1805)  # 13:00:05: closed, but the exchange may not have it yet (settle_s 10)
    assert (await r.tiered.fetch_candles("BTC", TODAY, end, H1)).metadata.data_count == 12
    assert len(r.source.log) == 1
    r.clock.advance(5)  # 13:00:10: settled
    later = await r.tiered.fetch_candles("BTC", TODAY, end, H1)
    assert later.metadata.data_count == 13
    assert dict(later.metadata.rows_by_tier) == {"memory": 12, "upstream": 1}
    call = r.source.log[-1]
    assert (call.start, call.end) == (TODAY + timedelta(hours=12), TODAY + timedelta(hours=13))


async def test_an_empty_result_has_metadata_and_is_cached_as_covered(tmp_path: Path) -> None:
    r = rig(tmp_path, source_settings={"symbols": ["BTC"]})
    first = await r.tiered.fetch_candles("NOPE", *WEEK, H1)
    assert first.success and first.data == []
    assert summary(first) == ("upstream", False, 0)
    assert first.metadata.processing_time_ms >= 0
    again = await r.tiered.fetch_candles("NOPE", *WEEK, H1)
    assert summary(again) == ("memory", True, 0)  # the source said there is nothing: a genuine gap
    assert len(r.source.log) == 1
    empty_range = await r.tiered.fetch_candles("BTC", WEEK[0], WEEK[0], H1)
    assert empty_range.data == [] and empty_range.metadata.data_count == 0
    assert empty_range.to_dict()["metadata"]["data_count"] == 0


async def test_metadata_times_the_read(tmp_path: Path) -> None:
    r = rig(tmp_path, source_settings={"latency_ms": 40})
    started = time.perf_counter()
    slow = await r.tiered.fetch_candles("BTC", *WEEK, H1)
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert 40 <= slow.metadata.processing_time_ms <= elapsed_ms
    fast = await r.tiered.fetch_candles("BTC", *WEEK, H1)
    assert fast.metadata.processing_time_ms < 5
    assert fast.metadata.data_count == len(fast.data) == 168
    as_dict = fast.to_dict()
    assert as_dict["success"] is True and as_dict["metadata"]["source"] == "memory"
    assert as_dict["data"][0]["open"] == format(fast.data[0].open, "f")


async def test_an_upstream_failure_is_reported_and_not_cached(tmp_path: Path) -> None:
    r = rig(tmp_path)
    await r.store.upsert_ohlcv(hours(WEEK[0], 10), H1)
    r.source.down = True
    failed = await r.tiered.fetch_candles("BTC", *WEEK, H1)
    assert not failed.success
    assert (
        failed.error is not None
        and "upstream" in failed.error
        and "exchange unreachable" in failed.error
    )
    assert failed.metadata.data_count == 10 and not failed.metadata.cache_hit  # what the store had
    with pytest.raises(BackendError, match="exchange unreachable"):
        await r.tiered.fetch_ohlcv("BTC", *WEEK, H1)
    r.source.down = False
    recovered = await r.tiered.fetch_candles("BTC", *WEEK, H1)
    assert recovered.success and summary(recovered) == ("upstream", False, 168)
    assert r.tiered.stats()["failures"] == 2


async def test_a_read_needing_too_many_upstream_candles_fails_clearly(tmp_path: Path) -> None:
    r = rig(tmp_path, upstream_max_buckets=100)
    response = await r.tiered.fetch_candles("BTC", *WEEK, H1)
    assert not response.success
    assert (
        response.error is not None
        and "168" in response.error
        and "upstream_max_buckets" in response.error
    )
    assert r.source.log == []


async def test_an_upsert_replaces_cached_candles_in_every_tier(tmp_path: Path) -> None:
    r = rig(tmp_path)
    await r.tiered.fetch_candles("BTC", *WEEK, H1)
    target = WEEK[0] + timedelta(hours=30)
    fixed = candle(target, "12345.6789", 42)
    assert await r.tiered.upsert_ohlcv([fixed], H1) == 1
    from_memory = await r.tiered.fetch_candles("BTC", *WEEK, H1)
    assert from_memory.metadata.source == "memory"
    assert [c for c in from_memory.data if c.time == target] == [fixed]
    r.tiered.memory.clear()
    after = await r.tiered.fetch_candles("BTC", *WEEK, H1)
    assert after.metadata.source in ("disk", "store")
    assert [c for c in after.data if c.time == target] == [fixed]  # no stale disk copy


async def test_a_failed_upsert_changes_no_tier(tmp_path: Path) -> None:
    r = rig(tmp_path)
    before = await r.tiered.fetch_candles("BTC", *WEEK, H1)
    bad: list[Any] = [candle(WEEK[0], "1"), "not a candle"]
    with pytest.raises(ContractError):
        await r.tiered.upsert_ohlcv(bad, H1)
    assert (await r.tiered.fetch_candles("BTC", *WEEK, H1)).data == before.data


async def test_real_time_ticks_stay_in_memory_and_never_reach_the_store(tmp_path: Path) -> None:
    r = rig(tmp_path, realtime_ttl_s=1800)
    ticks = [
        TickData(
            time=NOW - timedelta(minutes=20 - n),
            symbol="BTC",
            price=Decimal(100 + n),
            volume=1,
            trade_id=f"x{n}",
        )
        for n in range(10)
    ]
    result = await r.tiered.ingest_ticks(ticks)
    assert (result.received, result.inserted) == (10, 10)
    assert (await r.tiered.ingest_ticks(ticks)).duplicates == 10
    assert await r.tiered.fetch_tick_data("BTC", TODAY, NOW) == ticks
    assert await r.store.fetch_tick_data("BTC", TODAY, NOW) == []
    assert r.store.counts()["ticks"] == 0
    # the open 12:00 bucket is aggregated from the ticks, and not persisted
    live = await r.tiered.fetch_candles(
        "BTC", TODAY + timedelta(hours=12), NOW + timedelta(hours=1), H1
    )
    assert dict(live.metadata.rows_by_tier) == {"ticks": 1}
    assert (live.data[0].open, live.data[0].close, live.data[0].volume) == (
        Decimal(100),
        Decimal(109),
        10,
    )
    assert await r.store.fetch_ohlcv("BTC", TODAY, NOW + timedelta(hours=1), H1) == []
    r.clock.advance(1800)
    assert await r.tiered.fetch_tick_data("BTC", TODAY, NOW) == []


async def test_ingest_ticks_accepts_async_sources_and_refuses_bad_batches(tmp_path: Path) -> None:
    r = rig(tmp_path)

    async def stream() -> Any:
        for n in range(5):
            yield TickData(
                time=NOW + timedelta(seconds=n), symbol="ETH", price=1, volume=1, trade_id=str(n)
            )

    assert (await r.tiered.ingest_ticks(stream(), batch_size=2)).inserted == 5
    with pytest.raises(ContractError, match="element 1"):
        await r.tiered.ingest_ticks([TickData(time=NOW, symbol="ETH", price=1, volume=1), "x"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="batch_size"):
        await r.tiered.ingest_ticks([], batch_size=0)


async def test_concurrent_misses_of_one_series_ask_upstream_once(tmp_path: Path) -> None:
    r = rig(tmp_path, source_settings={"latency_ms": 20})
    responses = await asyncio.gather(*(r.tiered.fetch_candles("BTC", *WEEK, H1) for _ in range(5)))
    assert len(r.source.log) == 1
    assert {len(x.data) for x in responses} == {168}
    assert sorted(x.metadata.source for x in responses) == ["memory"] * 4 + ["upstream"]


async def test_memory_keeps_the_most_recent_candles_and_few_series(tmp_path: Path) -> None:
    r = rig(tmp_path, memory_candles=100, max_series=2, disk=False)
    await r.tiered.fetch_candles("BTC", *WEEK, H1)
    recent = (WEEK[1] - timedelta(hours=100), WEEK[1])
    assert summary(await r.tiered.fetch_candles("BTC", *recent, H1))[0] == "memory"
    assert summary(await r.tiered.fetch_candles("BTC", *WEEK, H1))[0] == "store"
    await r.tiered.fetch_candles("ETH", *WEEK, H1)
    await r.tiered.fetch_candles("XRP", *WEEK, H1)
    assert r.tiered.stats()["memory"]["series"] == 2
    assert r.tiered.stats()["memory"]["evictions"] == 1


async def test_without_a_source_the_store_is_the_last_tier(tmp_path: Path) -> None:
    store = MemoryAdapter()
    tiered = TieredAdapter(store)
    await store.upsert_ohlcv(hours(WEEK[0], 5), H1)
    response = await tiered.fetch_candles("BTC", *WEEK, H1)
    assert summary(response) == ("store", False, 5)
    assert response.metadata.tiers == ("memory", "store")
    assert summary(await tiered.fetch_candles("BTC", *WEEK, H1)) == ("memory", True, 5)


async def test_health_and_everything_else_pass_to_the_store(tmp_path: Path) -> None:
    r = rig(tmp_path)
    await r.tiered.fetch_candles("BTC", *WEEK, H1)
    await r.tiered.update_position("BTC", 2, 100)
    assert (await r.store.fetch_position("BTC")) is not None
    health = await r.tiered.health_check()
    assert health.healthy
    assert health.details["tiers"]["requests"] == 1
    assert health.details["tiers"]["tiers"]["upstream"]["consulted"] == 1
    assert Capability.TICKS in r.tiered.capabilities


async def test_bad_reads_are_contract_errors(tmp_path: Path) -> None:
    from datetime import datetime

    r = rig(tmp_path)
    with pytest.raises(ContractError, match="naive"):
        await r.tiered.fetch_candles("BTC", datetime(2026, 1, 1), NOW, H1)
    with pytest.raises(ContractError, match="unknown interval"):
        await r.tiered.fetch_candles("BTC", *WEEK, "3h")


async def test_a_corrupt_disk_file_never_fails_a_read(tmp_path: Path) -> None:
    r = rig(tmp_path)
    first = await r.tiered.fetch_candles("BTC", *WEEK, H1)
    for path in r.disk_path.rglob("*.json.gz"):
        path.write_bytes(b"\x1f\x8b broken")
    r.tiered.memory.clear()
    again = await r.tiered.fetch_candles("BTC", *WEEK, H1)
    assert again.success and again.metadata.source == "store"
    assert again.data == first.data
    assert r.tiered.stats()["disk"]["corrupt"] >= 1


async def test_the_disk_tier_is_swept_at_open(tmp_path: Path) -> None:
    r = rig(tmp_path)
    await r.tiered.fetch_candles("BTC", *WEEK, H1)
    assert list(r.disk_path.rglob("*.json.gz"))
    r.clock.advance(40 * 86_400)
    await r.tiered.open()
    assert not list(r.disk_path.rglob("*.json.gz"))


class GatedStore(MemoryAdapter):
    """A store whose reads wait at a gate after reading, like a slow database."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.reading = asyncio.Event()

    async def fetch_ohlcv(self, *args: Any, **kwargs: Any) -> Any:
        rows = await super().fetch_ohlcv(*args, **kwargs)
        self.reading.set()
        await self.gate.wait()
        return rows


async def test_a_read_in_flight_cannot_put_back_what_an_upsert_replaced(tmp_path: Path) -> None:
    store = GatedStore()
    r = rig(tmp_path, store=store, disk=False)
    await store.upsert_ohlcv(hours(WEEK[0], 168, price="1"), H1)
    read = asyncio.create_task(r.tiered.fetch_candles("BTC", *WEEK, H1))
    await store.reading.wait()  # the read holds the old candles now
    fixed = candle(WEEK[0], "2", 99)
    write = asyncio.create_task(r.tiered.upsert_ohlcv([fixed], H1))
    await asyncio.sleep(0.01)
    store.gate.set()
    await asyncio.gather(read, write)
    after = await r.tiered.fetch_candles("BTC", *WEEK, H1)
    assert after.metadata.source == "memory"
    assert after.data[0] == fixed


async def test_a_read_across_the_disk_window_gets_every_candle(tmp_path: Path) -> None:
    """Disk keeps the last 30 days; older buckets come from the store and upstream, none lost."""
    r = rig(tmp_path)
    recent = (TODAY - timedelta(days=20), TODAY)
    await r.tiered.fetch_candles("BTC", *recent, H1)  # disk and store now hold the last 20 days
    r.tiered.memory.clear()
    wide = (TODAY - timedelta(days=40), TODAY)
    response = await r.tiered.fetch_candles("BTC", *wide, H1)
    assert response.success
    assert response.metadata.data_count == 40 * 24
    assert times(response.data) == [wide[0] + timedelta(hours=n) for n in range(40 * 24)]
    assert dict(response.metadata.rows_by_tier) == {"disk": 20 * 24, "upstream": 20 * 24}
    r.tiered.memory.clear()
    again = await r.tiered.fetch_candles("BTC", *wide, H1)
    assert summary(again) == ("store", False, 40 * 24)
    # 30 days of disk (from 12:30 thirty days ago: the 13:00 bucket on), the rest from the store
    assert dict(again.metadata.rows_by_tier) == {"disk": 30 * 24 - 13, "store": 10 * 24 + 13}


async def test_the_bucket_at_the_disk_window_edge_is_not_lost(tmp_path: Path) -> None:
    """The disk window starts mid-bucket (12:30, 30 days ago); the bucket holding it comes from below."""
    r = rig(tmp_path)
    assert r.tiered.disk is not None
    held = await r.source.fetch_candles("BTC", H1, TODAY - timedelta(days=31), TODAY)
    r.tiered.disk.fill("BTC", H1, held, [(TODAY - timedelta(days=31), TODAY)])
    wide = (TODAY - timedelta(days=40), TODAY)
    response = await r.tiered.fetch_candles("BTC", *wide, H1)
    assert times(response.data) == [wide[0] + timedelta(hours=n) for n in range(40 * 24)]
    assert dict(response.metadata.rows_by_tier) == {"disk": 30 * 24 - 13, "upstream": 10 * 24 + 13}
