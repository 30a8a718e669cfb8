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

A cache made of several shards (the masters of a Redis Cluster) has one breaker
per shard, in a :class:`ShardedBreaker`: losing one master bypasses only the keys
it serves. After a failover the keys map to the promoted node, whose breaker is
new (closed); the breakers of shards that no longer serve keys are dropped, and
the open breakers of the others probe at once (:meth:`CircuitBreaker.end_wait`),
again every ``SETTLING_RETRY_S`` while the change may not have reached every
server yet, for as long as they would have waited anyway.

Time comes from a monotonic clock (injectable). The breaker is plain
bookkeeping with no awaits inside, so no lock is held across an await: the
caller asks :meth:`CircuitBreaker.try_acquire` before the call and reports
the outcome with :meth:`on_success` or :meth:`on_failure`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Collection, Iterable
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
    #: The shard whose breaker it is (e.g. a cluster master ``host:port``); None: the default.
    shard: str | None = None


# outcome codes in the window
_OK, _FAIL, _SLOW_OK, _SLOW_FAIL = 0, 1, 2, 3

#: After :meth:`CircuitBreaker.end_wait`, how soon failed probes are tried again while the
#: change settles (a promoted replica is known to some servers a moment before others).
SETTLING_RETRY_S = 0.25
_SETTLING = "the shards were rearranged moments ago"


class CircuitBreaker:
    """Decides whether a call may go to the protected resource."""

    def __init__(
        self,
        name: str = "cache",
        settings: BreakerSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        shard: str | None = None,
    ) -> None:
        self.name = name
        self.shard = shard
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
        self._wait_ended: str | None = None  # why the open wait was cut short
        #: Until then (after end_wait), failed probes reopen for SETTLING_RETRY_S only.
        self._settle_until = 0.0
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
                self._reopen(now, "half-open probes did not finish in time")
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

    def trip(self, reason: str) -> bool:
        """Open a closed breaker now, whatever its window says (the server went silent).
        False when it was not closed (then nothing changes)."""
        if self.state is not BreakerState.CLOSED:
            return False
        self._to_open(self._clock(), reason)
        return True

    def end_wait(
        self, reason: str = "the shards were rearranged", *, settle_s: float = 0.0
    ) -> None:
        """An OPEN breaker lets its probes through at the next call instead of at the end of
        its wait (what it opened on may be gone). Their outcomes decide, except that for
        ``settle_s`` probes that fail reopen it for ``SETTLING_RETRY_S`` only, with the same
        wait (the change may take a moment to reach every server). A forced-open or
        disabled breaker is left alone."""
        if self.state is BreakerState.OPEN:
            now = self._clock()
            self._opened_at = now - self._wait
            self._wait_ended = reason
            self._settle_until = now + settle_s

    # -- manual control ------------------------------------------------------------------
    def force_open(self) -> None:
        self._transition(BreakerState.FORCED_OPEN, "forced open")

    def disable(self) -> None:
        self._transition(BreakerState.DISABLED, "disabled")

    def reset(self) -> None:
        """Back to CLOSED with an empty window and the initial wait."""
        self._clear()
        self._wait = self.settings.wait_s
        self._settle_until = 0.0
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
            self._reopen(self._clock(), f"{failures}/{n} probes failed")
        elif slow / n >= s.slow_call_rate_threshold:
            self._reopen(self._clock(), f"{slow}/{n} probes slow")
        else:
            self._clear()
            self._wait = s.wait_s
            self._settle_until = 0.0
            self._transition(BreakerState.CLOSED, f"{n - failures}/{n} probes succeeded")

    def _reopen(self, now: float, reason: str) -> None:
        """Probes failed: open for a longer wait, or briefly while a rearrangement settles."""
        if now >= self._settle_until:
            self._to_open(now, reason, longer=True)
            return
        self._opened_at = now - self._wait + SETTLING_RETRY_S
        self._clear()
        self._transition(
            BreakerState.OPEN, f"{reason}; probing again in {SETTLING_RETRY_S:g} s ({_SETTLING})"
        )
        self._wait_ended = _SETTLING

    def _to_open(self, now: float, reason: str, *, longer: bool = False) -> None:
        if longer:
            self._wait = min(self._wait * self.settings.wait_multiplier, self.settings.max_wait_s)
        self._opened_at = now
        self._wait_ended = None
        self._clear()
        self._transition(BreakerState.OPEN, f"{reason}; calls rejected for {self._wait:g} s")

    def _to_half_open(self, now: float) -> None:
        self._half_open_since = now
        self._probes_started = 0
        self._probe_outcomes = []
        reason, self._wait_ended = self._wait_ended, None
        if reason is None:
            reason = f"open for {self._wait:g} s"
        self._transition(BreakerState.HALF_OPEN, f"{reason}; probing")

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
        event = Transition(self.name, previous, new, reason, self.shard)
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # a listener never breaks the breaker
                pass


