"""The circuit breaker's state machine, on a fake monotonic clock."""

from __future__ import annotations

import pytest

from qts_data.cache.breaker import (
    SETTLING_RETRY_S,
    BreakerSettings,
    BreakerState,
    CircuitBreaker,
    Transition,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


#: Small numbers for the tests of the mechanism: judged after 5 calls, 30 s open.
SMALL = {"window_size": 10, "minimum_calls": 5, "wait_s": 30.0, "slow_call_rate_threshold": 1.0}


def small(clock: Clock, **settings: float) -> tuple[CircuitBreaker, list[Transition]]:
    return make(clock, **{**SMALL, **settings})


def make(clock: Clock, **settings: float) -> tuple[CircuitBreaker, list[Transition]]:
    breaker = CircuitBreaker("test", BreakerSettings(**settings), clock=clock)  # type: ignore[arg-type]
    seen: list[Transition] = []
    breaker.listeners.append(seen.append)
    return breaker, seen


def fail(breaker: CircuitBreaker, n: int = 1, duration: float = 0.0) -> None:
    for _ in range(n):
        assert breaker.try_acquire()
        breaker.on_failure(duration)


def succeed(breaker: CircuitBreaker, n: int = 1, duration: float = 0.0) -> None:
    for _ in range(n):
        assert breaker.try_acquire()
        breaker.on_success(duration)


def test_the_defaults_open_on_twenty_failures_and_wait_five_seconds(clock: Clock) -> None:
    breaker, seen = make(clock)
    fail(breaker, 19)
    assert breaker.state is BreakerState.CLOSED  # fewer than minimum_calls: not judged
    fail(breaker)
    assert breaker.state is BreakerState.OPEN
    assert [t.current for t in seen] == [BreakerState.OPEN]
    assert "failure rate 20/20" in seen[0].reason
    assert "5 s" in seen[0].reason


def test_the_defaults_open_on_slow_calls_only_when_nearly_all_are_slow(clock: Clock) -> None:
    breaker, _ = make(clock)
    succeed(breaker, 6, duration=0.001)
    succeed(breaker, 44, duration=0.5)  # 44/50 slow: 88 %, below 90 %
    assert breaker.state is BreakerState.CLOSED
    succeed(breaker, 1, duration=0.5)  # the oldest fast call leaves the window: 45/50
    assert breaker.state is BreakerState.OPEN
    budget_misses = 0.006  # a caller's budget (5 ms) is far below a slow call (80 ms)
    breaker2, _ = make(clock)
    succeed(breaker2, 200, duration=budget_misses)
    assert breaker2.state is BreakerState.CLOSED


def test_failure_rate_over_a_sliding_window(clock: Clock) -> None:
    breaker, _ = make(clock, window_size=10, minimum_calls=5, failure_rate_threshold=0.5)
    for _ in range(10):  # alternating: 50 % in the window only once it is judged...
        succeed(breaker)
    fail(breaker, 4)  # window: 6 ok + 4 failures = 40 %
    assert breaker.state is BreakerState.CLOSED
    fail(breaker)  # 5 ok + 5 failures = 50 %
    assert breaker.state is BreakerState.OPEN


def test_old_outcomes_leave_the_window(clock: Clock) -> None:
    breaker, _ = make(clock, window_size=5, minimum_calls=5, failure_rate_threshold=0.8)
    fail(breaker, 3)
    succeed(breaker, 2)  # 3/5
    succeed(breaker, 3)  # the three failures slide out: 0/5
    fail(breaker, 3)  # 3/5 again, below 0.8
    assert breaker.state is BreakerState.CLOSED
    assert breaker.failure_rate == pytest.approx(0.6)


def test_slow_calls_open_the_breaker(clock: Clock) -> None:
    breaker, seen = small(clock, slow_call_duration_s=0.01, slow_call_rate_threshold=0.6)
    succeed(breaker, 2, duration=0.001)
    succeed(breaker, 3, duration=0.05)  # 3/5 slow
    assert breaker.state is BreakerState.OPEN
    assert "slow-call rate 3/5" in seen[-1].reason


def test_open_rejects_until_the_wait_is_over_then_probes(clock: Clock) -> None:
    breaker, _seen = small(clock)
    fail(breaker, 5)
    assert not breaker.try_acquire()
    clock.now += 29.9
    assert not breaker.try_acquire()
    assert breaker.not_permitted == 2
    clock.now += 0.2
    assert breaker.try_acquire()
    assert breaker.state is BreakerState.HALF_OPEN


def test_half_open_bounds_the_number_of_probes(clock: Clock) -> None:
    breaker, _ = small(clock, half_open_calls=3)
    fail(breaker, 5)
    clock.now += 31
    assert [breaker.try_acquire() for _ in range(5)] == [True, True, True, False, False]


def test_successful_probes_close_and_reset_the_wait(clock: Clock) -> None:
    breaker, seen = small(clock)
    fail(breaker, 5)
    clock.now += 31
    succeed(breaker, 3)
    assert breaker.state is BreakerState.CLOSED
    assert [t.current for t in seen] == [
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.CLOSED,
    ]
    assert breaker.summary()["open_wait_s"] == 30


def test_failed_probes_reopen_with_a_longer_wait_up_to_the_maximum(clock: Clock) -> None:
    breaker, _seen = small(clock)
    fail(breaker, 5)
    waits = []
    for _ in range(3):
        clock.now += 100
        fail(breaker, 3)
        waits.append(breaker.summary()["open_wait_s"])
    assert waits == [60, 60, 60]  # 30 -> 60 (capped)
    breaker2, _ = small(clock, wait_s=30, max_wait_s=60, wait_multiplier=1.5)
    fail(breaker2, 5)
    clock.now += 100
    fail(breaker2, 3)
    assert breaker2.summary()["open_wait_s"] == 45


def test_half_open_that_does_not_finish_in_time_reopens(clock: Clock) -> None:
    breaker, seen = small(clock, max_half_open_s=5)
    fail(breaker, 5)
    clock.now += 31
    assert breaker.try_acquire()  # a probe that never reports back
    clock.now += 6
    assert not breaker.try_acquire()
    assert breaker.state is BreakerState.OPEN
    assert "did not finish in time" in seen[-1].reason


def test_release_returns_an_unused_probe(clock: Clock) -> None:
    breaker, _ = small(clock, half_open_calls=1)
    fail(breaker, 5)
    clock.now += 31
    assert breaker.try_acquire()
    breaker.release()
    assert breaker.try_acquire()


def test_forced_open_and_disabled_states(clock: Clock) -> None:
    breaker, seen = small(clock)
    breaker.force_open()
    clock.now += 1000
    assert not breaker.try_acquire()
    breaker.disable()
    fail(breaker, 50)
    assert breaker.state is BreakerState.DISABLED
    assert breaker.try_acquire()
    breaker.reset()
    assert breaker.state is BreakerState.CLOSED
    assert [t.current for t in seen] == [
        BreakerState.FORCED_OPEN,
        BreakerState.DISABLED,
        BreakerState.CLOSED,
    ]


def test_a_failing_listener_does_not_break_the_breaker(clock: Clock) -> None:
    breaker, seen = small(clock)

    def boom(_: Transition) -> None:
        raise RuntimeError("listener bug")

    breaker.listeners.insert(0, boom)
    fail(breaker, 5)
    assert breaker.state is BreakerState.OPEN
    assert len(seen) == 1


def test_inconsistent_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="minimum_calls cannot exceed window_size"):
        BreakerSettings(window_size=3, minimum_calls=5)
    with pytest.raises(ValueError, match="max_wait_s cannot be below wait_s"):
        BreakerSettings(wait_s=60, max_wait_s=30)


