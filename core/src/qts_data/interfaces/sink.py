"""Event sinks and safety listeners: the notification side of a stack."""

from __future__ import annotations

import abc
from collections.abc import Sequence

from qts_data.contracts import Event, SafetyChange
from qts_data.interfaces.component import Component


class EventSink(Component, abc.ABC):
    """Receives prioritised events (P0 critical ... P3 low) in batches, in publication order.

    A sink may be slow or fail; the stack's event bus counts its failures and
    keeps delivering to the other sinks. ``deliver`` raises to report a failure
    of the whole batch.
    """

    @abc.abstractmethod
    async def deliver(self, events: Sequence[Event]) -> None: ...


class SafetyListener(Component, abc.ABC):
    """Told of every change of the safety state (NORMAL / WARNING / FAIL / LOCKDOWN)."""

    @abc.abstractmethod
    async def on_safety_change(self, change: SafetyChange) -> None: ...
