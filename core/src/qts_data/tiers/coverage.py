"""Which parts of a candle series a tier knows completely: merged half-open spans of bucket starts.

A span ``[lo, hi)`` is covered when every bucket starting in it is known to the
tier: either the tier holds its candle, or the bucket is known to have none (a
market holiday, a halt). So an empty bucket inside a covered span is a genuine
gap, not a miss, and a tier serves a request only when the whole requested
range is covered.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from datetime import datetime

#: A half-open time range ``[lo, hi)``.
Span = tuple[datetime, datetime]

__all__ = ["Coverage", "Span"]


class Coverage:
    """Disjoint, non-adjacent, sorted spans. Adding a span merges it with those it touches."""

    __slots__ = ("_his", "_los")

    def __init__(self, spans: Iterable[Span] = ()) -> None:
        self._los: list[datetime] = []
        self._his: list[datetime] = []
        for lo, hi in spans:
            self.add(lo, hi)

    def __iter__(self) -> Iterator[Span]:
        return zip(self._los, self._his, strict=True)

    def __len__(self) -> int:
        return len(self._los)

    def __bool__(self) -> bool:
        return bool(self._los)

    def __repr__(self) -> str:
        inner = ", ".join(f"[{lo.isoformat()}, {hi.isoformat()})" for lo, hi in self)
        return f"Coverage({inner})"

    @property
    def spans(self) -> list[Span]:
        return list(self)

    def add(self, lo: datetime, hi: datetime) -> None:
        """Mark ``[lo, hi)`` covered, merging with overlapping or adjacent spans."""
        if lo >= hi:
            return
        los, his = self._los, self._his
        # first span whose end reaches lo (touching counts), last span whose start is <= hi
        first = bisect_left(his, lo)
        last = bisect_right(los, hi)
        if first < last:
            lo = min(lo, los[first])
            hi = max(hi, his[last - 1])
        los[first:last] = [lo]
        his[first:last] = [hi]

    def covers(self, lo: datetime, hi: datetime) -> bool:
        """Whether all of ``[lo, hi)`` is covered (an empty range always is)."""
        if lo >= hi:
            return True
        index = bisect_right(self._los, lo) - 1
        return index >= 0 and self._his[index] >= hi

    def split(self, lo: datetime, hi: datetime) -> tuple[list[Span], list[Span]]:
        """``[lo, hi)`` cut into its covered parts and its missing parts, each in order."""
        covered: list[Span] = []
        missing: list[Span] = []
        if lo >= hi:
            return covered, missing
        los, his = self._los, self._his
        index = max(0, bisect_right(los, lo) - 1)
        cursor = lo
        while index < len(los) and los[index] < hi:
            span_lo, span_hi = los[index], his[index]
            index += 1
            if span_hi <= cursor:
                continue
            if span_lo > cursor:
                missing.append((cursor, span_lo))
                cursor = span_lo
            end = min(span_hi, hi)
            covered.append((cursor, end))
            cursor = end
            if cursor >= hi:
                break
        if cursor < hi:
            missing.append((cursor, hi))
        return covered, missing

    def missing(self, lo: datetime, hi: datetime) -> list[Span]:
        """The parts of ``[lo, hi)`` that are not covered, in order."""
        return self.split(lo, hi)[1]

    def remove(self, lo: datetime, hi: datetime) -> None:
        """Forget ``[lo, hi)``: what was covered there no longer is."""
        if lo >= hi:
            return
        kept: list[Span] = []
        for span_lo, span_hi in self:
            if span_hi <= lo or span_lo >= hi:
                kept.append((span_lo, span_hi))
                continue
            if span_lo < lo:
                kept.append((span_lo, lo))
            if span_hi > hi:
                kept.append((hi, span_hi))
        self._los = [s[0] for s in kept]
        self._his = [s[1] for s in kept]

    def clip_below(self, floor: datetime) -> None:
        """Forget everything before ``floor``."""
        los, his = self._los, self._his
        drop = bisect_right(his, floor)
        del los[:drop], his[:drop]
        if los and los[0] < floor:
            los[0] = floor
