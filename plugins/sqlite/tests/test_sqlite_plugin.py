"""The plugin as the core sees it: entry point, factory and settings, lazy import, a stack from TOML."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

import qts_data
import qts_data_sqlite
from qts_data.interfaces import GapChecking, Maintainable, Migratable, StorageInspectable
from qts_data.plugins import ComponentKind
from qts_data.plugins.manager import PluginHost
from qts_data_sqlite import SqliteSettings
from qts_data_sqlite.adapter import SqliteAdapter


@pytest.fixture
def host() -> PluginHost:
    return PluginHost(environ={"QTS_DATA_PLUGINS": "sqlite"}).load()


class Context:
    """The part of BuildContext the factory uses."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.resolved: list[str] = []

    def resolve_path(self, path: str) -> str:
        self.resolved.append(path)
        return str(self.base / path)


def test_plugin_loads_from_its_entry_point_under_its_canonical_name(host: PluginHost) -> None:
    record = host.record("sqlite")
    assert record is not None
    assert record.status == "loaded", record.error
    assert record.distribution == "qts-data-sqlite"
    assert [(kind.value, name) for kind, name in record.components] == [("adapter", "sqlite")]
    spec = host.spec(ComponentKind.ADAPTER, "sqlite")
    assert spec.plugin == "sqlite"
    assert spec.settings is SqliteSettings
    assert spec.description


def test_factory_resolves_a_relative_path_against_the_configuration_folder(
    host: PluginHost, tmp_path: Path
) -> None:
    spec = host.spec(ComponentKind.ADAPTER, "sqlite")
    ctx = Context(tmp_path)
    settings = spec.settings.model_validate({"path": "data/qts.sqlite3", "synchronous": "full"})
    adapter = spec.factory(settings, ctx)  # type: ignore[arg-type]
    assert isinstance(adapter, SqliteAdapter)
    assert ctx.resolved == ["data/qts.sqlite3"]
    assert adapter.path == str(tmp_path / "data/qts.sqlite3")
    assert adapter.describe() == {
        "path": str(tmp_path / "data/qts.sqlite3"),
        "persistent": True,
        "journal_mode": "WAL",
        "synchronous": "FULL",
        "vacuum_threshold": 0.15,
    }
    memory = spec.factory(spec.settings.model_validate({"path": ":memory:"}), ctx)  # type: ignore[arg-type]
    assert isinstance(memory, SqliteAdapter)
    assert memory.path == ":memory:"
    assert memory.describe()["persistent"] is False
    assert ctx.resolved == ["data/qts.sqlite3"]  # ":memory:" is not a path


def test_settings_defaults_and_limits() -> None:
    settings = SqliteSettings()
    assert (settings.path, settings.journal_mode, settings.synchronous) == (
        "qts-data.sqlite3",
        "WAL",
        "NORMAL",
    )
    assert settings.vacuum_threshold == 0.15
    assert settings.busy_timeout_ms == 5_000
    assert SqliteSettings(journal_mode="delete").journal_mode == "DELETE"
    for bad, field in [
        ({"synchronous": "fast"}, "synchronous"),
        ({"journal_mode": "WAL; DROP TABLE x"}, "journal_mode"),
        ({"vacuum_threshold": 1.5}, "vacuum_threshold"),
        ({"busy_timeout_ms": -1}, "busy_timeout_ms"),
        ({"cache_size_kib": 0}, "cache_size_kib"),
        ({"path": ""}, "path"),
        ({"vacum_threshold": 0.2}, "vacum_threshold"),
    ]:
        with pytest.raises(ValidationError, match=field):
            SqliteSettings.model_validate(bad)


def test_the_adapter_offers_the_optional_operations() -> None:
    adapter = SqliteAdapter(":memory:")
    for protocol in (Migratable, GapChecking, Maintainable, StorageInspectable):
        assert isinstance(adapter, protocol), protocol.__name__


def test_importing_the_plugin_imports_neither_the_adapter_nor_sqlite3() -> None:
    code = (
        "import sys, json, qts_data.plugins; before = set(sys.modules); "
        "import qts_data_sqlite; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == ["qts_data_sqlite"]


def test_the_adapter_class_is_importable_from_the_package() -> None:
    assert qts_data_sqlite.SqliteAdapter is SqliteAdapter
    with pytest.raises(AttributeError):
        _ = qts_data_sqlite.Nope


async def test_a_stack_from_toml_stores_in_a_file_beside_the_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: PluginHost
) -> None:
    (tmp_path / "conf" / "data").mkdir(parents=True)
    config = tmp_path / "conf" / "qts.toml"
    config.write_text(
        '[stack]\nadapter = "store"\n\n'
        '[adapters.store]\ntype = "sqlite"\npath = "data/qts.sqlite3"\nvacuum_threshold = 0.2\n'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative paths are read from the configuration's folder
    async with qts_data.open_stack(config, environ={}, plugins=host) as stack:
        assert isinstance(stack.adapter, SqliteAdapter)
        assert stack.adapter.settings.vacuum_threshold == 0.2
        await stack.adapter.update_position("AAPL", 3, "150.5")
        health = await stack.health()
        assert health.healthy, health.as_dict()
    assert (tmp_path / "conf" / "data" / "qts.sqlite3").is_file()
    assert list(elsewhere.iterdir()) == []
    async with qts_data.open_stack(config, environ={}, plugins=host) as stack:
        position = await stack.adapter.fetch_position("AAPL")
        assert position is not None
        assert position.qty == 3
