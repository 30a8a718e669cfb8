"""Degradation levels: entered and left by queue pressure (with hysteresis) and by LOCKDOWN."""

from __future__ import annotations

import asyncio

from event_helpers import RecordingSink, assert_accounted, ev, fast_settings

from qts_data.contracts import Priority, SafetyState
from qts_data.events import (
    LEVEL_CHANGED,
    Degradation,
    DegradationLevel,
    EventDispatcher,
    LevelChange,
)
from qts_data.safety import SafetyController
from qts_data_memory.sink import MemoryEventSink

L = DegradationLevel


def test_levels_say_which_priorities_are_delivered() -> None:
    assert [p for p in Priority if L.NORMAL.delivers(p)] == list(Priority)
    assert [p for p in Priority if L.P3_PAUSED.delivers(p)] == [
        Priority.P0,
        Priority.P1,
        Priority.P2,
    ]
    assert [p for p in Priority if L.P2_P3_PAUSED.delivers(p)] == [Priority.P0, Priority.P1]
    assert [p for p in Priority if L.CRITICAL_ONLY.delivers(p)] == [Priority.P0]


def _controller() -> tuple[Degradation, list[int], list[LevelChange]]:
    depths = [0, 0, 0, 0]
    degradation = Degradation(
        [100, 10_000, 1_000, 50_000], lambda p: depths[p], enter=0.8, leave=0.5
    )
    seen: list[LevelChange] = []
    degradation.listeners.append(seen.append)
    return degradation, depths, seen


def test_pressure_enters_at_80_percent_and_leaves_at_50_percent() -> None:
    degradation, depths, seen = _controller()
    assert degradation.enter_at == [80, 8_000, 800]
    assert degradation.leave_at == [50, 5_000, 500]
    depths[2] = 800
    degradation.pressure(2)
    assert degradation.level is L.P3_PAUSED
    for depth in (700, 600, 501):  # below enter, above leave: no flapping
        depths[2] = depth
        degradation.relief(2)
        assert degradation.level is L.P3_PAUSED
    depths[2] = 500
    degradation.relief(2)
    assert degradation.level is L.NORMAL
    assert [(c.previous, c.current) for c in seen] == [
        (L.NORMAL, L.P3_PAUSED),
        (L.P3_PAUSED, L.NORMAL),
    ]


def test_the_most_urgent_pressure_sets_the_level() -> None:
    degradation, depths, seen = _controller()
    depths[:3] = [0, 8_000, 800]
    degradation.pressure(2)
    degradation.pressure(1)
    assert degradation.level is L.P2_P3_PAUSED
    depths[0] = 80
    degradation.pressure(0)
    assert degradation.level is L.CRITICAL_ONLY
    depths[0] = 10
    degradation.relief(0)
    assert degradation.level is L.P2_P3_PAUSED
    depths[1] = 0
    degradation.relief(1)
    assert degradation.level is L.P3_PAUSED
    assert [c.current for c in seen] == [
        L.P3_PAUSED, L.P2_P3_PAUSED, L.CRITICAL_ONLY, L.P2_P3_PAUSED, L.P3_PAUSED,
    ]  # fmt: skip


def test_lockdown_forces_critical_only_and_leaving_it_restores_the_pressure_level() -> None:
    degradation, depths, seen = _controller()
    degradation.set_safety_state(SafetyState.LOCKDOWN)
    assert degradation.level is L.CRITICAL_ONLY
    depths[2] = 900
    degradation.pressure(2)
    assert degradation.level is L.CRITICAL_ONLY
    degradation.set_safety_state(SafetyState.FAIL)
    assert degradation.level is L.P3_PAUSED
    assert [c.reason for c in seen] == ["safety LOCKDOWN", "safety FAIL"]


def test_a_listener_that_changes_the_level_is_told_in_order() -> None:
    degradation, depths, seen = _controller()

    def escalate(change: LevelChange) -> None:
        if change.current is L.P3_PAUSED:
            depths[1] = 9_000
            degradation.pressure(1)

    degradation.listeners.insert(0, escalate)
    depths[2] = 800
    degradation.pressure(2)
    assert [c.current for c in seen] == [L.P3_PAUSED, L.P2_P3_PAUSED]


async def test_lockdown_delivers_only_p0_until_normal_then_everything() -> None:
    sink = RecordingSink()
    dispatcher = EventDispatcher([sink], fast_settings())
    await dispatcher.start()
    dispatcher.set_safety_state(SafetyState.LOCKDOWN)
    assert dispatcher.level is L.CRITICAL_ONLY
    for n in range(40):
        await dispatcher.publish(ev(Priority(n % 4), n))
    await asyncio.sleep(0.05)
    assert {e.priority for e in sink.events} == {Priority.P0}
    assert len(sink.events) == 10
    dispatcher.set_safety_state(SafetyState.NORMAL)
    assert await dispatcher.drain(1)
    await dispatcher.stop()
    tests = [e for e in sink.events if e.type == "test"]
    assert len(tests) == 40
    changes = [
        (e.payload["previous"], e.payload["current"])
        for e in sink.events
        if e.type == LEVEL_CHANGED
    ]
    assert changes == [("NORMAL", "CRITICAL_ONLY"), ("CRITICAL_ONLY", "NORMAL")]


