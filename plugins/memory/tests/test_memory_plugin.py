"""The plugin as the core sees it: discovery through the entry point, factories, settings."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from pydantic import ValidationError

import qts_data_memory
from qts_data.plugins import ComponentKind
from qts_data.plugins.manager import PluginHost
from qts_data_memory.adapter import MemoryAdapter
from qts_data_memory.cache import MemoryCacheClient
from qts_data_memory.sink import MemoryEventSink


@pytest.fixture
def host() -> PluginHost:
    return PluginHost(environ={"QTS_DATA_PLUGINS": "memory"}).load()


def test_plugin_loads_from_its_entry_point_under_its_canonical_name(host: PluginHost) -> None:
    record = host.record("memory")
    assert record is not None
    assert record.status == "loaded", record.error
    assert record.distribution == "qts-data-memory"
    assert sorted((kind.value, name) for kind, name in record.components) == [
        ("adapter", "memory"),
        ("cache", "memory"),
        ("sink", "memory"),
    ]


@pytest.mark.parametrize(
    ("kind", "settings", "made", "described"),
    [
        (ComponentKind.ADAPTER, {}, MemoryAdapter, {"persistent": False}),
        (
            ComponentKind.CACHE,
            {"max_entries": 5, "sweep_batch": 2},
            MemoryCacheClient,
            {"max_entries": 5, "sweep_batch": 2},
        ),
        (ComponentKind.SINK, {"capacity": 7}, MemoryEventSink, {"capacity": 7}),
    ],
)
def test_factories_build_components_from_validated_settings(
    host: PluginHost,
    kind: ComponentKind,
    settings: dict[str, Any],
    made: type,
    described: dict[str, Any],
) -> None:
    spec = host.spec(kind, "memory")
    assert spec.plugin == "memory"
    assert spec.description
    component = spec.factory(spec.settings.model_validate(settings), object())  # type: ignore[arg-type]
    assert isinstance(component, made)
    assert component.describe() == described


def test_settings_defaults_and_limits() -> None:
    assert qts_data_memory.MemoryCacheSettings().max_entries == 100_000
    assert qts_data_memory.MemorySinkSettings().capacity == 10_000
    with pytest.raises(ValidationError, match="max_entries"):
        qts_data_memory.MemoryCacheSettings(max_entries=0)
    with pytest.raises(ValidationError, match="capacity"):
        qts_data_memory.MemorySinkSettings(capacity=-1)
    with pytest.raises(ValidationError, match="max_entrys"):
        qts_data_memory.MemoryCacheSettings.model_validate({"max_entrys": 5})


def test_importing_the_plugin_does_not_import_the_implementations() -> None:
    code = (
        "import sys, qts_data_memory; "
        "print(sorted(m for m in sys.modules if m.startswith('qts_data_memory')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['qts_data_memory']"


def test_implementations_are_importable_from_the_package() -> None:
    assert qts_data_memory.MemoryCacheClient is MemoryCacheClient
    assert qts_data_memory.MemoryAdapter is MemoryAdapter
    assert qts_data_memory.MemoryEventSink is MemoryEventSink
    with pytest.raises(AttributeError):
        _ = qts_data_memory.Nope
