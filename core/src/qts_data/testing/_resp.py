"""A tiny, typed RESP2 client for the test fixtures (no redis-py in the core).

It speaks just enough of the Redis protocol to administer test servers: send
any command, pipeline a batch, iterate ``SCAN`` to completion, read ``INFO``
and find the masters of a Redis Cluster. Every socket operation has a
timeout; a timed-out or broken connection is closed and must not be reused.

Replies are mapped to Python as: simple string -> ``str``, bulk string ->
``bytes`` (``None`` for a null bulk), integer -> ``int``, array -> ``list``
(``None`` for a null array), error -> :class:`RespError` (raised by
:meth:`RespClient.command`, returned in place by :meth:`RespClient.pipeline`).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TypeAlias
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = [
    "RedisAddress",
    "RespClient",
    "RespError",
    "RespProtocolError",
    "RespReply",
    "cluster_masters",
    "glob_escape",
    "parse_redis_url",
]

CommandArg: TypeAlias = str | bytes | int | float

DEFAULT_TIMEOUT = 5.0
_CRLF = b"\r\n"


class RespError(Exception):
    """An error reply of the server (``-ERR ...``, ``-MOVED ...``, ...)."""

    @property
    def kind(self) -> str:
        """The error prefix, e.g. ``"ERR"``, ``"WRONGTYPE"``, ``"MOVED"``."""
        text = str(self)
        return text.split(" ", 1)[0] if text else ""


RespReply: TypeAlias = str | bytes | int | RespError | list["RespReply"] | None


class RespProtocolError(ConnectionError):
    """The peer sent something that is not RESP2, or closed the connection."""


@dataclass(frozen=True)
class RedisAddress:
    """Where a Redis server is and how to log in, parsed from a URL."""

    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: str | None = None
    unix_path: str | None = None

    def masked_url(self) -> str:
        """The address as a URL with the password replaced by ``***``."""
        auth = ""
        if self.username is not None or self.password is not None:
            auth = (self.username or "") + (":***" if self.password is not None else "") + "@"
        if self.unix_path is not None:
            return f"unix://{auth}{self.unix_path}?db={self.db}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"redis://{auth}{host}:{self.port}/{self.db}"


def parse_redis_url(url: str) -> RedisAddress:
    """Parse ``redis://[[user]:password@]host[:port][/db]`` or ``unix://[...@]/path[?db=N]``.

    TLS (``rediss://``) is not supported by this minimal client.
    """
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if parts.scheme == "redis":
        db_text = parts.path.lstrip("/") or query.get("db", ["0"])[0]
        return RedisAddress(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            db=int(db_text or "0"),
            username=username,
            password=password,
        )
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError(f"unix:// Redis URL without a socket path: {url!r}")
        return RedisAddress(
            db=int(query.get("db", ["0"])[0]),
            username=username,
            password=password,
            unix_path=parts.path,
        )
    if parts.scheme == "rediss":
        raise ValueError("rediss:// (TLS) is not supported by the test fixtures' RESP client")
    raise ValueError(f"not a Redis URL (redis:// or unix://): {url!r}")


def glob_escape(text: str) -> str:
    """Escape ``text`` so that it matches itself literally in a ``SCAN MATCH`` pattern."""
    out = []
    for char in text:
        if char in "*?[]\\":
            out.append("\\")
        out.append(char)
    return "".join(out)


def _encode_arg(arg: CommandArg) -> bytes:
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        return arg.encode()
    if isinstance(arg, bool):
        raise TypeError("booleans are ambiguous as Redis arguments; pass 0/1 or a string")
    if isinstance(arg, (int, float)):
        return repr(arg).encode()
    raise TypeError(f"cannot send {type(arg).__name__} to Redis")


def encode_command(args: Sequence[CommandArg]) -> bytes:
    """Encode one command as a RESP array of bulk strings."""
    if not args:
        raise ValueError("empty Redis command")
    chunks = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = _encode_arg(arg)
        chunks.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(chunks)


class RespClient:
    """One blocking connection to a Redis server.

    Use :meth:`connect` (or :meth:`from_url`) to open it; it is a context
    manager that closes the socket on exit. Not thread-safe.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock: socket.socket | None = sock
        self._buf = bytearray()

    # -- opening / closing ---------------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        address: RedisAddress | str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float | None = None,
    ) -> RespClient:
        """Connect, authenticate and select the database of ``address`` (an address or URL).

        ``timeout`` bounds every later read/write; ``connect_timeout`` (default:
        ``timeout``) bounds the TCP connect.
        """
        if isinstance(address, str):
            address = parse_redis_url(address)
        sock: socket.socket
        if address.unix_path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(connect_timeout if connect_timeout is not None else timeout)
            try:
                sock.connect(address.unix_path)
            except BaseException:
                sock.close()
                raise
        else:
            sock = socket.create_connection(
                (address.host, address.port),
                timeout=connect_timeout if connect_timeout is not None else timeout,
            )
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(timeout)
        client = cls(sock)
        try:
            if address.password is not None:
                if address.username:
                    client.command("AUTH", address.username, address.password)
                else:
                    client.command("AUTH", address.password)
            if address.db:
                client.command("SELECT", address.db)
        except BaseException:
            client.close()
            raise
        return client

    from_url = connect

    def close(self) -> None:
        """Close the socket (idempotent)."""
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._buf.clear()

    @property
    def closed(self) -> bool:
        return self._sock is None

    def settimeout(self, timeout: float) -> None:
        """Change the timeout of later reads and writes."""
        self._socket().settimeout(timeout)

    def __enter__(self) -> RespClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- commands --------------------------------------------------------------------------------

    def command(self, *args: CommandArg) -> RespReply:
        """Send one command and return its reply; an error reply is raised as :class:`RespError`."""
        reply = self.pipeline([args])[0]
        if isinstance(reply, RespError):
            raise reply
        return reply

    def pipeline(self, commands: Iterable[Sequence[CommandArg]]) -> list[RespReply]:
        """Send all commands at once, then read one reply per command (errors returned in place)."""
        encoded = [encode_command(cmd) for cmd in commands]
        if not encoded:
            return []
        sock = self._socket()
        try:
            sock.sendall(b"".join(encoded))
            return [self._read_reply() for _ in encoded]
        except BaseException:
            # A half-read reply stream cannot be resynchronised: drop the connection.
            self.close()
            raise

    def ping(self) -> bool:
        """``PING``; true when the server answers ``PONG``."""
        return self.command("PING") == "PONG"

    def info(self, section: str | None = None) -> dict[str, str]:
        """``INFO [section]`` parsed into ``{field: value}`` (section headers dropped)."""
        raw = self.command("INFO", section) if section else self.command("INFO")
        if not isinstance(raw, bytes):
            raise RespProtocolError(f"unexpected INFO reply: {raw!r}")
        result: dict[str, str] = {}
        for line in raw.decode(errors="replace").splitlines():
            if not line or line.startswith("#") or ":" not in line:
                continue
            key, value = line.split(":", 1)
            result[key] = value
        return result

    def scan_iter(self, match: str | None = None, count: int = 1000) -> Iterator[bytes]:
        """Iterate ``SCAN`` until the server returns cursor 0; keys may repeat (as with SCAN)."""
        for page in self.scan_pages(match, count):
            yield from page

    def scan_pages(self, match: str | None = None, count: int = 1000) -> Iterator[list[bytes]]:
        """Like :meth:`scan_iter` but yields each page of keys as one list."""
        cursor = b"0"
        while True:
            args: list[CommandArg] = ["SCAN", cursor]
            if match is not None:
                args += ["MATCH", match]
            args += ["COUNT", count]
            reply = self.command(*args)
            if (
                not isinstance(reply, list)
                or len(reply) != 2
                or not isinstance(reply[0], bytes)
                or not isinstance(reply[1], list)
            ):
                raise RespProtocolError(f"unexpected SCAN reply: {reply!r}")
            keys = [key for key in reply[1] if isinstance(key, bytes)]
            if keys:
                yield keys
            cursor = reply[0]
            if cursor == b"0":
                return

    # -- protocol --------------------------------------------------------------------------------

    def _socket(self) -> socket.socket:
        if self._sock is None:
            raise RespProtocolError("the connection is closed")
        return self._sock

    def _fill(self) -> None:
        data = self._socket().recv(65536)
        if not data:
            raise RespProtocolError("the server closed the connection")
        self._buf += data

    def _read_line(self) -> bytes:
        start = 0
        while True:
            end = self._buf.find(_CRLF, start)
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[: end + 2]
                return line
            start = max(0, len(self._buf) - 1)
            self._fill()

    def _read_exact(self, size: int) -> bytes:
        while len(self._buf) < size + 2:
            self._fill()
        data = bytes(self._buf[:size])
        if self._buf[size : size + 2] != _CRLF:
            raise RespProtocolError("bulk string not terminated by CRLF")
        del self._buf[: size + 2]
        return data

    def _read_reply(self) -> RespReply:
        line = self._read_line()
        if not line:
            raise RespProtocolError("empty reply line")
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode(errors="replace")
        if kind == b"-":
            return RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self._read_exact(size)
        if kind == b"*":
            size = int(rest)
            if size < 0:
                return None
            return [self._read_reply() for _ in range(size)]
        raise RespProtocolError(f"not a RESP2 reply: {line[:80]!r}")


def cluster_masters(client: RespClient) -> list[RedisAddress] | None:
    """The reachable masters of the cluster ``client`` is connected to, or ``None`` if not a cluster.

    Based on ``INFO cluster`` and ``CLUSTER NODES``; masters flagged ``fail`` or
    ``noaddr`` are left out.
    """
    if client.info("cluster").get("cluster_enabled") != "1":
        return None
    raw = client.command("CLUSTER", "NODES")
    if not isinstance(raw, bytes):
        raise RespProtocolError(f"unexpected CLUSTER NODES reply: {raw!r}")
    masters: list[RedisAddress] = []
    for line in raw.decode().splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        flags = set(fields[2].split(","))
        if "master" not in flags or flags & {"fail", "noaddr", "handshake"}:
            continue
        addr = fields[1].split("@", 1)[0]
        host, _, port = addr.rpartition(":")
        if not host or not port or port == "0":
            continue
        masters.append(RedisAddress(host=host.strip("[]"), port=int(port)))
    return masters
