"""A circuit breaker for calls to a remote cache, modelled on resilience4j's.

* A count-based sliding window of the last ``window_size`` call outcomes. The
  breaker opens when at least ``minimum_calls`` are recorded and either the
  failure rate reaches ``failure_rate_threshold`` or the slow-call rate reaches
  ``slow_call_rate_threshold`` (a call is slow when it takes longer than
  ``slow_call_duration_s``).
* What is recorded is what really happened to a call, not whether its caller
  waited for it: a caller's time budget (5 ms) is far shorter than a slow call
  (see :mod:`qts_data.cache.guard`). The defaults and the measurements behind
  them are in the README ("The cache layer").
* OPEN rejects calls for ``wait_s`` (5 s at first, doubling on each reopening
  up to ``max_wait_s`` = 60 s; back to 5 s once closed), then HALF_OPEN.
* HALF_OPEN lets at most ``half_open_calls`` probes through; their outcomes
  decide CLOSED or OPEN. If they have not all finished within
  ``max_half_open_s`` the breaker opens again.
* ``force_open()`` and ``disable()`` pin the state until ``reset()``.
* Every transition is reported to the listeners.

Time comes from a monotonic clock (injectable). The breaker is plain
bookkeeping with no awaits inside, so no lock is held across an await: the
caller asks :meth:`CircuitBreaker.try_acquire` before the call and reports
the outcome with :meth:`on_success` or :meth:`on_failure`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pydantic import Field, model_validator

from qts_data.plugins.registry import Settings


class BreakerState(str, Enum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"
    FORCED_OPEN = "FORCED_OPEN"
    DISABLED = "DISABLED"


class BreakerSettings(Settings):
    """The ``[cache.breaker]`` table."""

    window_size: int = Field(default=50, ge=1)
    minimum_calls: int = Field(default=20, ge=1)
    failure_rate_threshold: float = Field(default=0.5, gt=0, le=1)
    slow_call_duration_s: float = Field(default=0.08, gt=0)
    slow_call_rate_threshold: float = Field(default=0.9, gt=0, le=1)
    wait_s: float = Field(default=5.0, gt=0)
    max_wait_s: float = Field(default=60.0, gt=0)
    wait_multiplier: float = Field(default=2.0, ge=1)
    half_open_calls: int = Field(default=3, ge=1)
    max_half_open_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> BreakerSettings:
        if self.minimum_calls > self.window_size:
            raise ValueError("minimum_calls cannot exceed window_size")
        if self.max_wait_s < self.wait_s:
            raise ValueError("max_wait_s cannot be below wait_s")
        return self


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of breaker state, as told to the listeners."""

    breaker: str
    previous: BreakerState
    current: BreakerState
    reason: str


# outcome codes in the window
_OK, _FAIL, _SLOW_OK, _SLOW_FAIL = 0, 1, 2, 3


