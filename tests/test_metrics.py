"""The Prometheus exposition of a stack."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from qts_data import open_stack
from qts_data.metrics import HealthCollector, stack_registry


async def test_exposition_carries_cache_statistics_health_and_safety() -> None:
    async with open_stack() as stack:
        await stack.adapter.update_position("005930", "1", "71000")
        for _ in range(9):
            await stack.adapter.fetch_position("005930")
        health = HealthCollector()
        await health.refresh(stack)
        text = generate_latest(stack_registry(stack, health)).decode()
    assert 'qts_cache_hits_total{cache="hot",kind="position"} 9.0' in text
    assert 'qts_cache_hit_ratio{cache="hot",kind="position"} 1.0' in text
    assert 'qts_component_healthy{kind="adapter",name="main"} 1.0' in text
    assert 'qts_safety_state{state="NORMAL"} 1.0' in text
    assert "qts_events_published_total 0.0" in text


@pytest.mark.parametrize("kind", ["price", "orderbook", "risk"])
async def test_every_kind_is_exposed_even_before_use(kind: str) -> None:
    async with open_stack() as stack:
        text = generate_latest(stack_registry(stack)).decode()
    assert f'qts_cache_misses_total{{cache="hot",kind="{kind}"}} 0.0' in text
