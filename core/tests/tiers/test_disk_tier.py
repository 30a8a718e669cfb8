"""The disk tier: compressed files per period, exact round trips, TTL, window, corruption, atomic writes."""

from __future__ import annotations

import gzip
import json
import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from tier_helpers import NOW, TODAY, Clock, hours, times

from qts_data.contracts import OHLCV, Interval
from qts_data.tiers import DiskCandleTier

H1, M1, D1 = Interval.H1, Interval.M1, Interval.D1
DAY = (TODAY - timedelta(days=1), TODAY)


def tier(root: Path, clock: Clock, **kw: object) -> DiskCandleTier:
    return DiskCandleTier(root, wall_clock=clock, **kw)  # type: ignore[arg-type]


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_round_trip_is_exact_to_the_last_digit(tmp_path: Path) -> None:
    disk = tier(tmp_path, Clock())
    exact = OHLCV(
        time=DAY[0],
        symbol="BTC/USDT",
        open=Decimal("9876543210.12345678"),
        high=Decimal("9876543210.12345679"),
        low=Decimal("0.00000001"),
        close=Decimal("1.10000001"),
        volume=2**53 + 1,
    )
    disk.fill("BTC/USDT", H1, [exact], [(DAY[0], DAY[0] + timedelta(hours=1))])
    found, missing = disk.lookup("BTC/USDT", H1, DAY[0], DAY[0] + timedelta(hours=1))
    assert missing == []
    assert found == [exact]
    assert found[0].to_json() == exact.to_json()
    assert found[0].time.tzinfo is not None and found[0].time == exact.time
    # a symbol with a slash is one folder, percent-encoded
    assert files(tmp_path) == ["1h/BTC%2FUSDT/2026-01.json.gz"]


def test_files_are_per_day_for_minutes_and_per_month_for_hours(tmp_path: Path) -> None:
    disk = tier(tmp_path, Clock())
    start = TODAY - timedelta(days=1, hours=1)  # 23:00 two days ago, across midnight
    rows = [
        OHLCV(
            time=start + timedelta(minutes=30 * n),
            symbol="BTC",
            open=1,
            high=1,
            low=1,
            close=1,
            volume=n,
        )
        for n in range(4)
    ]
    disk.fill("BTC", M1, rows, [(start, start + timedelta(hours=2))])
    assert files(tmp_path) == ["1m/BTC/2026-01-03.json.gz", "1m/BTC/2026-01-04.json.gz"]
    found, missing = disk.lookup("BTC", M1, start, start + timedelta(hours=2))
    assert times(found) == times(rows) and missing == []


def test_a_partly_covered_range_reports_what_is_missing(tmp_path: Path) -> None:
    disk = tier(tmp_path, Clock())
    rows = hours(DAY[0], 12)
    disk.fill("BTC", H1, rows, [(DAY[0], DAY[0] + timedelta(hours=12))])
    found, missing = disk.lookup("BTC", H1, DAY[0] + timedelta(hours=6), DAY[1])
    assert times(found) == times(rows[6:])
    assert missing == [(DAY[0] + timedelta(hours=12), DAY[1])]


def test_files_older_than_the_ttl_are_a_miss_and_removed(tmp_path: Path) -> None:
    clock = Clock()
    disk = tier(tmp_path, clock, ttl_s=86_400)
    disk.fill("BTC", H1, hours(DAY[0], 2), [(DAY[0], DAY[0] + timedelta(hours=2))])
    clock.advance(3600)
    disk.fill(
        "BTC", H1, hours(DAY[0] + timedelta(hours=2), 1), [(DAY[0], DAY[0] + timedelta(hours=3))]
    )
    clock.advance(86_400 - 3600 - 1)  # merging kept the creation time
    assert disk.lookup("BTC", H1, DAY[0], DAY[0] + timedelta(hours=3))[1] == []
    clock.advance(1)
    found, missing = disk.lookup("BTC", H1, DAY[0], DAY[0] + timedelta(hours=3))
    assert found == [] and missing == [(DAY[0], DAY[0] + timedelta(hours=3))]
    assert disk.expired == 1 and files(tmp_path) == []


def test_only_the_last_days_are_kept(tmp_path: Path) -> None:
    disk = tier(tmp_path, Clock(), days=30)
    old = NOW - timedelta(days=40)
    old_day = old.replace(hour=0, minute=0, second=0, microsecond=0)
    disk.fill(
        "BTC",
        D1,
        [OHLCV(time=old_day, symbol="BTC", open=1, high=1, low=1, close=1, volume=1)],
        [(old_day, old_day + timedelta(days=1))],
    )
    assert files(tmp_path) == []
    found, missing = disk.lookup("BTC", D1, old_day, old_day + timedelta(days=1))
    assert found == [] and missing == [(old_day, old_day + timedelta(days=1))]


