"""Server URLs: passwords of any characters survive parsing, and errors never quote the URL."""

from __future__ import annotations

import pytest

from qts_data.config.urls import ServerUrl, UrlError, parse_server_url
from qts_data.testing.secret_search import AWKWARD_SECRETS, secret_pieces

PG = ("postgresql", "postgres")


def pg(text: str) -> ServerUrl:
    return parse_server_url(text, setting="dsn", schemes=PG, example="postgresql://qts@h/qts")


@pytest.mark.parametrize("secret", AWKWARD_SECRETS)
def test_a_password_of_any_characters_is_kept_whole(secret: str) -> None:
    url = pg(f"postgresql://qts:{secret}@db.example:6432/trading?sslmode=require")
    assert url.password is not None
    expected = secret.replace("%41", "A")  # a %XX escape is decoded
    assert url.password.get_secret_value() == expected
    assert (url.username, url.host, url.port, url.path) == ("qts", "db.example", 6432, "trading")
    assert url.query == (("sslmode", "require"),)
    assert url.masked == "postgresql://qts:***@db.example:6432/trading?sslmode=require"
    assert secret not in repr(url)
    # Written back with the password encoded, it parses to the same password.
    again = pg(url.unparse(password=expected))
    assert again.password is not None and again.password.get_secret_value() == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://h/db", ServerUrl("postgresql", "h", None, None, None, "db")),
        ("postgres://u@h", ServerUrl("postgres", "h", None, "u", None, "")),
        ("postgresql://u@[::1]:5432/db", ServerUrl("postgresql", "::1", 5432, "u", None, "db")),
        ("postgresql:///db?host=/run/pg", ServerUrl("postgresql", None, None, None, None, "db", (("host", "/run/pg"),))),
        ("POSTGRESQL://u%40x@h/d%2Fb", ServerUrl("postgresql", "h", None, "u@x", None, "d/b")),
    ],
)  # fmt: skip
def test_url_forms(text: str, expected: ServerUrl) -> None:
    assert pg(text) == expected


def test_the_url_without_its_password_is_for_the_driver() -> None:
    url = pg("postgresql://qts:Zq7Vw/Xk3Jp@[::1]:5432/qts")
    assert url.without_password == "postgresql://qts@[::1]:5432/qts"
    assert pg("postgresql://h/qts").without_password == "postgresql://h/qts"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mysql://qts:{s}@h/qts", "dsn: the scheme mysql:// is not supported: use postgresql:// or postgres://"),
        ("qts:{s}@h/qts", "dsn: not a URL: write it as postgresql://qts@h/qts"),
        ("{s}", "dsn: not a URL"),
        ("postgresql://qts:{s}@h:5x32/qts", "dsn: the port is not a number between 1 and 65535"),
        ("postgresql://qts:{s}@h:0/qts", "dsn: the port is not a number"),
        ("postgresql://qts:{s}@h:65536/qts", "dsn: the port is not a number"),
        ("postgresql://qts:{s}@[::1/qts", "dsn: an IPv6 host must be written in brackets"),
        ("postgresql://qts:{s}@h/qts?a", "dsn: the query after ? is not name=value"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("secret", AWKWARD_SECRETS)
def test_errors_name_the_setting_and_quote_nothing_of_the_url(
    text: str, message: str, secret: str
) -> None:
    with pytest.raises(UrlError) as caught:
        pg(text.format(s=secret))
    shown = str(caught.value)
    assert shown.startswith(message)
    assert not [piece for piece in secret_pieces(secret) if piece in shown]


def test_any_scheme_when_none_is_required() -> None:
    assert parse_server_url("amqp://guest:pw@h:5672/", setting="url").scheme == "amqp"