def test_end_wait_lets_probes_through_at_once_and_retries_them_while_settling(
    clock: Clock,
) -> None:
    breaker, seen = small(clock, half_open_calls=1)
    fail(breaker, 5)
    assert breaker.state is BreakerState.OPEN and not breaker.try_acquire()
    breaker.end_wait("the shards were rearranged", settle_s=30)
    assert breaker.try_acquire()  # the probe, 29 s early
    assert seen[-1].reason == "the shards were rearranged; probing"
    breaker.on_failure()  # still refused (the change has not reached that server yet)
    assert breaker.state is BreakerState.OPEN and breaker.summary()["open_wait_s"] == 30
    assert "probing again in 0.25 s" in seen[-1].reason
    assert not breaker.try_acquire()
    clock.now += SETTLING_RETRY_S
    assert breaker.try_acquire()
    breaker.on_success()
    assert breaker.state is BreakerState.CLOSED


def test_probes_failing_after_the_settling_time_reopen_for_longer(clock: Clock) -> None:
    breaker, _ = small(clock, half_open_calls=1)
    fail(breaker, 5)
    breaker.end_wait(settle_s=1.0)
    clock.now += 2.0
    fail(breaker)  # the probe
    assert breaker.state is BreakerState.OPEN and breaker.summary()["open_wait_s"] == 60


def test_end_wait_leaves_closed_forced_and_disabled_breakers_alone(clock: Clock) -> None:
    breaker, seen = small(clock)
    breaker.end_wait()
    assert breaker.state is BreakerState.CLOSED and seen == []
    breaker.force_open()
    breaker.end_wait()
    assert not breaker.try_acquire()
    breaker.disable()
    breaker.end_wait()
    assert breaker.state is BreakerState.DISABLED
