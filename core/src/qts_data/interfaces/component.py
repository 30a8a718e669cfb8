"""What every stack component has in common: a name, a lifecycle and a health check."""

from __future__ import annotations

from typing import Any

from qts_data.contracts import HealthState, HealthStatus


class Component:
    """Base of adapters, cache clients, event sinks and safety listeners.

    A stack constructs its components from configuration, then ``await open()``s
    them in dependency order and ``await close()``s them in reverse. Opening is
    where connections are made; construction must not touch the network.
    """

    #: The component's name in the stack configuration; set by the stack builder.
    name: str = ""

    async def open(self) -> None:
        """Connect, create pools, start background tasks. Called once by the stack."""

    async def close(self) -> None:
        """Release everything ``open`` acquired. Idempotent: safe on an unopened or closed component."""

    async def health_check(self) -> HealthStatus:
        """The component's health. The default says it is alive."""
        return HealthStatus(component=self.name or type(self).__name__, state=HealthState.HEALTHY)

    def describe(self) -> dict[str, Any]:
        """Settings worth showing in ``qts-data check`` (never secrets)."""
        return {}
