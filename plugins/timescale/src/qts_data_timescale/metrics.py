"""Latencies of recent operations, for the p99 alert of seeds/002 §7.3."""

from __future__ import annotations

import math
from collections import deque


class LatencyWindow:
    """The last ``size`` operation latencies in milliseconds."""

    __slots__ = ("_values", "count")

    def __init__(self, size: int = 1000) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self.count = 0  # operations ever recorded

    def add(self, ms: float) -> None:
        self._values.append(ms)
        self.count += 1

    def percentile(self, fraction: float) -> float | None:
        """The ``fraction`` quantile (nearest rank) of the window; None while it is empty."""
        if not self._values:
            return None
        ordered = sorted(self._values)
        rank = max(1, math.ceil(fraction * len(ordered)))
        return ordered[rank - 1]

    def p99(self) -> float | None:
        return self.percentile(0.99)

    def __len__(self) -> int:
        return len(self._values)