@pytest.mark.parametrize(
    "content",
    [
        b"not gzip at all",
        gzip.compress(b"{not json"),
        gzip.compress(json.dumps({"v": 1, "symbol": "BTC"}).encode()),  # wrong shape
        gzip.compress(json.dumps({"v": 99}).encode()),  # unknown format
        b"",
    ],
    ids=["garbage", "bad-json", "missing-keys", "unknown-format", "empty"],
)
def test_a_corrupt_file_is_a_miss_and_is_removed(tmp_path: Path, content: bytes) -> None:
    disk = tier(tmp_path, Clock())
    disk.fill("BTC", H1, hours(DAY[0], 3), [(DAY[0], DAY[0] + timedelta(hours=3))])
    (path,) = tmp_path.rglob("*.json.gz")
    path.write_bytes(content)
    found, missing = disk.lookup("BTC", H1, DAY[0], DAY[0] + timedelta(hours=3))
    assert found == [] and missing == [(DAY[0], DAY[0] + timedelta(hours=3))]
    assert not path.exists() and disk.corrupt == 1


def test_a_truncated_file_is_a_miss(tmp_path: Path) -> None:
    disk = tier(tmp_path, Clock())
    disk.fill("BTC", H1, hours(DAY[0], 24), [DAY])
    (path,) = tmp_path.rglob("*.json.gz")
    path.write_bytes(path.read_bytes()[:-9])
    assert disk.lookup("BTC", H1, *DAY) == ([], [DAY])
    assert not path.exists()


def test_a_file_of_another_symbol_is_not_believed(tmp_path: Path) -> None:
    disk = tier(tmp_path, Clock())
    disk.fill("ETH", H1, hours(DAY[0], 2, "ETH"), [(DAY[0], DAY[0] + timedelta(hours=2))])
    (eth,) = tmp_path.rglob("*.json.gz")
    target = tmp_path / "1h" / "BTC" / eth.name
    target.parent.mkdir(parents=True)
    eth.rename(target)
    assert disk.lookup("BTC", H1, DAY[0], DAY[0] + timedelta(hours=2))[0] == []
    assert disk.corrupt == 1


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = tier(tmp_path, Clock())
    disk.fill("BTC", H1, hours(DAY[0], 2), [(DAY[0], DAY[0] + timedelta(hours=2))])
    (path,) = tmp_path.rglob("*.json.gz")
    before = path.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        disk.fill(
            "BTC",
            H1,
            hours(DAY[0] + timedelta(hours=2), 2),
            [(DAY[0], DAY[0] + timedelta(hours=4))],
        )
    assert path.read_bytes() == before
    assert files(tmp_path) == [str(path.relative_to(tmp_path))]  # no temporary left behind
    monkeypatch.undo()
    found, missing = disk.lookup("BTC", H1, DAY[0], DAY[0] + timedelta(hours=4))
    assert len(found) == 2 and missing == [
        (DAY[0] + timedelta(hours=2), DAY[0] + timedelta(hours=4))
    ]


def test_invalidate_removes_the_files_holding_written_times(tmp_path: Path) -> None:
    disk = tier(tmp_path, Clock())
    disk.fill("BTC", M1, [], [(DAY[0], DAY[1])])
    disk.fill("BTC", M1, [], [(TODAY - timedelta(days=2), DAY[0])])
    assert disk.invalidate("BTC", M1, [DAY[0] + timedelta(minutes=5)]) == 1
    assert files(tmp_path) == ["1m/BTC/2026-01-03.json.gz"]


def test_sweep_removes_out_of_window_files_and_old_temporaries(tmp_path: Path) -> None:
    clock = Clock()
    disk = tier(tmp_path, clock, days=2)
    disk.fill("BTC", M1, [], [(DAY[0], DAY[1])])
    folder = tmp_path / "1m" / "BTC"
    (folder / "2025-12-01.json.gz").write_bytes(b"old")
    stray = folder / ".tmp-abc.json.gz"
    stray.write_bytes(b"partial")
    os.utime(stray, (clock() - 7200, clock() - 7200))
    assert disk.sweep() == 2
    assert files(tmp_path) == ["1m/BTC/2026-01-04.json.gz"]
    clock.advance(3 * 86_400)
    assert disk.sweep() == 1
    assert files(tmp_path) == []
