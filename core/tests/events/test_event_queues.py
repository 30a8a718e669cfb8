"""The four overflow policies, queue by queue, with exact counters."""

from __future__ import annotations

import pytest
from event_helpers import ev
from pydantic import ValidationError

from qts_data.contracts import Priority
from qts_data.events import (
    BlockingQueue,
    CollapsingQueue,
    EventQueueFull,
    EventSettings,
    OverflowPolicy,
    RingQueue,
    SamplingQueue,
)
from qts_data.events.queues import make_queue


def test_default_queues_follow_the_seed() -> None:
    settings = EventSettings()
    queues = [make_queue(p, settings.capacity(p)) for p in Priority]
    assert [(q.policy, q.capacity) for q in queues] == [
        (OverflowPolicy.BLOCK, 100),
        (OverflowPolicy.DROP_OLDEST, 10_000),
        (OverflowPolicy.COLLAPSE, 1_000),
        (OverflowPolicy.SAMPLE, 50_000),
    ]


def test_p0_queue_refuses_when_full_and_drops_nothing() -> None:
    queue = BlockingQueue(capacity=100)
    for n in range(100):
        queue.put(ev(Priority.P0, n))
    with pytest.raises(EventQueueFull, match=r"P0 queue is full \(100 events\).*await publish"):
        queue.put(ev(Priority.P0, 100))
    assert [e.payload["n"] for e in queue.peek()] == list(range(100))
    assert (queue.published, queue.dropped) == (100, 0)


def test_p1_ring_drops_the_oldest_and_keeps_the_newest() -> None:
    queue = RingQueue(capacity=10_000)
    events = [ev(Priority.P1, n) for n in range(25_000)]
    for event in events:
        queue.put(event)
    assert queue.dropped == 15_000
    assert queue.peek() == events[15_000:]
    assert queue.published == 25_000


def test_p2_collapses_same_key_to_the_latest_in_the_first_place() -> None:
    queue = CollapsingQueue(capacity=1_000)
    for n, key in enumerate(["a", "b", "a", "c", "a", "b"]):
        queue.put(ev(Priority.P2, n, key=key))
    assert queue.collapsed == 3
    assert [(e.key, e.payload["n"]) for e in queue.peek()] == [("a", 4), ("b", 5), ("c", 3)]


def test_p2_never_collapses_events_without_a_key() -> None:
    queue = CollapsingQueue(capacity=1_000)
    for n in range(10):
        queue.put(ev(Priority.P2, n))
    assert (len(queue), queue.collapsed) == (10, 0)


def test_p2_full_drops_the_oldest() -> None:
    queue = CollapsingQueue(capacity=1_000)
    for n in range(1_500):
        queue.put(ev(Priority.P2, n, key=f"k{n}"))
    assert (len(queue), queue.dropped, queue.collapsed) == (1_000, 500, 0)
    assert [e.payload["n"] for e in queue.peek()] == list(range(500, 1_500))
    # a key already pending still collapses when the queue is full: nothing dropped
    queue.put(ev(Priority.P2, 9_999, key="k700"))
    assert (len(queue), queue.dropped, queue.collapsed) == (1_000, 500, 1)


def test_p2_take_returns_first_arrivals_in_order() -> None:
    queue = CollapsingQueue(capacity=10)
    for n, key in enumerate(["x", "y", "x", None, "z"]):
        queue.put(ev(Priority.P2, n, key=key))
    batch = queue.take(3)
    assert [e.payload["n"] for e in batch] == [2, 1, 3]
    assert (len(queue), queue.in_flight) == (1, 3)
    queue.put(ev(Priority.P2, 5, key="x"))  # "x" is in flight: a new entry, not a collapse
    assert (len(queue), queue.collapsed) == (2, 1)


def test_p3_keeps_one_in_n_above_the_high_water_mark_and_stays_bounded() -> None:
    queue = SamplingQueue(capacity=50_000, sample_from=40_000, keep_one_in=10)
    for n in range(40_000):
        queue.put(ev(Priority.P3, n))
    assert (len(queue), queue.sampled) == (40_000, 0)
    for n in range(10_000):
        queue.put(ev(Priority.P3, n))
    assert (len(queue), queue.sampled) == (41_000, 9_000)
    flood = ev(Priority.P3, -1)
    for _ in range(1_000_000):
        queue.put(flood)
    assert len(queue) == 50_000
    assert queue.published == 1_050_000
    assert queue.published == len(queue) + queue.sampled + queue.dropped
    assert queue.dropped == 100_000 - 9_000  # kept ones beyond the capacity replaced the oldest


def test_settle_and_abandon_keep_the_invariant() -> None:
    queue = RingQueue(capacity=100)
    for n in range(150):
        queue.put(ev(Priority.P1, n))
    first = queue.take(30)
    queue.settle(len(first), delivered=True)
    second = queue.take(20)
    queue.settle(len(second), delivered=False)
    queue.take(10)
    assert queue.abandon() == 50  # 40 queued + 10 in flight
    c = queue.counters()
    assert (c["delivered"], c["given_up"], c["dropped"], c["abandoned"]) == (30, 20, 50, 50)
    assert c["published"] == 150 == c["delivered"] + c["given_up"] + c["dropped"] + c["abandoned"]
    assert (c["depth"], c["in_flight"]) == (0, 0)


def test_settings_reject_a_leave_threshold_above_enter() -> None:
    with pytest.raises(ValidationError, match=r"degrade_leave \(0.9\) must be below degrade_enter"):
        EventSettings(degrade_enter=0.8, degrade_leave=0.9)
    with pytest.raises(ValidationError, match="p0_capacity"):
        EventSettings(p0_capacity=0)
