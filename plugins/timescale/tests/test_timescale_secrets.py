"""No command of the CLI shows a timescale password, whatever it holds and wherever it fails.

Every awkward secret (digits only; ``/ # ? @ % :`` and spaces) goes into a DSN and
into the ``password`` field, through TOML and through the environment, on every
error path (bad scheme, bad port, unreachable server, a number where a string
belongs) and on a reachable server; every command runs on each configuration
with the masking net off (:func:`~qts_data.testing.secret_search.masking_net_off`),
and stdout, stderr and the log records are searched for any piece of it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from timescale_support import migrated

from qts_data.config.urls import parse_server_url
from qts_data.testing import PostgresDatabaseFactory
from qts_data.testing.secret_search import (
    AWKWARD_SECRETS,
    SecretCase,
    assert_check_hides,
    assert_no_command_shows,
)

pytestmark = pytest.mark.slow

ENV_KEY = "QTS_DATA__ADAPTERS__MAIN__"


def _toml(value: str) -> str:
    return json.dumps(value)  # a TOML basic string for these characters


@dataclass(frozen=True)
class Server:
    user: str
    host: str
    port: int
    database: str


def _dsn(
    secret: str, server: Server, *, scheme: str = "postgresql", port: str | None = None
) -> str:
    return (
        f"{scheme}://{server.user}:{secret}@{server.host}:{port or server.port}/{server.database}"
    )


UNREACHABLE = Server("qts", "127.0.0.1", 1, "qts")

Build = Callable[[str, Server], SecretCase]

CASES: dict[str, Build] = {
    "dsn, server up": lambda s, srv: SecretCase(
        f"dsn = {_toml(_dsn(s, srv))}", {}, 0, "stack: HEALTHY"
    ),
    "dsn, server down": lambda s, srv: SecretCase(
        f"dsn = {_toml(_dsn(s, UNREACHABLE))}", {}, 1, "cannot reach PostgreSQL at 127.0.0.1:1/qts"
    ),
    "dsn, bad scheme": lambda s, srv: SecretCase(
        f"dsn = {_toml(_dsn(s, srv, scheme='mysql'))}",
        {},
        2,
        "adapters.main.dsn: the scheme mysql://",
    ),
    "dsn, bad port": lambda s, srv: SecretCase(
        f"dsn = {_toml(_dsn(s, srv, port='5x32'))}", {}, 2, "adapters.main.dsn: the port is not"
    ),
    "dsn in the environment, server down": lambda s, srv: SecretCase(
        "", {f"{ENV_KEY}DSN": _dsn(s, UNREACHABLE)}, 1, "cannot reach PostgreSQL"
    ),
    "read_dsn, replica down": lambda s, srv: SecretCase(
        f"dsn = {_toml(_dsn('', srv).replace(':@', '@'))}\n"
        f"read_dsn = {_toml(_dsn(s, UNREACHABLE))}",
        {},
        1,
        "replica 127.0.0.1:1/qts down, reads served by the primary",
    ),
    "password field, server down": lambda s, srv: SecretCase(
        f'host = "127.0.0.1"\nport = 1\npassword = {_toml(s)}', {}, 1, "cannot reach PostgreSQL"
    ),
    "password in the environment, server up": lambda s, srv: SecretCase(
        f'host = "{srv.host}"\nport = {srv.port}\nuser = "{srv.user}"\ndatabase = "{srv.database}"',
        {f"{ENV_KEY}PASSWORD": s},
        0,
        "",
    ),
    "password of the wrong type": lambda s, srv: SecretCase(
        f'host = "127.0.0.1"\npassword = {s if s.isdigit() else "[" + _toml(s) + "]"}',
        {},
        2,
        "adapters.main.password: Input should be a valid string",
    ),
}


@pytest.fixture(scope="module")
def server(make_postgres_database: PostgresDatabaseFactory) -> Server:
    dsn = make_postgres_database()
    asyncio.run(migrated(dsn))
    url = parse_server_url(dsn, setting="QTS_TEST_POSTGRES_DSN")
    if url.password is not None:
        pytest.fail(
            "these tests need a server that trusts its user (QTS_TEST_POSTGRES_DSN has a password)"
        )
    return Server(url.username or "postgres", url.host or "127.0.0.1", url.port or 5432, url.path)


def _write(tmp_path: Path, case: SecretCase) -> Path:
    config = tmp_path / "qts.toml"
    config.write_text(
        '[adapters.main]\ntype = "timescale"\nconnect_timeout_s = 2\n'
        "retry_timeout_s = 0\n" + case.toml + "\n",
        "utf-8",
    )
    return config


@pytest.mark.parametrize("secret", AWKWARD_SECRETS)
@pytest.mark.parametrize("case_name", list(CASES))
def test_check_says_what_is_wrong_without_the_secret(
    server: Server, tmp_path: Path, case_name: str, secret: str
) -> None:
    case = CASES[case_name](secret, server)
    assert_check_hides(_write(tmp_path, case), secret, case)


@pytest.mark.parametrize("secret", [AWKWARD_SECRETS[0], AWKWARD_SECRETS[-1]])
@pytest.mark.parametrize("case_name", list(CASES))
def test_no_command_shows_the_secret(
    server: Server, tmp_path: Path, case_name: str, secret: str
) -> None:
    case = CASES[case_name](secret, server)
    assert_no_command_shows(_write(tmp_path, case), tmp_path, secret, case)
