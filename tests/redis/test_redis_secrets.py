"""No command of the CLI shows a Redis password, whatever it holds and wherever it fails.

The cache of a cached stack gets every awkward secret in its URL and in its
``password`` field, through TOML and through the environment, on every error path
(bad scheme, bad port, a server that is down, a number where a string belongs, a
server that has no password set and refuses AUTH); every command runs on each
configuration with the masking net off, and stdout, stderr and the log records
are searched for any piece of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from qts_data.config.urls import parse_server_url
from qts_data.testing.secret_search import (
    AWKWARD_SECRETS,
    SecretCase,
    assert_check_hides,
    assert_no_command_shows,
)

pytestmark = pytest.mark.slow

ENV_KEY = "QTS_DATA__CACHES__HOT__"
DOWN = "127.0.0.1:1"


def _toml(value: str) -> str:
    return json.dumps(value)  # a TOML basic string for these characters


def _url(secret: str, address: str, scheme: str = "redis") -> str:
    return f"{scheme}://:{secret}@{address}/0"


Build = Callable[[str, str], SecretCase]

#: ``check`` on a stack whose cache is down or refuses AUTH still serves from the store:
#: exit 1 (DEGRADED) naming the cache.
CASES: dict[str, Build] = {
    "url, server without a password": lambda s, up: SecretCase(
        f"url = {_toml(_url(s, up))}", {}, 1, "cache:hot"
    ),
    "url, server down": lambda s, up: SecretCase(
        f"url = {_toml(_url(s, DOWN))}", {}, 1, "cache:hot"
    ),
    "url, bad scheme": lambda s, up: SecretCase(
        f"url = {_toml(_url(s, up, 'http'))}", {}, 2, "caches.hot.url: the scheme http://"
    ),
    "url, bad port": lambda s, up: SecretCase(
        f"url = {_toml(_url(s, '127.0.0.1:6x79'))}", {}, 2, "caches.hot.url: the port is not"
    ),
    "url in the environment, server down": lambda s, up: SecretCase(
        "", {f"{ENV_KEY}URL": _url(s, DOWN)}, 1, "cache:hot"
    ),
    "password field, server down": lambda s, up: SecretCase(
        f'url = "redis://{DOWN}/0"\npassword = {_toml(s)}', {}, 1, "cache:hot"
    ),
    "password in the environment, server without a password": lambda s, up: SecretCase(
        f'url = "redis://{up}/0"', {f"{ENV_KEY}PASSWORD": s}, 1, "cache:hot"
    ),
    "password of the wrong type": lambda s, up: SecretCase(
        f"password = {s if s.isdigit() else '[' + _toml(s) + ']'}",
        {},
        2,
        "caches.hot.password: Input should be a valid string",
    ),
}


@pytest.fixture(scope="module")
def address(redis_url: str) -> str:
    url = parse_server_url(redis_url, setting="QTS_TEST_REDIS_URL")
    if url.password is not None:
        pytest.fail("these tests need a Redis without a password (QTS_TEST_REDIS_URL has one)")
    return f"{url.host or '127.0.0.1'}:{url.port or 6379}"


def _write(tmp_path: Path, case: SecretCase, prefix: str) -> Path:
    config = tmp_path / "qts.toml"
    config.write_text(
        '[stack]\nadapter = "main"\ncache = "hot"\n\n'
        '[adapters.store]\ntype = "memory"\n\n'
        '[adapters.main]\ntype = "cached"\nadapter = "store"\ncache = "hot"\n\n'
        f'[caches.hot]\ntype = "redis_cache"\nprefix = "{prefix}"\n' + case.toml + "\n",
        "utf-8",
    )
    return config


@pytest.mark.parametrize("secret", AWKWARD_SECRETS)
@pytest.mark.parametrize("case_name", list(CASES))
def test_check_says_what_is_wrong_without_the_secret(
    address: str, redis_prefix: str, tmp_path: Path, case_name: str, secret: str
) -> None:
    case = CASES[case_name](secret, address)
    assert_check_hides(_write(tmp_path, case, redis_prefix), secret, case)


@pytest.mark.parametrize("secret", [AWKWARD_SECRETS[0], AWKWARD_SECRETS[-1]])
@pytest.mark.parametrize("case_name", list(CASES))
def test_no_command_shows_the_secret(
    address: str, redis_prefix: str, tmp_path: Path, case_name: str, secret: str
) -> None:
    case = CASES[case_name](secret, address)
    assert_no_command_shows(_write(tmp_path, case, redis_prefix), tmp_path, secret, case)
