"""Server URLs (``postgresql://``, ``redis://``) parsed once, with the password kept apart.

A password in a URL may hold any character a person picks - ``/ # ? @ % :`` and
spaces - and ``urllib.parse`` cuts it at the first ``/``, ``?`` or ``#``, then
reports the rest as a bad port, quoting it. Here the user information ends at the
*last* ``@`` of the URL, so it is never cut; percent escapes in it are decoded
(``%40`` is ``@``). The password is held as a :class:`~pydantic.SecretStr`, and
:class:`UrlError` messages name the setting and what is wrong, never any part of
the URL after its scheme: a host or a port can be a piece of a password that
held an ``@``. (So an ``@`` in a query value must be written ``%40``.)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlencode

from pydantic import SecretStr

__all__ = ["ServerUrl", "UrlError", "parse_server_url"]

MASK = "***"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]{0,15}$")


class UrlError(ValueError):
    """A server URL that cannot be used; the message never quotes the URL."""


@dataclass(frozen=True)
class ServerUrl:
    """``scheme://[user[:password]@][host][:port][/path][?query]``, decoded."""

    scheme: str
    host: str | None = None  # an IPv6 address without its brackets
    port: int | None = None
    username: str | None = None
    password: SecretStr | None = field(default=None, repr=False)
    path: str = ""  # decoded, without the leading "/"
    query: tuple[tuple[str, str], ...] = ()

    def unparse(self, *, password: str | None = None) -> str:
        """The URL with every part percent-encoded, the password given (default: none)."""
        shown = quote(password, safe="") if password is not None else None
        return self._render(shown)

    def _render(self, password: str | None) -> str:
        userinfo = ""
        if self.username is not None or password is not None:
            userinfo = quote(self.username or "", safe="")
            if password is not None:
                userinfo += ":" + password
            userinfo += "@"
        host = self.host or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{self.port}" if self.port is not None else ""
        path = "/" + quote(self.path, safe="") if self.path else ""
        query = "?" + urlencode(self.query) if self.query else ""
        return f"{self.scheme}://{userinfo}{host}{port}{path}{query}"

    @property
    def masked(self) -> str:
        """The URL with ``***`` for its password: safe to show and to log."""
        return self._render(MASK if self.password is not None else None)

    @property
    def without_password(self) -> str:
        """The URL without its password (a driver gets the password apart)."""
        return self.unparse()


def parse_server_url(
    raw: str, *, setting: str, schemes: Sequence[str] | None = None, example: str = "scheme://host"
) -> ServerUrl:
    """Parse ``raw`` for the setting ``setting``, which accepts the URL schemes ``schemes`` (any if None).

    :raises UrlError: naming ``setting`` and what is wrong, quoting at most the
        scheme (and ``example``, which the caller writes).
    """
    text = raw.strip()
    scheme, sep, rest = text.partition("://")
    if not sep or not _SCHEME.match(scheme):
        raise UrlError(f"{setting}: not a URL: write it as {example}")
    scheme = scheme.lower()
    if schemes is not None and scheme not in schemes:
        allowed = " or ".join(f"{s}://" for s in schemes)
        raise UrlError(
            f"{setting}: the scheme {scheme}:// is not supported: use {allowed}, e.g. {example}"
        )
    username: str | None = None
    password: SecretStr | None = None
    userinfo, at, rest_after = rest.rpartition("@")
    if at:
        rest = rest_after
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) if user else None
        if colon:
            password = SecretStr(unquote(secret))
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    hostport, tail = rest[:end], rest[end:]
    host, port = _host_and_port(hostport, setting)
    path, _, query_text = tail.partition("?")
    try:
        query = tuple(
            parse_qsl(query_text, keep_blank_values=True, strict_parsing=bool(query_text))
        )
    except ValueError:
        raise UrlError(f"{setting}: the query after ? is not name=value&...") from None
    return ServerUrl(
        scheme=scheme,
        host=host,
        port=port,
        username=username,
        password=password,
        path=unquote(path.removeprefix("/")),
        query=query,
    )


def _host_and_port(text: str, setting: str) -> tuple[str | None, int | None]:
    if text.startswith("["):
        host, bracket, after = text[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            raise UrlError(f"{setting}: an IPv6 host must be written in brackets, e.g. [::1]:5432")
        port_text = after[1:] if after else None
    else:
        host, colon, port_text_or_empty = text.partition(":")
        port_text = port_text_or_empty if colon else None
    if port_text is None or port_text == "":
        port = None
    elif port_text.isascii() and port_text.isdigit() and 0 < int(port_text) <= 65535:
        port = int(port_text)
    else:
        raise UrlError(f"{setting}: the port is not a number between 1 and 65535")
    if host and any(c in host for c in " @\\,"):
        raise UrlError(f"{setting}: the host is not a host name or address")
    return unquote(host) or None, port
