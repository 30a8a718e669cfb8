"""Losing one master of a Redis Cluster bypasses only its keys, for as long as the failover takes.

A throwaway cluster of three masters with one replica each (``cluster-node-timeout``
2000 ms), the cache layer with its default settings: a memory store behind the
``cached`` composition with a ``redis_cache`` cache. One writer updates every
position every 50 ms; readers compare what they get with what the store held
before their read began; a prober asks the cache alone (no load) whether each
key hits. One master is SIGKILLed; its replica takes over.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import position_workload
import pytest
from prometheus_client import generate_latest
from redis.crc import key_slot

from qts_data import open_stack
from qts_data.cache import BreakerState, CacheKind, codec_for
from qts_data.cache.breaker import Transition
from qts_data.contracts import Position
from qts_data.metrics import stack_registry
from qts_data.stack import Stack
from qts_data.testing.servers import RedisProcess, RedisProcessFactory

pytestmark = pytest.mark.slow

POSITION = codec_for(Position | None)
SLOTS = 16384


def start_cluster(factory: RedisProcessFactory, *, full_coverage: bool) -> list[RedisProcess]:
    coverage = "yes" if full_coverage else "no"
    return factory.cluster(
        3,
        "--cluster-node-timeout",
        "2000",
        "--cluster-require-full-coverage",
        coverage,
        replicas=1,
    )


def master_index(symbol: str, masters: int = 3) -> int:
    """Which master (in slot order) holds the keys of ``symbol`` (its hash tag)."""
    return key_slot(symbol.encode()) * masters // SLOTS


def symbols_per_master(per_master: int = 4, masters: int = 3) -> list[list[str]]:
    groups: list[list[str]] = [[] for _ in range(masters)]
    n = 0
    while any(len(group) < per_master for group in groups):
        symbol = f"S{n}"
        group = groups[master_index(symbol, masters)]
        if len(group) < per_master:
            group.append(symbol)
        n += 1
    return groups


def is_master(node: RedisProcess, seen_from: RedisProcess) -> bool:
    """Whether ``seen_from`` lists ``node`` as a healthy master (CLUSTER NODES)."""
    raw = seen_from.command("CLUSTER", "NODES")
    assert isinstance(raw, bytes)
    for line in raw.decode().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[1].split("@")[0].endswith(f":{node.port}"):
            flags = set(fields[2].split(","))
            return "master" in flags and not flags & {"fail", "fail?"}
    return False


class Workload(position_workload.Workload):
    """The shared position workload over keys grouped by master, plus a prober that reads
    the cache directly (hit or not, per key and time)."""

    def __init__(self, stack: Stack, groups: list[list[str]]) -> None:
        super().__init__(stack, [symbol for group in groups for symbol in group])
        self.groups = groups
        #: (monotonic time, symbol, hit) of every probe
        self.probes: list[tuple[float, str, bool]] = []

    async def prober(self) -> None:
        cache = self.stack.cache
        while not self.stop.is_set():
            for symbol in self.symbols:
                floor = self.committed[symbol]
                try:
                    found = await cache.get(CacheKind.POSITION, POSITION, symbol=symbol)
                except BaseException as exc:
                    self.errors.append(exc)
                    return
                value = None if found is None else found.value
                if value is not None and value.qty < Decimal(floor):
                    self.stale.append((symbol, int(value.qty), floor))
                self.probes.append((time.monotonic(), symbol, found is not None))
            await asyncio.sleep(0.02)

    def start(self, readers: int) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self.prober()), *super().start(readers)]

    def hit_rate(self, group: int, start: float, end: float) -> tuple[float, int]:
        """(hit fraction, probes) of the keys of master ``group`` probed in [start, end)."""
        symbols = set(self.groups[group])
        probes = [hit for at, s, hit in self.probes if start <= at < end and s in symbols]
        return (sum(probes) / len(probes) if probes else float("nan")), len(probes)

    def all_hit_since(self, group: int, since: float) -> float | None:
        """The first time after ``since`` by which every key of ``group`` hit again."""
        pending = set(self.groups[group])
        for at, symbol, hit in self.probes:
            if at >= since and hit:
                pending.discard(symbol)
                if not pending:
                    return at
        return None


@dataclass
class Failover:
    """What one run saw: the workload and when things happened (monotonic times)."""

    work: Workload
    victim: int
    victim_name: str
    serving_after: set[str]
    killed_at: float
    replica_at: float  # the last moment the replica was seen still a replica
    promoted_at: float  # when it was first seen a master (up to a poll later than it was)
    recovered_at: float
    stats: dict[str, dict[str, float]]  # position stats at "before", "during", "after"
    reads: dict[str, dict[str, int]]  # reads per symbol at "before", "during"
    state_during: BreakerState
    summary_during: dict[str, Any]
    metrics_during: str  # the Prometheus exposition 1 s after the kill
    summary_after: dict[str, Any]
    state_after: BreakerState
    transitions: list[tuple[float, Transition]]  # with the time each happened

    @property
    def window(self) -> tuple[float, float]:
        return self.killed_at, self.promoted_at

    def reads_during(self, group: int) -> int:
        before, during = self.reads["before"], self.reads["during"]
        return sum(during[s] - before[s] for s in self.work.groups[group])

    def figures(self) -> dict[str, Any]:
        def rate(a: dict[str, float], b: dict[str, float]) -> float:
            hits, misses = b["hits"] - a["hits"], b["misses"] - a["misses"]
            return round(hits / (hits + misses), 3) if hits + misses else float("nan")

        work, stats = self.work, self.stats
        return {
            "promotion_s": round(self.promoted_at - self.killed_at, 2),
            "dead_keys_hit_again_after_kill_s": round(self.recovered_at - self.killed_at, 2),
            "dead_keys_hit_again_after_promotion_s": round(self.recovered_at - self.promoted_at, 2),
            "position_hit_rate": {
                "before": rate({"hits": 0, "misses": 0}, stats["before"]),
                "failover": rate(stats["before"], stats["during"]),
                "after": rate(stats["during"], stats["after"]),
            },
            "probe_hit_rate": {
                f"master{i}{' (killed)' if i == self.victim else ''}": {
                    "before": round(work.hit_rate(i, 0, self.killed_at)[0], 3),
                    "failover": round(work.hit_rate(i, *self.window)[0], 3),
                    "after": round(work.hit_rate(i, self.recovered_at, float("inf"))[0], 3),
                }
                for i in range(3)
            },
            "other_keys_all_hit_after_promotion_s": [
                round(at - self.promoted_at, 2) if at is not None else None
                for i in range(3)
                if i != self.victim
                for at in [work.all_hit_since(i, self.promoted_at)]
            ],
            "fallbacks_during_failover": stats["during"]["fallbacks"]
            - stats["before"]["fallbacks"],
            "transitions": [
                (round(at - self.killed_at, 2), t.shard, t.current.value)
                for at, t in self.transitions
            ],
        }


async def kill_a_master(factory: RedisProcessFactory, masters: list[RedisProcess]) -> Failover:
    """Run the workload, SIGKILL the third master, wait for its replica to take over and for
    its keys to hit again, run on for 1.5 s."""
    victim_index = 2
    victim, witness = masters[victim_index], masters[0]
    (replica,) = factory.replicas_of(victim)
    stack = open_stack(
        {
            "stack": {"adapter": "main", "cache": "redis"},
            "adapters": {
                "db": {"type": "memory"},
                "main": {"type": "cached", "adapter": "db", "cache": "redis"},
            },
            "caches": {
                "redis": {
                    "type": "redis_cache",
                    "url": masters[0].url,
                    "cluster": True,
                    "cluster_nodes": [f"{m.host}:{m.port}" for m in masters[1:]],
                }
            },
        }
    )
    transitions: list[tuple[float, Transition]] = []
    async with stack:
        cache = stack.cache
        cache.breaker.listeners.append(lambda t: transitions.append((time.monotonic(), t)))
        work = Workload(stack, symbols_per_master())
        await work.prime()
        tasks = work.start(readers=20)
        await asyncio.sleep(1.5)
        before = cache.stats()["position"].as_dict()
        reads_before = dict(work.reads)

        killed_at = time.monotonic()
        await asyncio.to_thread(victim.kill)
        # 1 s in, the failure is not even detected by the cluster (node timeout: 2 s).
        await asyncio.sleep(1.0)
        state_during = cache.breaker.state
        summary_during = cache.breaker.summary()
        metrics_during = generate_latest(stack_registry(stack)).decode()
        replica_at = killed_at
        while True:
            asked_at = time.monotonic()
            if await asyncio.to_thread(is_master, replica, witness):
                break
            replica_at = asked_at  # still a replica after this moment: not promoted yet
            assert time.monotonic() < killed_at + 30, "the replica was not promoted in 30 s"
            await asyncio.sleep(0.05)
        promoted_at = time.monotonic()
        during = cache.stats()["position"].as_dict()
        reads_during = dict(work.reads)

        while (recovered_at := work.all_hit_since(victim_index, promoted_at)) is None:
            assert time.monotonic() < promoted_at + 30, "the dead master's keys never hit again"
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)
        after = cache.stats()["position"].as_dict()
        await work.finish(tasks)
        return Failover(
            work=work,
            victim=victim_index,
            victim_name=f"{victim.host}:{victim.port}",
            serving_after={f"{m.host}:{m.port}" for m in (*masters[:2], replica)},
            killed_at=killed_at,
            replica_at=replica_at,
            promoted_at=promoted_at,
            recovered_at=recovered_at,
            stats={"before": before, "during": during, "after": after},
            reads={"before": reads_before, "during": reads_during},
            state_during=state_during,
            summary_during=summary_during,
            metrics_during=metrics_during,
            summary_after=cache.summary(),
            state_after=cache.breaker.state,
            transitions=transitions,
        )


def assert_recovered(run: Failover, figures: dict[str, Any]) -> None:
    """No error, nothing stale; every key hits again, each master's breaker is closed, the
    dead master's breaker is gone and the promoted replica has its own."""
    work = run.work
    assert work.errors == []
    assert work.stale == [], f"{len(work.stale)} reads were older than the store"
    # The dead master's keys went to the store meanwhile (readers kept reading them).
    assert run.reads_during(run.victim) > 0
    late_in_window = (run.killed_at + 0.5, run.replica_at)
    assert work.hit_rate(run.victim, *late_in_window)[0] == 0.0, figures
    assert run.state_during is BreakerState.OPEN
    assert run.victim_name in run.summary_during["rejecting"], run.summary_during
    shard_open = (
        f'qts_cache_shard_breaker_state{{cache="redis",shard="{run.victim_name}",state="OPEN"}} 1.0'
    )
    assert shard_open in run.metrics_during
    assert run.state_after is BreakerState.CLOSED, run.summary_after["breaker"]
    shards = run.summary_after["breaker"]["shards"]
    assert set(shards) == run.serving_after, shards
    assert all(s["state"] == "CLOSED" for s in shards.values()), shards
    for i in range(3):
        assert work.hit_rate(i, run.recovered_at, float("inf"))[0] >= 0.8, figures
    # Soon after the promotion, through the promoted replica's breaker: not by waiting for
    # the dead master's breaker to let a probe through (wait_s = 5 s after it opened).
    assert run.recovered_at - run.promoted_at < 2.0, figures
    victim = [(at, t.current) for at, t in run.transitions if t.shard == run.victim_name]
    assert victim[0][1] is BreakerState.OPEN, figures
    if run.recovered_at < victim[0][0] + 5.0:
        assert [state for _, state in victim] == [BreakerState.OPEN], figures


