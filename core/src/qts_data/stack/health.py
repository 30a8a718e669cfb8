"""The health of a whole stack, as ``await Stack.health()`` returns it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qts_data.contracts import HealthState, HealthStatus


@dataclass
class ComponentHealth:
    kind: str
    name: str
    type: str
    status: HealthStatus


@dataclass
class StackHealth:
    state: HealthState
    components: list[ComponentHealth]
    safety: str
    cache: dict[str, Any] = field(default_factory=dict)
    events: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.state is HealthState.HEALTHY

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "safety": self.safety,
            "components": [
                {
                    "kind": c.kind,
                    "name": c.name,
                    "type": c.type,
                    "state": c.status.state.value,
                    "latency_ms": c.status.latency_ms,
                    "message": c.status.message,
                    "details": c.status.details,
                }
                for c in self.components
            ],
            "cache": self.cache,
            "events": self.events,
        }
