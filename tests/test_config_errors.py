"""A battery of bad configurations: each error names the file, the key path and the problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qts_data import ConfigError, open_stack
from qts_data.plugins.manager import KNOWN_PACKAGES

BASE = """
[stack]
adapter = "main"
cache = "hot"

[adapters.store]
type = "memory"

[adapters.main]
type = "cached"
adapter = "store"
cache = "hot"

[caches.hot]
type = "memory"
"""

CASES: list[tuple[str, str, str]] = [
    ("invalid TOML", "[stack\nadapter = 1", "invalid TOML"),
    (
        "unknown section",
        BASE + "\n[adaptors.x]\ntype='memory'\n",
        "adaptors: unknown section (did you mean 'adapters'?)",
    ),
    (
        "component without type",
        BASE + "\n[adapters.extra]\nx = 1\n",
        "adapters.extra.type: missing",
    ),
    (
        "unknown type with install hint",
        BASE.replace(
            'type = "memory"\n\n[adapters.main]', 'type = "hyperstore"\n\n[adapters.main]'
        ),
        "adapters.store.type: no adapter named 'hyperstore': it is provided by the plugin package qts-data-hyperstore (pip install qts-data-hyperstore; from a clone of qts-data: pip install ./plugins/hyperstore). Available adapters: cached",
    ),
    (
        "typo in type",
        BASE.replace('type = "cached"', 'type = "cachd"'),
        "adapters.main.type: no adapter named 'cachd'",
    ),
    ("unknown setting", BASE + "max_entrys = 5\n", "caches.hot.max_entrys: unknown key"),
    (
        "bad setting value",
        BASE + "max_entries = 'many'\n",
        "caches.hot.max_entries: Input should be a valid integer",
    ),
    (
        "reference to a missing component",
        BASE.replace('adapter = "store"', 'adapter = "stor"'),
        "adapters.main.adapter: no adapter named 'stor' (did you mean 'store'?); defined: store, main",
    ),
    (
        "stack names a missing adapter",
        BASE.replace('adapter = "main"', 'adapter = "mian"', 1),
        "stack.adapter: no adapter named 'mian' (did you mean 'main'?)",
    ),
    (
        "stack names a missing cache",
        BASE.replace('cache = "hot"', 'cache = "cold"', 1),
        "stack.cache: no cache client named 'cold'",
    ),
    (
        "unknown stack key",
        BASE.replace("[stack]\n", "[stack]\ncolour = 1\n"),
        "stack.colour: unknown key",
    ),
    (
        "sinks not a list",
        BASE.replace("[stack]\n", "[stack]\nsinks = 'log'\n"),
        "stack.sinks: Input should be a valid list",
    ),
    (
        "component is not a table",
        BASE + "\n[sinks]\nlog = 'logging'\n",
        "sinks.log: must be a table",
    ),
    (
        "required not a boolean",
        BASE + "required = 'yes'\n",
        "caches.hot.required: must be true or false",
    ),
    (
        "cycle",
        BASE.replace('adapter = "store"', 'adapter = "main"'),
        "components refer to each other in a cycle: adapters.main -> adapters.main",
    ),
    (
        "two-step cycle",
        BASE
        + '\n[adapters.a]\ntype = "cached"\nadapter = "b"\ncache = "hot"\n[adapters.b]\ntype = "cached"\nadapter = "a"\ncache = "hot"\n',
        "cycle: adapters.a -> adapters.b -> adapters.a",
    ),
    (
        "hybrid with a bad mode",
        BASE + '\n[adapters.h]\ntype = "hybrid"\nsheets = "store"\ndb = "store"\nmode = "BOTH"\n',
        "adapters.h.mode: Input should be 'SHEETS_ONLY', 'HYBRID' or 'DB_ONLY'",
    ),
    ("bad cache ttl kind", BASE + "\n[cache.ttl_ms]\nprices = 5\n", "cache.ttl_ms.prices"),
    (
        "reference of the wrong kind",
        BASE.replace('cache = "hot"\n\n[caches', 'cache = "store"\n\n[caches'),
        "adapters.main.cache: no cache client named 'store'",
    ),
]


@pytest.fixture(autouse=True)
def first_party_hyperstore(monkeypatch: pytest.MonkeyPatch) -> None:
    """A first-party plugin name that no environment installs, for the install hint."""
    monkeypatch.setitem(KNOWN_PACKAGES, "hyperstore", "qts-data-hyperstore")


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_configuration_is_reported_with_file_key_and_problem(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "qts.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        open_stack(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert expected in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        open_stack(tmp_path / "nope.toml")


def test_mapping_errors_name_the_mapping() -> None:
    with pytest.raises(ConfigError, match=r"^<mapping>: stack.adapter: no adapter named 'main'"):
        open_stack({"adapters": {"x": {"type": "memory"}}})


def test_secret_in_a_bad_setting_is_masked(tmp_path: Path) -> None:
    mapping: dict[str, Any] = {
        "stack": {"adapter": "store", "cache": "hot"},
        "adapters": {"store": {"type": "memory"}},
        "caches": {
            "hot": {"type": "memory", "max_entries": "postgresql://qts:hunter2secret@db/qts"}
        },
    }
    with pytest.raises(ConfigError) as info:
        open_stack(mapping)
    assert "hunter2secret" not in str(info.value)
    assert "postgresql://qts:***@db/qts" in str(info.value)


def test_environment_override_errors_name_the_key() -> None:
    with pytest.raises(
        ConfigError, match=r"caches.hot.max_entries: Input should be a valid integer"
    ):
        open_stack(None, environ={"QTS_DATA__CACHES__HOT__MAX_ENTRIES": "lots"})


def test_cache_settings_are_validated_with_their_path() -> None:
    with pytest.raises(ConfigError, match=r"cache: ttl_ms.price must be positive \(got 0\)"):
        open_stack(None, environ={"QTS_DATA__CACHE__TTL_MS__PRICE": "0"})
    with pytest.raises(
        ConfigError, match=r"cache.breaker.window_size: Input should be greater than or equal to 1"
    ):
        open_stack(None, environ={"QTS_DATA__CACHE__BREAKER__WINDOW_SIZE": "0"})
