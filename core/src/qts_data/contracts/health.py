"""Health reports of components and stacks."""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import Field

from qts_data.contracts._base import Contract, UtcDatetime, utc_now


class HealthState(str, Enum):
    HEALTHY = "HEALTHY"
    DEGRADED = "DEGRADED"  # working, but past an alert threshold or with a part down
    UNHEALTHY = "UNHEALTHY"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {HealthState.HEALTHY: 0, HealthState.DEGRADED: 1, HealthState.UNHEALTHY: 2}


class HealthStatus(Contract):
    """The health of one component: its state, how long the check took, and details."""

    component: str
    state: HealthState
    latency_ms: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    message: str = ""
    details: dict[str, Any] = Field(default_factory=dict)
    checked_at: UtcDatetime = Field(default_factory=utc_now)

    @property
    def healthy(self) -> bool:
        return self.state is HealthState.HEALTHY

    @classmethod
    def worst(cls, states: list[HealthState]) -> HealthState:
        return max(states, key=lambda s: s.rank, default=HealthState.HEALTHY)