async def test_p1_pressure_pauses_p2_and_p3_but_not_p0() -> None:
    sink = RecordingSink()
    sink.gate(Priority.P1)  # the sink cannot keep up with P1
    dispatcher = EventDispatcher([sink], fast_settings(p1_capacity=100))
    seen: list[LevelChange] = []
    dispatcher.level_listeners.append(seen.append)
    await dispatcher.start()
    dispatcher.publish_nowait(ev(Priority.P1, -1))
    await asyncio.sleep(0.01)  # the P1 lane is now stuck on event -1
    for n in range(81):
        dispatcher.publish_nowait(ev(Priority.P1, n))
    assert dispatcher.level is L.P2_P3_PAUSED
    dispatcher.publish_nowait(ev(Priority.P2, 100))
    dispatcher.publish_nowait(ev(Priority.P3, 101))
    await dispatcher.publish(ev(Priority.P0, 102))
    await asyncio.sleep(0.05)
    assert [e.payload["n"] for e in sink.events] == [102]  # P0 passes, P2/P3 wait
    sink.release(Priority.P1)
    assert await dispatcher.drain(1)
    assert dispatcher.level is L.NORMAL
    assert [(c.previous, c.current) for c in seen] == [
        (L.NORMAL, L.P2_P3_PAUSED),
        (L.P2_P3_PAUSED, L.NORMAL),
    ]
    assert {e.payload.get("n") for e in sink.events} >= {100, 101, 102}
    await dispatcher.stop()
    assert_accounted(dispatcher)


async def test_one_sinks_pressure_never_pauses_another_sink() -> None:
    stuck, fast = RecordingSink("stuck"), RecordingSink("fast")
    stuck.gate(Priority.P2)
    dispatcher = EventDispatcher([stuck, fast], fast_settings(emit_level_changes=False))
    await dispatcher.start()
    dispatcher.publish_nowait(ev(Priority.P2, -1))
    await asyncio.sleep(0.01)
    for n in range(900):
        dispatcher.publish_nowait(ev(Priority.P2, n))
        if n % 100 == 0:
            await asyncio.sleep(0.001)  # the fast sink keeps up
    assert dispatcher.levels() == {"stuck": L.P3_PAUSED, "fast": L.NORMAL}
    assert dispatcher.level is L.P3_PAUSED  # the worst sink's
    dispatcher.publish_nowait(ev(Priority.P3, 1_000))
    await asyncio.sleep(0.05)
    assert fast.of(Priority.P3) and not stuck.of(Priority.P3)
    stuck.release(Priority.P2)
    assert await dispatcher.drain(1)
    assert dispatcher.levels() == {"stuck": L.NORMAL, "fast": L.NORMAL}
    assert [e.payload["n"] for e in stuck.of(Priority.P3)] == [1_000]
    await dispatcher.stop()


async def test_p0_pressure_gives_critical_only() -> None:
    sink = RecordingSink()
    sink.gate(Priority.P0)
    dispatcher = EventDispatcher([sink], fast_settings(p0_capacity=10))
    await dispatcher.start()
    await dispatcher.publish(ev(Priority.P0, -1))
    await asyncio.sleep(0.01)
    for n in range(8):
        await dispatcher.publish(ev(Priority.P0, n))
    assert dispatcher.level is L.CRITICAL_ONLY
    dispatcher.publish_nowait(ev(Priority.P1, 100))
    await asyncio.sleep(0.02)
    assert sink.of(Priority.P1) == []
    sink.release(Priority.P0)
    assert await dispatcher.drain(1)
    assert dispatcher.level is L.NORMAL
    assert [e.payload["n"] for e in sink.of(Priority.P0)] == list(range(-1, 8))
    await dispatcher.stop()


async def test_the_safety_controller_drives_the_level() -> None:
    sink = MemoryEventSink()
    dispatcher = EventDispatcher([sink], fast_settings())
    safety = SafetyController(
        events=dispatcher,  # type: ignore[arg-type]  # the lead retypes it when wiring
        internal=[dispatcher.on_safety_change],
    )
    async with dispatcher:
        await safety.set_state(SafetyState.LOCKDOWN, "drill")
        assert dispatcher.level is L.CRITICAL_ONLY
        dispatcher.emit_nowait(Priority.P3, "cache.hit")
        await sink.wait_for(lambda e: e.type == "safety.changed", timeout=1)
        await safety.set_state(SafetyState.NORMAL, "all clear")
        assert dispatcher.level is L.NORMAL
        assert await dispatcher.drain(1)
    changes = [(e.priority, e.payload["current"]) for e in sink.of_type("safety.changed")]
    assert changes == [(Priority.P0, "LOCKDOWN"), (Priority.P1, "NORMAL")]
    assert len(sink.of_type("cache.hit")) == 1
