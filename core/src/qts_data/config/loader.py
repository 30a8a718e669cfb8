"""Reading a configuration: TOML file, mapping or the embedded default, then environment overrides.

Environment overrides: ``QTS_DATA__<KEY>__<KEY>...=value`` sets any key, e.g.
``QTS_DATA__ADAPTERS__DB__DSN=postgresql://...`` or
``QTS_DATA__CACHE__TTL_MS__PRICE=200``. Keys match case-insensitively (``-``
and ``_`` alike); the value is read as a TOML value when it is one (``200``,
``true``, ``["a", "b"]``) and as a string otherwise - except for a setting that is a
string (a password, a name): it gets the text as it is, so ``PASSWORD=12345678`` is
the string ``"12345678"``.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from qts_data.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

ENV_PREFIX = "QTS_DATA__"
ENV_CONFIG = "QTS_DATA_CONFIG"


@dataclass
class RawConfig:
    """The configuration data before validation, with where it came from."""

    data: dict[str, Any]
    source: str  # a file path, "<mapping>" or "<default>"
    base_dir: Path = field(default_factory=Path.cwd)
    overrides: list[str] = field(default_factory=list)  # key paths set from the environment
    #: The text of each environment override, by key path: a string-typed setting takes
    #: it as it is (``PASSWORD=12345678`` stays a string), see :func:`env_text_for`.
    env_text: dict[str, str] = field(default_factory=dict)


def default_config_text() -> str:
    """The embedded default configuration (memory adapter behind a memory cache)."""
    return resources.files("qts_data.config").joinpath("default.toml").read_text("utf-8")


def starter_config_text() -> str:
    """The commented starter configuration written by ``qts-data init``."""
    return resources.files("qts_data.config").joinpath("starter.toml").read_text("utf-8")


def parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = tomllib.loads(text)
        return data
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None


def load_raw_config(
    config: str | Path | Mapping[str, Any] | None, environ: Mapping[str, str]
) -> RawConfig:
    if config is None:
        raw = RawConfig(parse_toml(default_config_text(), "<default>"), "<default>")
    elif isinstance(config, Mapping):
        raw = RawConfig(copy.deepcopy(dict(config)), "<mapping>")
    elif isinstance(config, (str, Path)):
        path = Path(config).expanduser()
        if not path.exists():
            raise ConfigError(f"{path}: configuration file not found")
        if path.is_dir():
            raise ConfigError(f"{path}: is a folder, not a configuration file")
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
        raw = RawConfig(parse_toml(text, str(path)), str(path), path.resolve().parent)
    else:
        raise ConfigError(f"config must be a path, a mapping or None, not {type(config).__name__}")
    raw.env_text = {}
    raw.overrides = apply_env_overrides(raw.data, environ, raw.env_text)
    return raw


def _env_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _norm(key: str) -> str:
    return key.lower().replace("-", "_")


def apply_env_overrides(
    data: dict[str, Any], environ: Mapping[str, str], texts: dict[str, str] | None = None
) -> list[str]:
    """Apply ``QTS_DATA__A__B=value`` variables to ``data`` in place; returns the key paths set.

    ``texts``, when given, receives each variable's text by key path."""
    applied = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX):
            continue
        parts = list(name[len(ENV_PREFIX) :].split("__"))
        if not parts or any(not p for p in parts):
            raise ConfigError(f"environment variable {name}: empty key in the path")
        node = data
        path: list[str] = []
        for i, part in enumerate(parts):
            existing = next((k for k in node if _norm(k) == _norm(part)), None)
            key = existing if existing is not None else part.lower()
            path.append(key)
            if i == len(parts) - 1:
                node[key] = _env_value(environ[name])
            else:
                child = node.setdefault(key, {})
                if not isinstance(child, dict):
                    raise ConfigError(
                        f"environment variable {name}: {'.'.join(path)} is a value, not a table"
                    )
                node = child
        applied.append(".".join(path))
        if texts is not None:
            texts[".".join(path)] = environ[name]
    return applied
