"""The conformance suite of :class:`~qts_data.outbox.Outbox`.

Subclass :class:`OutboxConformance` in a test module, give it a ``make_outbox``
fixture that creates outboxes of a given owner over one storage::

    import pytest
    from qts_data.outbox import SqliteOutbox
    from qts_data.testing import OutboxConformance

    class TestMyOutbox(OutboxConformance):
        @pytest.fixture
        def make_outbox(self, tmp_path):
            # a NEW, unopened outbox; every one made in a test shares the same
            # storage, which is empty when the test starts
            return lambda owner: SqliteOutbox(tmp_path / "outbox.db", owner)

A second outbox made by the callable must see what the first stored: that is
how the suite checks that records survive a restart of their process and that
the intents of another (dead) owner are found. The suite opens one outbox at a
time and closes it before making the next. Payloads are opaque strings to an
outbox; the suite stores arbitrary text, not only contracts' JSON.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import pytest
import pytest_asyncio

from qts_data.outbox.record import INTENT, READY, Outbox, OutboxRecord

__all__ = ["OutboxConformance"]

#: How far ``created_us`` may be from this machine's clock (the storage's clock may differ).
CLOCK_SLACK_US = 5_000_000

OWNER = "owner-a"
OTHER = "owner-b"
KOREAN = '삼성전자 매수 주문 — 체결가 ₩71,500 · ü ß 😀 "quoted" \\ \n\t'


def now_us() -> int:
    return time.time_ns() // 1000


async def make(factory: Callable[[str], Any], owner: str) -> Outbox:
    """Call the author's factory (sync, or returning an awaitable) and check what it made."""
    if not callable(factory):
        raise TypeError(
            "the fixture 'make_outbox' must return a callable `(owner: str) -> Outbox` that "
            f"creates an unopened outbox, got {type(factory).__name__}"
        )
    made = factory(owner)
    if inspect.isawaitable(made):
        made = await made
    if not isinstance(made, Outbox):
        raise TypeError(
            "the callable returned by the fixture 'make_outbox' must create an Outbox, "
            f"got {type(made).__name__}"
        )
    return made


class Outboxes:
    """Opens outboxes over the test's storage; closes those still open after the test."""

    def __init__(self, factory: Callable[[str], Any]) -> None:
        self.factory = factory
        self.opened: list[Outbox] = []

    async def open(self, owner: str = OWNER) -> Outbox:
        outbox = await make(self.factory, owner)
        await outbox.open()
        self.opened.append(outbox)
        return outbox

    async def close(self, outbox: Outbox) -> None:
        self.opened.remove(outbox)
        await outbox.close()

    async def restart(self, outbox: Outbox, owner: str) -> Outbox:
        """Close ``outbox`` and open a new one of ``owner`` over the same storage."""
        await self.close(outbox)
        return await self.open(owner)

    async def close_all(self) -> None:
        while self.opened:
            await self.opened.pop().close()


def ids(records: list[OutboxRecord]) -> list[int]:
    return [r.id for r in records]


