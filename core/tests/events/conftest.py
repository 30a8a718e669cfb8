"""Fixtures of the event dispatcher tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from qts_data.events import EventSettings


@pytest.fixture
def settings() -> Callable[..., EventSettings]:
    """Settings with fast retries (override any field by keyword)."""

    def make(**overrides: Any) -> EventSettings:
        values: dict[str, Any] = {"retry_backoff_s": 0.001, "retry_backoff_max_s": 0.005}
        values.update(overrides)
        return EventSettings(**values)

    return make
