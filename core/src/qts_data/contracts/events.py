"""Prioritised events (seeds/003, Phase 1-A) and safety states (the safety layer)."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, IntEnum
from typing import Any

from qts_data.contracts._base import UTC

_sequence = itertools.count(1)


class Priority(IntEnum):
    """Event priority; a lower number is more urgent."""

    P0 = 0  # critical: never dropped (safety changes into FAIL/LOCKDOWN, kill switches)
    P1 = 1  # high: circuit-breaker transitions, adapter errors
    P2 = 2  # normal: stale data, state updates (collapsed by key under pressure)
    P3 = 3  # low: cache hits and misses (sampled under pressure)


@dataclass(frozen=True, slots=True)
class Event:
    """An event for the sinks. ``key`` lets a queue collapse events about the same thing."""

    priority: Priority
    type: str
    source: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    key: str | None = None
    time_ns: int = field(default_factory=time.time_ns)
    seq: int = field(default_factory=lambda: next(_sequence))

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.time_ns / 1e9, UTC)

    def to_dict(self) -> dict[str, Any]:
        return {
            "priority": self.priority.name,
            "type": self.type,
            "source": self.source,
            "payload": self.payload,
            "key": self.key,
            "time": self.time.isoformat(),
            "seq": self.seq,
        }


class SafetyState(str, Enum):
    """The safety layer's state. LOCKDOWN stops cache writes; FAIL forces the fallback path."""

    NORMAL = "NORMAL"
    WARNING = "WARNING"
    FAIL = "FAIL"
    LOCKDOWN = "LOCKDOWN"


@dataclass(frozen=True, slots=True)
class SafetyChange:
    """A change of safety state, as told to the safety listeners."""

    previous: SafetyState
    current: SafetyState
    reason: str = ""
    time_ns: int = field(default_factory=time.time_ns)
