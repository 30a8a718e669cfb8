"""The disk tier: recent candles in compressed files, one per (symbol, interval, UTC day or month).

Layout under ``root``: ``<interval>/<symbol, percent-encoded>/<period>.json.gz``
where the period is the UTC day (``2026-01-05``) for 1m and 5m candles and the
UTC month (``2026-01``) for 15m, 1h and 1d candles. A file is gzip-compressed
JSON holding its candles (times as integer microseconds, prices as decimal
text, so a round trip is exact), the spans of bucket starts it covers, and when
it was created.

* Only candles of the last ``days`` days are kept (seeds/001: the recent month);
  a read of older buckets passes to the next tier.
* A file lives ``ttl_s`` from its creation (seeds/001: one day): an older file is
  a miss and is removed. Merging new candles into a file keeps its creation time.
* Writes are atomic: a temporary file in the same folder, then ``os.replace``.
  Nothing is fsynced (it is a cache): after a power loss a file may be
  unreadable, which is a miss.
* A file that cannot be read or decoded (truncated, not gzip, wrong shape) is a
  miss and is removed; a read never fails because of the disk cache.

The methods block on file I/O; the tiered adapter calls them in a worker thread.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import tempfile
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from qts_data.contracts import OHLCV, Interval
from qts_data.contracts.trusted import trusted_builder
from qts_data.tiers.coverage import Coverage, Span

__all__ = ["DiskCandleTier"]

log = logging.getLogger("qts_data.tiers.disk")

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
FORMAT = 1
SUFFIX = ".json.gz"
#: Intervals kept in one file per UTC day; the others get one file per UTC month.
DAILY_FILES = frozenset({Interval.M1, Interval.M5})


def _us(when: datetime) -> int:
    return (when - EPOCH) // _US


def _time(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def _period(interval: Interval, when: datetime) -> tuple[datetime, datetime, str]:
    """The file period holding bucket ``when``: its start, its end and its file stem."""
    if interval in DAILY_FILES:
        start = when.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1), f"{start:%Y-%m-%d}"
    start = when.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end, f"{start:%Y-%m}"


class _File:
    """The decoded content of one period file."""

    __slots__ = ("candles", "coverage", "created")

    def __init__(self, created: float, coverage: Coverage, candles: dict[datetime, OHLCV]) -> None:
        self.created = created
        self.coverage = coverage
        self.candles = candles


class CorruptFile(ValueError):
    """A cache file whose content is not what this tier writes."""


_build = trusted_builder(OHLCV)


def _decode(raw: bytes, symbol: str, interval: Interval) -> _File:
    doc = json.loads(gzip.decompress(raw))
    if not isinstance(doc, dict) or doc.get("v") != FORMAT:
        raise CorruptFile("unknown format")
    if doc.get("symbol") != symbol or doc.get("interval") != interval.value:
        raise CorruptFile(f"holds {doc.get('symbol')!r} {doc.get('interval')!r}")
    created = float(doc["created"])
    coverage = Coverage((_time(int(lo)), _time(int(hi))) for lo, hi in doc["covered"])
    candles: dict[datetime, OHLCV] = {}
    build = _build
    for us, o, h, low, c, volume in doc["candles"]:
        when = EPOCH + timedelta(microseconds=us)
        if type(volume) is not int:
            raise CorruptFile("volume is not an integer")
        # The values were validated contracts when written and gzip checks a CRC of the
        # content, so the hot path rebuilds them without validating again.
        candles[when] = build(
            {
                "time": when,
                "symbol": symbol,
                "open": Decimal(o),
                "high": Decimal(h),
                "low": Decimal(low),
                "close": Decimal(c),
                "volume": volume,
            }
        )
    return _File(created, coverage, candles)


def _encode(file: _File, symbol: str, interval: Interval) -> bytes:
    doc: dict[str, Any] = {
        "v": FORMAT,
        "symbol": symbol,
        "interval": interval.value,
        "created": file.created,
        "covered": [[_us(lo), _us(hi)] for lo, hi in file.coverage],
        "candles": [
            [
                _us(when),
                format(c.open, "f"),
                format(c.high, "f"),
                format(c.low, "f"),
                format(c.close, "f"),
                c.volume,
            ]
            for when, c in sorted(file.candles.items(), key=lambda item: item[0])
        ],
    }
    text = json.dumps(doc, separators=(",", ":"))
    return gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)


class DiskCandleTier:
    """Compressed candle files under ``root``, for the last ``days`` days, each valid ``ttl_s``."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        ttl_s: float = 86_400.0,
        days: int = 30,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl_s <= 0 or days < 1:
            raise ValueError("ttl_s and days must be positive")
        self.root = Path(root)
        self.ttl_s = ttl_s
        self.days = days
        self._wall = wall_clock
        self.corrupt = 0
        self.expired = 0
        self.files_written = 0

    # -- paths ---------------------------------------------------------------------------
    def _folder(self, symbol: str, interval: Interval) -> Path:
        return self.root / interval.value / quote(symbol, safe="")

    def path(self, symbol: str, interval: Interval, when: datetime) -> Path:
        """The file holding the bucket of ``symbol`` at ``when``."""
        return self._folder(symbol, interval) / f"{_period(interval, when)[2]}{SUFFIX}"

    def window_start(self, interval: Interval) -> datetime:
        """The first bucket kept on disk: buckets starting before it are not (a bucket boundary)."""
        start = datetime.fromtimestamp(self._wall(), UTC) - timedelta(days=self.days)
        floor = interval.floor(start)
        return floor if floor == start else floor + interval.delta

    def _periods(
        self, interval: Interval, lo: datetime, hi: datetime
    ) -> Iterable[tuple[datetime, datetime]]:
        cursor = lo
        while cursor < hi:
            start, end, _ = _period(interval, cursor)
            yield max(start, lo), min(end, hi)
            cursor = end

    # -- files ---------------------------------------------------------------------------
    def _load(self, path: Path, symbol: str, interval: Interval) -> _File | None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("disk cache %s unreadable, ignored: %s", path, exc)
            return None
        try:
            file = _decode(raw, symbol, interval)
        except Exception as exc:  # any decoding failure: a miss, never a failed read
            self.corrupt += 1
            log.warning("disk cache %s is corrupt (%s: %s); removed", path, type(exc).__name__, exc)
            self._remove(path)
            return None
        if self._wall() - file.created >= self.ttl_s:
            self.expired += 1
            self._remove(path)
            return None
        return file

    def _store(self, path: Path, file: _File, symbol: str, interval: Interval) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _encode(file, symbol, interval)
        fd, temp = tempfile.mkstemp(prefix=".tmp-", suffix=SUFFIX, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temp, path)
        except BaseException:
            self._remove(Path(temp))
            raise
        self.files_written += 1

    @staticmethod
    def _remove(path: Path) -> None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot remove disk cache file %s: %s", path, exc)

    # -- the tier ------------------------------------------------------------------------
    def lookup(
        self, symbol: str, interval: Interval, lo: datetime, hi: datetime
    ) -> tuple[list[OHLCV], list[Span]]:
        """Candles of the covered parts of ``[lo, hi)`` in time order, and the parts not covered."""
        found: list[OHLCV] = []
        missing: list[Span] = []
        window = self.window_start(interval)
        if lo < window:
            missing.append((lo, min(hi, window)))
            lo = max(lo, window)
        for start, end in self._periods(interval, lo, hi):
            file = self._load(self.path(symbol, interval, start), symbol, interval)
            if file is None:
                parts: list[Span] = [(start, end)]
            else:
                covered, parts = file.coverage.split(start, end)
                if covered:
                    times = sorted(file.candles)  # already in order as written: linear
                    for span_lo, span_hi in covered:
                        first = bisect_left(times, span_lo)
                        upto = bisect_left(times, span_hi, first)
                        found.extend(file.candles[when] for when in times[first:upto])
            for span in parts:  # merge adjacent missing parts across files
                if missing and missing[-1][1] == span[0]:
                    missing[-1] = (missing[-1][0], span[1])
                else:
                    missing.append(span)
        return found, missing

    def fill(
        self,
        symbol: str,
        interval: Interval,
        candles: Sequence[OHLCV],
        covered: Iterable[Span],
    ) -> None:
        """Add candles read from a lower tier and the spans that read covered; older than the window is skipped."""
        window = self.window_start(interval)
        by_period: dict[datetime, tuple[list[OHLCV], list[Span]]] = {}
        for candle in candles:
            if candle.time >= window:
                start = _period(interval, candle.time)[0]
                by_period.setdefault(start, ([], []))[0].append(candle)
        for lo, hi in covered:
            lo = max(lo, window)
            for start, end in self._periods(interval, lo, hi):
                by_period.setdefault(_period(interval, start)[0], ([], []))[1].append((start, end))
        for start, (rows, spans) in sorted(by_period.items(), key=lambda item: item[0]):
            path = self.path(symbol, interval, start)
            file = self._load(path, symbol, interval) or _File(self._wall(), Coverage(), {})
            for candle in rows:
                file.candles[candle.time] = candle
            for lo, hi in spans:
                file.coverage.add(lo, hi)
            self._store(path, file, symbol, interval)

    def invalidate(self, symbol: str, interval: Interval, times: Iterable[datetime]) -> int:
        """Remove the files holding any of ``times`` (after a write to the store). Returns how many."""
        removed = 0
        for stem in {_period(interval, when)[2] for when in times}:
            path = self._folder(symbol, interval) / f"{stem}{SUFFIX}"
            if path.exists():
                self._remove(path)
                removed += 1
        return removed

    def sweep(self) -> int:
        """Remove expired, corrupt and out-of-window files, and stray temporary files. Returns how many."""
        if not self.root.is_dir():
            return 0
        removed = 0
        oldest = datetime.fromtimestamp(self._wall(), UTC) - timedelta(days=self.days)
        for path in self.root.glob(f"*/*/*{SUFFIX}"):
            if path.name.startswith(".tmp-"):
                if self._wall() - path.stat().st_mtime > 3600:
                    self._remove(path)
                    removed += 1
                continue
            try:
                interval = Interval(path.parent.parent.name)
                stem = path.name[: -len(SUFFIX)]
                start = datetime.strptime(stem, "%Y-%m-%d" if interval in DAILY_FILES else "%Y-%m")
            except ValueError:
                continue  # not one of ours
            if _period(interval, start.replace(tzinfo=UTC))[1] <= oldest:
                self._remove(path)
                removed += 1
                continue
            if self._load(path, unquote(path.parent.name), interval) is None:
                removed += 1
        return removed

    def clear(self) -> None:
        """Remove every file of this tier."""
        if self.root.is_dir():
            for child in self.root.iterdir():
                if child.is_dir() and child.name in {i.value for i in Interval}:
                    shutil.rmtree(child, ignore_errors=True)
