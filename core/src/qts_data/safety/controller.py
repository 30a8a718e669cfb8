"""The safety state of a stack (NORMAL / WARNING / FAIL / LOCKDOWN) and who is told of it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from qts_data.contracts import Priority, SafetyChange, SafetyState
from qts_data.events.dispatcher import EventDispatcher
from qts_data.interfaces import SafetyListener

log = logging.getLogger("qts_data.safety")


class SafetyController:
    """Holds the state; on a change, tells the stack's own parts, the listeners, and the event bus.

    LOCKDOWN stops cache writes, FAIL forces the cache fallback (see
    :meth:`qts_data.cache.CacheManager.on_safety_change`); NORMAL resumes
    everything without a restart. A change into FAIL or LOCKDOWN is a P0 event,
    any other a P1 event.
    """

    def __init__(
        self,
        listeners: Sequence[SafetyListener] = (),
        events: EventDispatcher | None = None,
        internal: Sequence[Callable[[SafetyChange], None]] = (),
    ) -> None:
        self.state = SafetyState.NORMAL
        self.listeners = list(listeners)
        self.events = events
        self._internal = list(internal)
        self.listener_failures = 0

    async def set_state(self, state: SafetyState | str, reason: str = "") -> SafetyChange | None:
        """Change the state; None when it already was ``state``."""
        new = SafetyState(state)
        if new is self.state:
            return None
        change = SafetyChange(previous=self.state, current=new, reason=reason)
        self.state = new
        for hook in self._internal:
            hook(change)
        for listener in self.listeners:
            try:
                await listener.on_safety_change(change)
            except Exception as exc:
                self.listener_failures += 1
                log.warning("safety listener %s failed: %s", listener.name, exc)
        if self.events is not None:
            priority = (
                Priority.P0 if new in (SafetyState.FAIL, SafetyState.LOCKDOWN) else Priority.P1
            )
            await self.events.emit(
                priority,
                "safety.changed",
                "safety",
                previous=change.previous.value,
                current=new.value,
                reason=reason,
            )
        return change