async def test_a_killed_master_bypasses_only_its_keys_until_its_replica_takes_over(
    redis_process_factory: RedisProcessFactory,
) -> None:
    """``cluster-require-full-coverage no``: the other masters serve their slots throughout."""
    masters = start_cluster(redis_process_factory, full_coverage=False)
    run = await kill_a_master(redis_process_factory, masters)
    figures = run.figures()
    print(figures)
    assert_recovered(run, figures)
    for i in range(3):
        if i != run.victim:  # the other masters' keys kept hitting through the failover
            hit_rate, probes = run.work.hit_rate(i, *run.window)
            assert probes > 0 and hit_rate >= 0.8, figures
            assert run.reads_during(i) > 0
    assert run.stats["during"]["hits"] > run.stats["before"]["hits"]
    opened = {t.shard for _, t in run.transitions if t.current is BreakerState.OPEN}
    assert opened == {run.victim_name}, figures  # only the dead master's breaker opened


async def test_with_full_coverage_every_key_bypasses_only_while_the_cluster_is_down(
    redis_process_factory: RedisProcessFactory,
) -> None:
    """Redis' default ``cluster-require-full-coverage yes``: between the master being marked
    failed and its replica's promotion (about a second) every node refuses every key
    (CLUSTERDOWN), so every master's breaker may open; the new topology lets them probe at
    once instead of waiting out their 5 s, so every key hits again soon after the promotion."""
    masters = start_cluster(redis_process_factory, full_coverage=True)
    run = await kill_a_master(redis_process_factory, masters)
    figures = run.figures()
    print(figures)
    assert_recovered(run, figures)
    for i in range(3):
        if i != run.victim:  # they hit until the cluster went down (node timeout: 2 s)
            hit_rate, probes = run.work.hit_rate(i, *run.window)
            assert probes > 0 and hit_rate >= 0.3, figures
            hit_again = run.work.all_hit_since(i, run.promoted_at)
            assert hit_again is not None and hit_again - run.promoted_at < 2.0, figures