class OutboxConformance:
    """Conformance tests of an :class:`~qts_data.outbox.Outbox`.

    Provide in the subclass:

    * ``make_outbox`` (fixture, required): returns a callable ``(owner: str)``
      that creates a new, unopened outbox of that owner (it may return an
      awaitable of the outbox). All outboxes it creates during one test share
      one storage, empty when the test starts. The suite opens and closes them.
    """

    pytestmark: ClassVar[Any] = pytest.mark.asyncio

    @pytest_asyncio.fixture(loop_scope="function")
    async def outboxes(self, make_outbox: Callable[[str], Any]) -> AsyncIterator[Outboxes]:
        """Opens outboxes over the test's storage; closes them after the test."""
        made = Outboxes(make_outbox)
        try:
            yield made
        finally:
            await made.close_all()

    @pytest_asyncio.fixture(loop_scope="function")
    async def outbox(self, outboxes: Outboxes) -> Outbox:
        """An open outbox of ``owner-a`` over empty storage."""
        return await outboxes.open(OWNER)

    # -- add / peek ---------------------------------------------------------------------------

    async def test_add_returns_increasing_ids(self, outbox: Outbox) -> None:
        got = [await outbox.add("ledger", f"o{i}", f"p{i}") for i in range(20)]
        assert all(isinstance(i, int) for i in got)
        assert got == sorted(got) and len(set(got)) == len(got), got
        got += [await outbox.add("position", f"s{i}", "{}", state=READY) for i in range(5)]
        assert got == sorted(got) and len(set(got)) == len(got), got

    async def test_add_defaults_to_the_intent_state(self, outbox: Outbox) -> None:
        record_id = await outbox.add("ledger", "o1", "p")
        assert await outbox.peek(10) == []
        [record] = await outbox.peek(10, states=(INTENT,))
        assert (record.id, record.state) == (record_id, INTENT)

    async def test_peek_of_an_empty_outbox_returns_nothing(self, outbox: Outbox) -> None:
        assert await outbox.peek(10) == []
        assert await outbox.peek(10, states=(INTENT, READY)) == []

    async def test_peek_returns_ready_records_oldest_first_by_default(self, outbox: Outbox) -> None:
        ready: list[int] = []
        intent: list[int] = []
        for i in range(10):
            state = READY if i % 3 else INTENT
            record_id = await outbox.add("ledger", f"o{i}", f"p{i}", state=state)
            (ready if state == READY else intent).append(record_id)
        got = await outbox.peek(100)
        assert ids(got) == ready
        assert {r.state for r in got} == {READY}
        assert [r.key for r in got] == [f"o{i}" for i in range(10) if i % 3]

    async def test_peek_honours_states(self, outbox: Outbox) -> None:
        every = [
            await outbox.add("position", f"s{i}", f"p{i}", state=READY if i % 2 else INTENT)
            for i in range(8)
        ]
        intents = await outbox.peek(100, states=(INTENT,))
        assert ids(intents) == every[0::2]
        assert {r.state for r in intents} == {INTENT}
        readies = await outbox.peek(100, states=[READY])
        assert ids(readies) == every[1::2]
        both = await outbox.peek(100, states=(INTENT, READY))
        assert ids(both) == every
        assert [r.state for r in both] == [INTENT, READY] * 4
        assert ids(await outbox.peek(100, states=(READY, INTENT))) == every

    async def test_peek_honours_limit(self, outbox: Outbox) -> None:
        every = [await outbox.add("ledger", f"o{i}", "p", state=READY) for i in range(10)]
        assert ids(await outbox.peek(1)) == every[:1]
        assert ids(await outbox.peek(3)) == every[:3]
        assert ids(await outbox.peek(10)) == every
        assert ids(await outbox.peek(1000)) == every
        intent = await outbox.add("ledger", "late", "p")
        assert ids(await outbox.peek(4, states=(INTENT, READY))) == every[:4]
        assert ids(await outbox.peek(100, states=(INTENT, READY))) == [*every, intent]

    async def test_peek_does_not_remove(self, outbox: Outbox) -> None:
        every = [await outbox.add("ledger", f"o{i}", "p", state=READY) for i in range(3)]
        assert ids(await outbox.peek(10)) == every
        assert ids(await outbox.peek(10)) == every
        assert (await outbox.depth())[0] == 3

    # -- state changes ------------------------------------------------------------------------

    async def test_mark_ready_moves_an_intent_to_ready(self, outbox: Outbox) -> None:
        first = await outbox.add("ledger", "o1", "p1")
        second = await outbox.add("ledger", "o2", "p2")
        third = await outbox.add("ledger", "o3", "p3", state=READY)
        await outbox.mark_ready(second)
        assert ids(await outbox.peek(10)) == [second, third]  # keeps its place (id order)
        assert ids(await outbox.peek(10, states=(INTENT,))) == [first]
        [record] = [r for r in await outbox.peek(10) if r.id == second]
        assert (record.state, record.key, record.payload) == (READY, "o2", "p2")
        await outbox.mark_ready(first)
        assert ids(await outbox.peek(10)) == [first, second, third]
        assert await outbox.peek(10, states=(INTENT,)) == []

    async def test_cancel_removes_a_record(self, outbox: Outbox) -> None:
        keep = await outbox.add("ledger", "keep", "p")
        gone = await outbox.add("ledger", "gone", "p")
        ready = await outbox.add("position", "ready", "p", state=READY)
        await outbox.cancel(gone)
        assert ids(await outbox.peek(10, states=(INTENT, READY))) == [keep, ready]
        assert await outbox.pending_keys() == [("ledger", "keep"), ("position", "ready")]
        assert (await outbox.depth())[0] == 2
        await outbox.cancel(ready)
        assert ids(await outbox.peek(10, states=(INTENT, READY))) == [keep]

    async def test_ack_removes_exactly_the_given_ids(self, outbox: Outbox) -> None:
        every = [await outbox.add("ledger", f"o{i}", f"p{i}", state=READY) for i in range(6)]
        await outbox.ack([every[1], every[4]])
        assert ids(await outbox.peek(10)) == [every[0], every[2], every[3], every[5]]
        assert (await outbox.depth())[0] == 4
        await outbox.ack((every[0],))
        assert ids(await outbox.peek(10)) == [every[2], every[3], every[5]]
        assert await outbox.pending_keys() == [("ledger", "o2"), ("ledger", "o3"), ("ledger", "o5")]

    async def test_ack_of_no_ids_is_harmless(self, outbox: Outbox) -> None:
        every = [await outbox.add("ledger", f"o{i}", "p", state=READY) for i in range(3)]
        await outbox.ack([])
        await outbox.ack(())
        assert ids(await outbox.peek(10)) == every
        await outbox.ack(every)
        await outbox.ack([])
        assert await outbox.peek(10) == []
        assert await outbox.depth() == (0, None)

    async def test_note_failure_counts_attempts_and_keeps_the_error(self, outbox: Outbox) -> None:
        failing = [await outbox.add("ledger", f"o{i}", "p", state=READY) for i in range(2)]
        other = await outbox.add("ledger", "other", "p", state=READY)
        fresh = {r.id: r for r in await outbox.peek(10)}
        assert all((r.attempts, r.last_error) == (0, None) for r in fresh.values())

        await outbox.note_failure(failing, "ConnectionError: first")
        await outbox.note_failure(failing, f"TimeoutError: {KOREAN}")
        await outbox.note_failure([], "nothing")
        got = {r.id: r for r in await outbox.peek(10)}
        assert list(got) == [*failing, other]
        for record_id in failing:
            assert got[record_id].attempts == 2
            assert got[record_id].last_error == f"TimeoutError: {KOREAN}"
        assert (got[other].attempts, got[other].last_error) == (0, None)
        # the record itself is unchanged
        assert (got[failing[0]].key, got[failing[0]].payload, got[failing[0]].state) == (
            "o0",
            "p",
            READY,
        )

    async def test_note_failure_stores_a_long_error(self, outbox: Outbox) -> None:
        record_id = await outbox.add("ledger", "o1", "p", state=READY)
        error = "RuntimeError: " + "secondary refused the batch; " * 2000  # ~58 kB
        await outbox.note_failure([record_id], error)
        [record] = await outbox.peek(10)
        assert record.attempts == 1
        assert record.last_error, "a long error must be stored (truncated is fine)"
        assert record.last_error[:200] == error[:200]

    # -- what a record holds ------------------------------------------------------------------

    async def test_record_fields_round_trip(self, outbox: Outbox) -> None:
        before = now_us()
        record_id = await outbox.add(
            "candle", "005930:2024-01-02", '{"symbol": "005930"}', state=READY, extra="1h"
        )
        plain_id = await outbox.add("ledger", "order-1", "{}")
        after = now_us()
        [record] = await outbox.peek(10)
        assert record.id == record_id
        assert record.op == "candle"
        assert record.key == "005930:2024-01-02"
        assert record.payload == '{"symbol": "005930"}'
        assert record.extra == "1h"
        assert record.state == READY
        assert record.owner == OWNER
        assert (record.attempts, record.last_error) == (0, None)
        assert isinstance(record.created_us, int)
        assert before - CLOCK_SLACK_US <= record.created_us <= after + CLOCK_SLACK_US, (
            f"created_us={record.created_us} is not µs since the epoch close to now ({before})"
        )
        [plain] = await outbox.peek(10, states=(INTENT,))
        assert (plain.id, plain.op, plain.key, plain.payload, plain.extra, plain.owner) == (
            plain_id,
            "ledger",
            "order-1",
            "{}",
            None,
            OWNER,
        )
        assert plain.created_us >= record.created_us - CLOCK_SLACK_US

    async def test_non_ascii_text_round_trips(self, outboxes: Outboxes) -> None:
        owner = f"프로세스-{KOREAN[:8]}"
        outbox = await outboxes.open(owner)
        key = f"주문-{KOREAN}"
        payload = f'{{"memo": "{KOREAN}"}}'
        await outbox.add("ledger", key, payload, state=READY, extra=f"비고 {KOREAN}")
        [record] = await outbox.peek(10)
        assert (record.key, record.payload, record.extra, record.owner) == (
            key,
            payload,
            f"비고 {KOREAN}",
            owner,
        )
        assert await outbox.pending_keys() == [("ledger", key)]

    async def test_large_payload_round_trips(self, outbox: Outbox) -> None:
        chunk = f'{{"i": 0, "text": "{KOREAN}", "ascii": "{"x" * 64}"}},'
        payload = "[" + chunk * (100_000 // len(chunk) + 1) + "null]"
        assert len(payload) >= 100_000
        await outbox.add("execution_log", "big", payload, state=READY)
        small = await outbox.add("execution_log", "small", "{}", state=READY)
        got = await outbox.peek(10)
        assert [r.key for r in got] == ["big", "small"]
        assert got[0].payload == payload
        assert (got[1].id, got[1].payload) == (small, "{}")

    # -- pending_keys / depth -----------------------------------------------------------------

    async def test_pending_keys_lists_every_record_not_acked_in_id_order(
        self, outbox: Outbox
    ) -> None:
        assert await outbox.pending_keys() == []
        a = await outbox.add("ledger", "o1", "p")
        b = await outbox.add("position", "005930", "p", state=READY)
        await outbox.add("ledger", "o2", "p", state=READY)
        await outbox.add("position", "000660", "p")
        assert await outbox.pending_keys() == [
            ("ledger", "o1"),
            ("position", "005930"),
            ("ledger", "o2"),
            ("position", "000660"),
        ]
        await outbox.mark_ready(a)
        await outbox.ack([b])
        assert await outbox.pending_keys() == [
            ("ledger", "o1"),
            ("ledger", "o2"),
            ("position", "000660"),
        ]

    async def test_depth_counts_records_and_the_oldest(self, outbox: Outbox) -> None:
        assert await outbox.depth() == (0, None)
        first = await outbox.add("ledger", "o1", "p")
        await asyncio.sleep(0.002)
        second = await outbox.add("ledger", "o2", "p", state=READY)
        await outbox.add("ledger", "o3", "p", state=READY)
        created = {r.id: r.created_us for r in await outbox.peek(10, states=(INTENT, READY))}
        count, oldest = await outbox.depth()
        assert (count, oldest) == (3, created[first])
        assert isinstance(oldest, int)
        await outbox.cancel(first)
        assert await outbox.depth() == (2, created[second])
        await outbox.ack(list(created))
        assert await outbox.depth() == (0, None)

    # -- durability and owners ----------------------------------------------------------------

    async def test_records_survive_close_and_reopen(self, outboxes: Outboxes) -> None:
        outbox = await outboxes.open(OWNER)
        await outbox.add("ledger", "o1", KOREAN)
        ready = await outbox.add("position", "005930", "p", state=READY, extra="x")
        await outbox.note_failure([ready], "boom")
        before = await outbox.peek(10, states=(INTENT, READY))
        keys, depth = await outbox.pending_keys(), await outbox.depth()

        reopened = await outboxes.restart(outbox, OWNER)
        assert await reopened.peek(10, states=(INTENT, READY)) == before
        assert await reopened.pending_keys() == keys
        assert await reopened.depth() == depth
        later = await reopened.add("ledger", "o2", "p")
        assert later > max(ids(before))

    async def test_another_owner_sees_the_records(self, outboxes: Outboxes) -> None:
        outbox = await outboxes.open(OWNER)
        intent = await outbox.add("ledger", "o1", "p1")
        ready = await outbox.add("ledger", "o2", "p2", state=READY)
        before = await outbox.peek(10, states=(INTENT, READY))

        other = await outboxes.restart(outbox, OTHER)
        got = await other.peek(10, states=(INTENT, READY))
        assert got == before
        assert {r.owner for r in got} == {OWNER}
        mine = await other.add("ledger", "o3", "p3", state=READY)
        assert ids(await other.peek(10)) == [ready, mine]
        assert [r.owner for r in await other.peek(10)] == [OWNER, OTHER]
        await other.mark_ready(intent)
        await other.ack([intent, ready])
        assert ids(await other.peek(10, states=(INTENT, READY))) == [mine]

    async def test_leftover_intents_are_the_intents_of_other_owners(
        self, outboxes: Outboxes
    ) -> None:
        dead = await outboxes.open(OWNER)
        assert await dead.leftover_intents() == []
        left = [await dead.add("ledger", "o1", "p1", extra="e")]
        await dead.add("ledger", "o2", "p2", state=READY)
        completed = await dead.add("position", "005930", "p3")
        await dead.mark_ready(completed)
        left.append(await dead.add("position", "000660", "p4"))
        assert await dead.leftover_intents() == [], "an owner's own intents are not leftovers"

        live = await outboxes.restart(dead, OTHER)
        own = await live.add("ledger", "o5", "p5")  # an intent of the live owner
        got = await live.leftover_intents()
        assert ids(got) == left
        assert [(r.op, r.key, r.payload, r.state, r.owner) for r in got] == [
            ("ledger", "o1", "p1", INTENT, OWNER),
            ("position", "000660", "p4", INTENT, OWNER),
        ]
        assert got[0].extra == "e"

        await live.mark_ready(left[0])  # the relay replayed it to the primary
        assert ids(await live.leftover_intents()) == left[1:]

        third = await outboxes.restart(live, "owner-c")
        assert ids(await third.leftover_intents()) == [left[1], own]

    # -- lifecycle ----------------------------------------------------------------------------

    async def test_close_twice_is_harmless(self, outboxes: Outboxes) -> None:
        outbox = await outboxes.open(OWNER)
        record_id = await outbox.add("ledger", "o1", "p", state=READY)
        await outboxes.close(outbox)
        await outbox.close()
        reopened = await outboxes.open(OWNER)
        assert ids(await reopened.peek(10)) == [record_id]

    async def test_close_of_an_unopened_outbox_does_not_raise(
        self, make_outbox: Callable[[str], Any]
    ) -> None:
        outbox = await make(make_outbox, OWNER)
        await outbox.close()

    async def test_concurrent_adds_get_distinct_ids(self, outbox: Outbox) -> None:
        async def add(i: int) -> int:
            return await outbox.add("ledger", f"o{i}", f"p{i}", state=READY)

        got = await asyncio.gather(*(add(i) for i in range(50)))
        assert len(set(got)) == 50, got
        records = await outbox.peek(100)
        assert ids(records) == sorted(got)
        assert sorted(r.key for r in records) == sorted(f"o{i}" for i in range(50))
        assert all(r.payload == "p" + r.key[1:] for r in records)
        assert await outbox.depth() == (50, min(r.created_us for r in records))
