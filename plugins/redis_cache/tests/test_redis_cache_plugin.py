"""The plugin as the core sees it: its entry point, factory and settings; redis imported lazily."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import qts_data_redis_cache
from qts_data import open_stack
from qts_data.errors import ConfigError
from qts_data.plugins import ComponentKind
from qts_data.plugins.manager import PluginHost
from qts_data_redis_cache import RedisCacheSettings, make_cache_client
from qts_data_redis_cache.client import RedisCacheClient

SECRET = "n0t-in-any-MESSAGE"


class Context:
    """The part of BuildContext the factory uses."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def resolve_path(self, path: str) -> str:
        return str(self.base / path)


@pytest.fixture
def host() -> PluginHost:
    return PluginHost(environ={"QTS_DATA_PLUGINS": "redis_cache"}).load()


def test_plugin_loads_from_its_entry_point_under_its_canonical_name(host: PluginHost) -> None:
    record = host.record("redis_cache")
    assert record is not None
    assert record.status == "loaded", record.error
    assert record.distribution == "qts-data-redis-cache"
    assert sorted((kind.value, name) for kind, name in record.components) == [
        ("cache", "redis_cache"),
        ("sink", "redis_cache"),
    ]
    spec = host.spec(ComponentKind.CACHE, "redis_cache")
    assert spec.plugin == "redis_cache"
    assert spec.settings is RedisCacheSettings
    assert spec.description


def test_factory_builds_an_unopened_client_without_touching_the_network(
    host: PluginHost, tmp_path: Path
) -> None:
    spec = host.spec(ComponentKind.CACHE, "redis_cache")
    settings = spec.settings.model_validate(
        {"url": f"redis://alice:{SECRET}@203.0.113.9:6390/2", "prefix": "p:", "pool_min": 3}
    )
    client = spec.factory(settings, Context(tmp_path))  # type: ignore[arg-type]
    assert isinstance(client, RedisCacheClient)
    assert client.in_process is False
    assert client.describe() == {
        "url": "redis://alice:***@203.0.113.9:6390/2",
        "mode": "standalone",
        "prefix": "p:",
        "pool_min": 3,
        "pool_max": 50,
        "pool_timeout_ms": 1000,
        "socket_timeout_ms": 100,
        "connect_timeout_ms": 100,
        "tls": False,
        "username": "alice",
    }


def test_factory_resolves_tls_files_relative_to_the_configuration(tmp_path: Path) -> None:
    settings = RedisCacheSettings(
        url="rediss://h:6380", ssl_ca_certs="certs/ca.pem", ssl_certfile="/abs/c.pem"
    )
    client = make_cache_client(settings, Context(tmp_path))  # type: ignore[arg-type]
    assert client.settings.ssl_ca_certs == str(tmp_path / "certs/ca.pem")
    assert client.settings.ssl_certfile == str(tmp_path / "/abs/c.pem")
    assert client.describe()["tls"] is True


def test_client_takes_settings_or_fields() -> None:
    a = RedisCacheClient(RedisCacheSettings(prefix="x:"))
    b = RedisCacheClient(prefix="x:")
    c = RedisCacheClient(RedisCacheSettings(prefix="y:"), prefix="x:")
    assert a.describe() == b.describe() == c.describe()


def test_a_configuration_error_never_shows_the_password() -> None:
    for body in (
        {"url": f"redis://u:{SECRET}@h:6379/zero"},
        {"url": f"redis://u:{SECRET}@h:6379/0", "pool_min": 100},
        {"url": f"redis://u:{SECRET}@h:6379/0", "ssl_keyfile": "k.pem"},
        {"url": f"ftp://u:{SECRET}@h"},
    ):
        config = {"stack": {"adapter": "store"}, "caches": {"c": {"type": "redis_cache", **body}}}
        with pytest.raises(ConfigError) as caught:
            open_stack(config, environ={"QTS_DATA_PLUGINS": "redis_cache"})
        assert "caches.c" in str(caught.value)
        assert SECRET not in str(caught.value)


def test_importing_the_plugin_imports_neither_redis_nor_the_client() -> None:
    code = (
        "import json, sys, qts_data_redis_cache\n"
        "from qts_data.plugins.manager import PluginHost\n"
        "PluginHost(environ={'QTS_DATA_PLUGINS': 'redis_cache'}).load()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('redis', 'hiredis', 'qts_data_redis_cache'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == ["qts_data_redis_cache", "qts_data_redis_cache.settings"]


def test_the_client_is_importable_from_the_package() -> None:
    assert qts_data_redis_cache.RedisCacheClient is RedisCacheClient
    assert qts_data_redis_cache.PLUGIN == "redis_cache"
    with pytest.raises(AttributeError):
        _ = qts_data_redis_cache.Nope