#: How bad a state is, for the aggregate of several breakers (the worst one wins).
_SEVERITY = {
    BreakerState.DISABLED: 0,
    BreakerState.CLOSED: 1,
    BreakerState.HALF_OPEN: 2,
    BreakerState.OPEN: 3,
    BreakerState.FORCED_OPEN: 4,
}


class ShardedBreaker:
    """The circuit breakers of one cache: a default one, and one per shard, made on first use.

    The caller asks :meth:`of` for the breaker of the shard a key is on (None: the default,
    which is all a cache of one shard ever uses) and runs the call protocol on it. A cache
    of one shard sees exactly what one :class:`CircuitBreaker` would show: the same state,
    summary and transitions.

    ``serving``: the shards currently serving keys (a Redis Cluster's masters), asked when
    a new shard appears and by the aggregate. A breaker of a shard that stopped serving (a
    master replaced by its replica) counts for nothing, and is dropped when the next new
    shard appears; a shard that serves again later gets a fresh breaker. When the serving
    shards changed, the open breakers of the others probe at their next call
    (:meth:`CircuitBreaker.end_wait`).

    The aggregate: :attr:`state` is the worst state among the default breaker and the
    breakers of serving shards (DISABLED < CLOSED < HALF_OPEN < OPEN < FORCED_OPEN), so
    OPEN means that *some* keys bypass the cache; :meth:`summary` adds each shard's own
    summary and which shards reject calls. :meth:`force_open`, :meth:`disable` and
    :meth:`reset` apply to every breaker, including those made later.
    """

    def __init__(
        self,
        name: str = "cache",
        settings: BreakerSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        serving: Callable[[], Collection[str]] | None = None,
    ) -> None:
        self.name = name
        self.settings = settings or BreakerSettings()
        self._clock = clock
        self._serving = serving
        #: Told of every transition of every breaker of the group.
        self.listeners: list[Callable[[Transition], Any]] = []
        self._pinned: BreakerState | None = None
        self._shards: dict[str, CircuitBreaker] = {}
        #: The serving shards when the last new shard was seen (None: none seen yet).
        self._topology: frozenset[str] | None = None
        #: Counts of the breakers dropped so far (the sums never go back).
        self._retired_not_permitted = 0
        self._retired_transitions = 0
        self.default = self._make(None)

    # -- routing --------------------------------------------------------------------------------
    def of(self, shard: str | None) -> CircuitBreaker:
        """The breaker of ``shard`` (made now if new); the default one for None."""
        if shard is None:
            return self.default
        breaker = self._shards.get(shard)
        if breaker is None:
            breaker = self._added(shard)
        return breaker

    def _added(self, shard: str) -> CircuitBreaker:
        """A shard seen for the first time. If the serving shards changed since the last one
        (a failover, a resharding), forget the shards that no longer serve keys, and let the
        open breakers of the others probe at their next call: they may have opened on what
        the change ended (a cluster refuses every key between the failure of a master and
        its replacement, unless ``cluster-require-full-coverage`` is ``no``)."""
        serving = self._serving_now()
        if serving is not None:
            now = frozenset(serving)
            if self._topology is not None and now != self._topology:
                for gone in [name for name in self._shards if name not in now]:
                    retired = self._shards.pop(gone)
                    self._retired_not_permitted += retired.not_permitted
                    self._retired_transitions += retired.transitions
                for breaker in [self.default, *self._shards.values()]:
                    # probing again and again for as long as it would have waited anyway
                    breaker.end_wait(settle_s=breaker.settings.wait_s)
            self._topology = now
        breaker = self._shards[shard] = self._make(shard)
        return breaker

    def _make(self, shard: str | None) -> CircuitBreaker:
        name = self.name if shard is None else f"{self.name}@{shard}"
        breaker = CircuitBreaker(name, self.settings, clock=self._clock, shard=shard)
        if self._pinned is BreakerState.FORCED_OPEN:
            breaker.force_open()  # before the listener: no transition for a breaker being made
        elif self._pinned is BreakerState.DISABLED:
            breaker.disable()
        breaker.listeners.append(self._forward)
        return breaker

    def _forward(self, transition: Transition) -> None:
        for listener in list(self.listeners):
            try:
                listener(transition)
            except Exception:  # a listener never breaks the breaker
                pass

    def _serving_now(self) -> Collection[str] | None:
        if self._serving is None:
            return None
        try:
            return self._serving()
        except Exception:  # what the client knows is unavailable: keep every breaker
            return None

    @property
    def shards(self) -> dict[str, CircuitBreaker]:
        """The breakers of the shards that serve keys now, by shard."""
        serving = self._serving_now()
        if serving is None:
            return dict(self._shards)
        return {name: b for name, b in self._shards.items() if name in serving}

    def breakers(self) -> list[CircuitBreaker]:
        """The default breaker, then those of the serving shards."""
        return [self.default, *self.shards.values()]

    # -- the aggregate ------------------------------------------------------------------------------
    @property
    def state(self) -> BreakerState:
        """The worst state of :meth:`breakers` (a cache of one shard: its breaker's state)."""
        if not self._shards:
            return self.default.state
        return max((b.state for b in self.breakers()), key=_SEVERITY.__getitem__)

    @property
    def allows_calls(self) -> bool:
        """True unless some breaker of :meth:`breakers` would reject a call now."""
        return all(b.allows_calls for b in self.breakers())

    @property
    def failure_rate(self) -> float | None:
        """The highest failure rate of :meth:`breakers` (None while none has enough calls)."""
        return _highest(b.failure_rate for b in self.breakers())

    @property
    def slow_call_rate(self) -> float | None:
        return _highest(b.slow_call_rate for b in self.breakers())

    @property
    def not_permitted(self) -> int:
        """Calls rejected by every breaker of the group so far (dropped ones included)."""
        every = [self.default, *self._shards.values()]
        return self._retired_not_permitted + sum(b.not_permitted for b in every)

    @property
    def transitions(self) -> int:
        """Transitions of every breaker of the group so far (dropped ones included)."""
        every = [self.default, *self._shards.values()]
        return self._retired_transitions + sum(b.transitions for b in every)

    # -- manual control --------------------------------------------------------------------------
    def force_open(self) -> None:
        self._pinned = BreakerState.FORCED_OPEN
        for breaker in [self.default, *self._shards.values()]:
            breaker.force_open()

    def disable(self) -> None:
        self._pinned = BreakerState.DISABLED
        for breaker in [self.default, *self._shards.values()]:
            breaker.disable()

    def reset(self) -> None:
        self._pinned = None
        for breaker in [self.default, *self._shards.values()]:
            breaker.reset()

    def summary(self) -> dict[str, Any]:
        """The default breaker's summary for a cache of one shard; with shards, the aggregate
        (state, highest rates, summed counts) with ``shards`` (each serving shard's summary)
        and ``rejecting`` (the shards that reject calls now)."""
        if not self._shards:
            return self.default.summary()
        breakers = self.breakers()
        shards = self.shards
        return {
            "state": self.state.value,
            "failure_rate": self.failure_rate,
            "slow_call_rate": self.slow_call_rate,
            "calls_in_window": sum(len(b._window) for b in breakers),
            "not_permitted": self.not_permitted,
            "transitions": self.transitions,
            "open_wait_s": max(b._wait for b in breakers),
            "shards": {name: b.summary() for name, b in sorted(shards.items())},
            "rejecting": sorted(name for name, b in shards.items() if not b.allows_calls),
        }


def _highest(rates: Iterable[float | None]) -> float | None:
    known = [rate for rate in rates if rate is not None]
    return max(known) if known else None