class CircuitBreaker:
    """Decides whether a call may go to the protected resource."""

    def __init__(
        self,
        name: str = "cache",
        settings: BreakerSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.settings = s = settings or BreakerSettings()
        self._clock = clock
        self.state = BreakerState.CLOSED
        self._window: deque[int] = deque(maxlen=s.window_size)
        self._failures = 0  # failures (slow or not) in the window
        self._slow = 0  # slow calls (failed or not) in the window
        self._opened_at = 0.0
        self._wait = s.wait_s
        self._half_open_since = 0.0
        self._probes_started = 0
        self._probe_outcomes: list[int] = []
        self.listeners: list[Callable[[Transition], Any]] = []
        self.not_permitted = 0
        self.transitions = 0

    # -- the call protocol -------------------------------------------------------------
    def try_acquire(self) -> bool:
        """May a call go through now? A rejected call is counted as not permitted."""
        state = self.state
        if state is BreakerState.CLOSED or state is BreakerState.DISABLED:
            return True
        now = self._clock()
        if state is BreakerState.OPEN:
            if now - self._opened_at < self._wait:
                self.not_permitted += 1
                return False
            self._to_half_open(now)
            state = self.state
        if state is BreakerState.HALF_OPEN:
            if now - self._half_open_since > self.settings.max_half_open_s:
                self._to_open(now, "half-open probes did not finish in time", longer=True)
                self.not_permitted += 1
                return False
            if self._probes_started < self.settings.half_open_calls:
                self._probes_started += 1
                return True
        self.not_permitted += 1
        return False

    def on_success(self, duration_s: float = 0.0) -> None:
        slow = duration_s > self.settings.slow_call_duration_s
        self._record(_SLOW_OK if slow else _OK)

    def on_failure(self, duration_s: float = 0.0) -> None:
        slow = duration_s > self.settings.slow_call_duration_s
        self._record(_SLOW_FAIL if slow else _FAIL)

    def release(self) -> None:
        """Give back a permission whose call was not made (e.g. cancelled before it started)."""
        if self.state is BreakerState.HALF_OPEN and self._probes_started > len(
            self._probe_outcomes
        ):
            self._probes_started -= 1

    def trip(self, reason: str) -> None:
        """Open a closed breaker now, whatever its window says (the server went silent)."""
        if self.state is BreakerState.CLOSED:
            self._to_open(self._clock(), reason)

    # -- manual control ------------------------------------------------------------------
    def force_open(self) -> None:
        self._transition(BreakerState.FORCED_OPEN, "forced open")

    def disable(self) -> None:
        self._transition(BreakerState.DISABLED, "disabled")

    def reset(self) -> None:
        """Back to CLOSED with an empty window and the initial wait."""
        self._clear()
        self._wait = self.settings.wait_s
        self._transition(BreakerState.CLOSED, "reset")

    # -- metrics -------------------------------------------------------------------------
    @property
    def failure_rate(self) -> float | None:
        n = len(self._window)
        return self._failures / n if n >= self.settings.minimum_calls else None

    @property
    def slow_call_rate(self) -> float | None:
        n = len(self._window)
        return self._slow / n if n >= self.settings.minimum_calls else None

    @property
    def allows_calls(self) -> bool:
        """True unless the breaker is open (or forced open) and would reject a call now."""
        if self.state in (BreakerState.CLOSED, BreakerState.DISABLED, BreakerState.HALF_OPEN):
            return True
        return self.state is BreakerState.OPEN and self._clock() - self._opened_at >= self._wait

    def summary(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "failure_rate": self.failure_rate,
            "slow_call_rate": self.slow_call_rate,
            "calls_in_window": len(self._window),
            "not_permitted": self.not_permitted,
            "transitions": self.transitions,
            "open_wait_s": self._wait,
        }

    # -- internals -----------------------------------------------------------------------
    def _record(self, outcome: int) -> None:
        state = self.state
        if state is BreakerState.HALF_OPEN:
            self._probe_outcomes.append(outcome)
            if len(self._probe_outcomes) >= self.settings.half_open_calls:
                self._judge_probes()
            return
        if state is not BreakerState.CLOSED:
            return  # DISABLED / FORCED_OPEN record nothing; a late outcome after opening is ignored
        window = self._window
        if len(window) == window.maxlen:
            old = window[0]
            self._failures -= old in (_FAIL, _SLOW_FAIL)
            self._slow -= old in (_SLOW_OK, _SLOW_FAIL)
        window.append(outcome)
        self._failures += outcome in (_FAIL, _SLOW_FAIL)
        self._slow += outcome in (_SLOW_OK, _SLOW_FAIL)
        n = len(window)
        s = self.settings
        if n < s.minimum_calls:
            return
        if self._failures / n >= s.failure_rate_threshold:
            self._to_open(self._clock(), f"failure rate {self._failures}/{n}")
        elif self._slow / n >= s.slow_call_rate_threshold:
            self._to_open(self._clock(), f"slow-call rate {self._slow}/{n}")

    def _judge_probes(self) -> None:
        outcomes = self._probe_outcomes
        failures = sum(o in (_FAIL, _SLOW_FAIL) for o in outcomes)
        slow = sum(o in (_SLOW_OK, _SLOW_FAIL) for o in outcomes)
        n = len(outcomes)
        s = self.settings
        if failures / n >= s.failure_rate_threshold:
            self._to_open(self._clock(), f"{failures}/{n} probes failed", longer=True)
        elif slow / n >= s.slow_call_rate_threshold:
            self._to_open(self._clock(), f"{slow}/{n} probes slow", longer=True)
        else:
            self._clear()
            self._wait = s.wait_s
            self._transition(BreakerState.CLOSED, f"{n - failures}/{n} probes succeeded")

    def _to_open(self, now: float, reason: str, *, longer: bool = False) -> None:
        if longer:
            self._wait = min(self._wait * self.settings.wait_multiplier, self.settings.max_wait_s)
        self._opened_at = now
        self._clear()
        self._transition(BreakerState.OPEN, f"{reason}; calls rejected for {self._wait:g} s")

    def _to_half_open(self, now: float) -> None:
        self._half_open_since = now
        self._probes_started = 0
        self._probe_outcomes = []
        self._transition(BreakerState.HALF_OPEN, f"open for {self._wait:g} s; probing")

    def _clear(self) -> None:
        self._window.clear()
        self._failures = self._slow = 0
        self._probes_started = 0
        self._probe_outcomes = []

    def _transition(self, new: BreakerState, reason: str) -> None:
        previous = self.state
        if previous is new and new is not BreakerState.OPEN:
            return
        self.state = new
        self.transitions += 1
        event = Transition(self.name, previous, new, reason)
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # a listener never breaks the breaker
                pass
