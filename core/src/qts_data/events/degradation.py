"""Degradation levels: which priorities are delivered, set by queue pressure and the safety state.

==============  =================  ===============================================
level           delivered          entered when
==============  =================  ===============================================
NORMAL          P0 P1 P2 P3        no pressure, safety not LOCKDOWN
P3_PAUSED       P0 P1 P2           a P2 queue is ``enter`` full
P2_P3_PAUSED    P0 P1              a P1 queue is ``enter`` full
CRITICAL_ONLY   P0                 a P0 queue is ``enter`` full, or safety LOCKDOWN
==============  =================  ===============================================

Every sink has its own level (its own queues' pressure): a sink that cannot
keep up pauses its own low priorities, never another sink's. The safety state
applies to every sink. The pressure of a priority starts when its queue reaches
``enter`` of its capacity and ends when it is back to ``leave`` (hysteresis,
so the level does not flap). The pressure of a priority never
pauses that priority itself, so the backlog that caused it always drains.
The P3 queue drives no level: its own overflow policy (sampling) handles it.
Paused events are kept, under their queue's overflow policy, and delivered
when the level allows again.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from qts_data.contracts import Priority, SafetyState

__all__ = ["Degradation", "DegradationLevel", "LevelChange"]

log = logging.getLogger("qts_data.events")


class DegradationLevel(IntEnum):
    """How much of the event traffic is delivered; a higher level delivers less."""

    NORMAL = 0
    P3_PAUSED = 1
    P2_P3_PAUSED = 2
    CRITICAL_ONLY = 3

    def delivers(self, priority: int) -> bool:
        """Whether events of ``priority`` are delivered at this level."""
        return priority + self <= 3


#: The level that pressure on a priority's queue causes.
_LEVEL_OF_PRESSURE = (
    DegradationLevel.CRITICAL_ONLY,
    DegradationLevel.P2_P3_PAUSED,
    DegradationLevel.P3_PAUSED,
)


@dataclass(frozen=True)
class LevelChange:
    """A change of degradation level, as told to the listeners."""

    previous: DegradationLevel
    current: DegradationLevel
    reason: str
    sink: str = ""
    time_ns: int = field(default_factory=time.time_ns)


class Degradation:
    """The level of one sink, from its queues' pressure (with hysteresis) and the safety state.

    ``depth_of(priority)`` returns the depth of the sink's queue of that priority. Listeners are called synchronously, in order, once per change;
    a change caused by a listener is told after the current one.
    """

    def __init__(
        self,
        capacities: Sequence[int],
        depth_of: Callable[[int], int],
        *,
        enter: float = 0.8,
        leave: float = 0.5,
        name: str = "",
    ) -> None:
        if not 0 <= leave < enter <= 1:
            raise ValueError(f"need 0 <= leave < enter <= 1, got enter={enter}, leave={leave}")
        #: Depth from which a queue of P0, P1, P2 is under pressure.
        self.enter_at = [max(1, math.ceil(c * enter)) for c in capacities[:3]]
        #: Depth at or below which the pressure ends.
        self.leave_at = [
            min(math.floor(c * leave), e - 1)
            for c, e in zip(capacities[:3], self.enter_at, strict=True)
        ]
        self._depth_of = depth_of
        self.name = name
        self.pressured = [False, False, False]
        self.safety = SafetyState.NORMAL
        self.level = DegradationLevel.NORMAL
        self.changes = 0
        self.listeners: list[Callable[[LevelChange], None]] = []
        self._pending: deque[LevelChange] = deque()
        self._notifying = False

    # -- inputs ------------------------------------------------------------------------------
    def pressure(self, priority: int) -> None:
        """The queue of ``priority`` reached ``enter_at``; called by the queue after a put."""
        if priority < 3 and not self.pressured[priority]:
            self.pressured[priority] = True
            self._update(f"{Priority(priority).name} queue at {self._depth_of(priority)} events")

    def relief(self, priority: int) -> None:
        """The queue of ``priority`` shrank; ends its pressure when it is low enough."""
        if self.pressured[priority]:
            depth = self._depth_of(priority)
            if depth <= self.leave_at[priority]:
                self.pressured[priority] = False
                self._update(f"{Priority(priority).name} queue back to {depth} events")

    def set_safety_state(self, state: SafetyState | str) -> None:
        """LOCKDOWN forces CRITICAL_ONLY; leaving it gives the level back to queue pressure."""
        state = SafetyState(state)
        if state is not self.safety:
            self.safety = state
            self._update(f"safety {state.value}")

    # -- the level ----------------------------------------------------------------------------
    @property
    def pressure_level(self) -> DegradationLevel:
        for priority, pressured in enumerate(self.pressured):
            if pressured:
                return _LEVEL_OF_PRESSURE[priority]
        return DegradationLevel.NORMAL

    def _update(self, reason: str) -> None:
        level = self.pressure_level
        if self.safety is SafetyState.LOCKDOWN:
            level = DegradationLevel.CRITICAL_ONLY
        if level is self.level:
            return
        change = LevelChange(self.level, level, reason, self.name)
        self.level = level
        self.changes += 1
        log.info(
            "event sink %s: delivery level %s -> %s (%s)",
            self.name, change.previous.name, level.name, reason,
        )  # fmt: skip
        self._pending.append(change)
        if self._notifying:
            return
        self._notifying = True
        try:
            while self._pending:
                pending = self._pending.popleft()
                for listener in list(self.listeners):
                    try:
                        listener(pending)
                    except Exception as exc:
                        log.warning("degradation listener %r failed: %s", listener, exc)
        finally:
            self._notifying = False

    def summary(self) -> dict[str, object]:
        return {
            "level": self.level.name,
            "safety": self.safety.value,
            "pressured": [Priority(p).name for p, on in enumerate(self.pressured) if on],
            "changes": self.changes,
        }
