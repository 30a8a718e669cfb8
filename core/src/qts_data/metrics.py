"""Prometheus exposition of a stack: cache statistics, breaker states, event counters, health.

Metrics are read from the stack's own counters when Prometheus scrapes, so they
cost nothing on the data path. Serve them with ``qts-data metrics --port N``,
or mount them in an application::

    from prometheus_client import make_asgi_app
    from qts_data.metrics import stack_registry

    app.mount("/metrics", make_asgi_app(registry=stack_registry(stack)))

Requires ``prometheus-client`` (``pip install "qts-data[metrics]"``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

if TYPE_CHECKING:
    from qts_data.stack import Stack

_BREAKER_STATES = ("CLOSED", "OPEN", "HALF_OPEN", "FORCED_OPEN", "DISABLED")
_COUNTERS = (
    ("hits", "cache hits (near cache included)"),
    ("near_hits", "hits served by the in-process near cache"),
    ("misses", "cache misses"),
    ("stale_reads", "values older than the caller's maximum age"),
    ("loads", "loads from the source after a miss"),
    ("merged_loads", "callers that shared another caller's load"),
    ("refreshes", "background refreshes of hot values"),
    ("writes", "cache writes"),
    ("invalidations", "cache invalidations"),
    ("fallbacks", "reads served by the source because the cache failed"),
    ("timeouts", "cache calls over their time budget"),
    ("errors", "cache calls that raised"),
    ("skipped_writes", "writes skipped (safety state, open breaker)"),
)


class StackCollector(Collector):
    """Collects a stack's metrics at scrape time."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def collect(self) -> Iterator[Any]:
        cache = self.stack.cache.summary()
        client = cache["client"] or "none"
        for name, doc in _COUNTERS:
            family = CounterMetricFamily(f"qts_cache_{name}", doc, labels=["cache", "kind"])
            for kind, stats in cache["kinds"].items():
                family.add_metric([client, kind], stats[name])
            yield family
        hit_rate = GaugeMetricFamily(
            "qts_cache_hit_ratio", "hits / (hits + misses)", labels=["cache", "kind"]
        )
        latency = GaugeMetricFamily(
            "qts_cache_latency_seconds",
            "cache call latency over recent calls",
            labels=["cache", "kind", "quantile"],
        )
        for kind, stats in cache["kinds"].items():
            if stats["hit_rate"] is not None:
                hit_rate.add_metric([client, kind], stats["hit_rate"])
            for quantile, value in stats["latency_us"].items():
                if value is not None:
                    latency.add_metric([client, kind, quantile.removeprefix("p")], value / 1e6)
        yield hit_rate
        yield latency
        breaker = GaugeMetricFamily(
            "qts_cache_breaker_state",
            "1 for the breaker's current state",
            labels=["cache", "state"],
        )
        if cache["breaker"] is not None:
            for state in _BREAKER_STATES:
                breaker.add_metric(
                    [client, state], 1.0 if cache["breaker"]["state"] == state else 0.0
                )
        yield breaker
        shard_breaker = GaugeMetricFamily(
            "qts_cache_shard_breaker_state",
            "1 for the current state of each shard's breaker (the masters of a Redis Cluster)",
            labels=["cache", "shard", "state"],
        )
        shards = (cache["breaker"] or {}).get("shards", {})
        for shard, summary in shards.items():
            for state in _BREAKER_STATES:
                shard_breaker.add_metric(
                    [client, shard, state], 1.0 if summary["state"] == state else 0.0
                )
        yield shard_breaker
        events = self.stack.events.summary()
        published = CounterMetricFamily("qts_events_published", "events published", labels=[])
        published.add_metric([], events.get("published", 0))
        yield published
        for name in ("delivered", "failed_events"):
            family = CounterMetricFamily(
                f"qts_events_{name}", f"events {name.replace('_', ' ')} per sink", labels=["sink"]
            )
            for sink, counters in events.get("sinks", {}).items():
                family.add_metric([sink], counters.get(name, 0))
            yield family
        queues = events.get("queues")
        if queues:
            for name in ("depth", "delivered", "dropped", "collapsed", "sampled"):
                gauge = GaugeMetricFamily(
                    f"qts_event_queue_{name}", f"event queue {name}", labels=["priority"]
                )
                for priority, counters in queues.items():
                    if name in counters:
                        gauge.add_metric([priority], counters[name])
                yield gauge
        safety = GaugeMetricFamily(
            "qts_safety_state", "1 for the current safety state", labels=["state"]
        )
        for state in ("NORMAL", "WARNING", "FAIL", "LOCKDOWN"):
            safety.add_metric([state], 1.0 if self.stack.safety.state.value == state else 0.0)
        yield safety


class HealthCollector(Collector):
    """Component health and check latency, from the last ``refresh()`` (health checks are async)."""

    def __init__(self) -> None:
        self.latest: list[tuple[str, str, str, float | None]] = []  # kind, name, state, latency ms

    async def refresh(self, stack: Stack) -> None:
        health = await stack.health()
        self.latest = [
            (c.kind, c.name, c.status.state.value, c.status.latency_ms) for c in health.components
        ]

    def collect(self) -> Iterator[Any]:
        up = GaugeMetricFamily(
            "qts_component_healthy", "1 when the component is HEALTHY", labels=["kind", "name"]
        )
        latency = GaugeMetricFamily(
            "qts_component_check_seconds",
            "latency of the component's health check",
            labels=["kind", "name"],
        )
        for kind, name, state, ms in self.latest:
            up.add_metric([kind, name], 1.0 if state == "HEALTHY" else 0.0)
            if ms is not None:
                latency.add_metric([kind, name], ms / 1000)
        yield up
        yield latency


def stack_registry(stack: Stack, health: HealthCollector | None = None) -> CollectorRegistry:
    """A registry holding the stack's metrics (and health, when a HealthCollector is given)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(StackCollector(stack))
    if health is not None:
        registry.register(health)
    return registry
