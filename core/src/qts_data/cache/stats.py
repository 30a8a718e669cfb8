"""Per-kind cache statistics, with latency percentiles over a window of recent calls."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any

LATENCY_WINDOW = 1024


@dataclass
class KindStats:
    """Counters of one cache kind."""

    hits: int = 0  # served from the cache client
    near_hits: int = 0  # served from the in-process near cache (also counted in hits)
    misses: int = 0
    stale_reads: int = 0  # values found older than the caller's max age
    loads: int = 0  # loader calls after a miss
    merged_loads: int = 0  # callers that waited for another caller's load of the same key
    refreshes: int = 0  # background reloads of hot values near the end of their TTL
    writes: int = 0
    invalidations: int = 0
    fallbacks: int = 0  # reads served by the source because the cache failed, timed out or was open
    timeouts: int = 0  # cache calls that missed their time budget
    errors: int = 0  # cache calls that raised
    skipped_writes: int = 0  # writes not done (LOCKDOWN, open breaker, failed, over budget)
    refused_writes: int = 0  # writes the cache refused: it holds a newer version
    late_writes: int = 0  # writes that ended after their caller gave up on them
    _latency_us: array[float] = field(
        default_factory=lambda: array("d", [0.0] * LATENCY_WINDOW), repr=False
    )
    _latency_n: int = field(default=0, repr=False)

    def record_latency(self, seconds: float) -> None:
        self._latency_us[self._latency_n % LATENCY_WINDOW] = seconds * 1e6
        self._latency_n += 1

    @property
    def hit_rate(self) -> float | None:
        total = self.hits + self.misses
        return self.hits / total if total else None

    def percentiles_us(self) -> dict[str, float | None]:
        """p50 / p95 / p99 of the cache client's latency over the last calls (µs)."""
        n = min(self._latency_n, LATENCY_WINDOW)
        if n == 0:
            return {"p50": None, "p95": None, "p99": None}
        values = sorted(self._latency_us[:n])

        def pick(q: float) -> float:
            return round(values[min(n - 1, int(q * n))], 1)

        return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99)}

    def as_dict(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "near_hits": self.near_hits,
            "misses": self.misses,
            "hit_rate": self.hit_rate,
            "stale_reads": self.stale_reads,
            "loads": self.loads,
            "merged_loads": self.merged_loads,
            "refreshes": self.refreshes,
            "writes": self.writes,
            "invalidations": self.invalidations,
            "fallbacks": self.fallbacks,
            "timeouts": self.timeouts,
            "errors": self.errors,
            "skipped_writes": self.skipped_writes,
            "refused_writes": self.refused_writes,
            "late_writes": self.late_writes,
            "latency_us": self.percentiles_us(),
        }
