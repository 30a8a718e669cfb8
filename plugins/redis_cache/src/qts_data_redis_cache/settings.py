"""The settings of the ``redis_cache`` component and the parsing of its URL (no redis import here).

The URL may carry a user and a password (``redis://user:pw@host:6379/0``); it is
a :class:`~pydantic.SecretStr`, every error about it is raised at model level
(so the raw value is never echoed back), and :meth:`RedisCacheSettings.endpoint`
gives a :class:`Endpoint` whose ``masked_url`` shows the password as ``***``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from pydantic import ConfigDict, Field, SecretStr, model_validator

from qts_data.config.urls import MASK, UrlError, parse_server_url
from qts_data.plugins import Settings

__all__ = ["DEFAULT_URL", "Endpoint", "RedisCacheSettings", "parse_node", "parse_url"]

DEFAULT_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PORT = 6379
SCHEMES = ("redis", "rediss")
_SSL_FIELDS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
_HOST = re.compile(r"^[A-Za-z0-9._\-:%]+$")


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect, parsed from the URL and the settings (the password stays out of ``repr``)."""

    host: str
    port: int
    db: int = 0
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        """``host:port`` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def masked_url(self) -> str:
        """The URL with the password replaced by ``***`` (safe to show and log)."""
        scheme = "rediss" if self.tls else "redis"
        user = self.username or ""
        if self.password:
            userinfo = f"{user}:{MASK}@"
        elif user:
            userinfo = f"{user}@"
        else:
            userinfo = ""
        return f"{scheme}://{userinfo}{self.address}/{self.db}"


def parse_url(url: str) -> Endpoint:
    """Parse ``redis://`` / ``rediss://`` URLs. Errors never quote the URL (it may hold a password)."""
    try:
        parts = parse_server_url(
            url, setting="url", schemes=SCHEMES, example="redis://user:password@host:6379/0"
        )
    except UrlError as exc:
        raise ValueError(str(exc)) from None
    if not parts.host:
        raise ValueError("url has no host (e.g. redis://127.0.0.1:6379/0)")
    path = parts.path.strip("/")
    if not path:
        db = 0
    elif path.isdigit():
        db = int(path)
    else:
        raise ValueError("url path must be a database number (e.g. /0)")
    if parts.query:
        names = sorted({name for name, _ in parts.query})
        raise ValueError(
            f"url query options ({', '.join(names)}) are not supported: use the settings fields "
            "instead (username, password, ssl_*, socket_timeout_ms, ...)"
        )
    return Endpoint(
        host=parts.host,
        port=parts.port if parts.port is not None else DEFAULT_PORT,
        db=db,
        tls=parts.scheme == "rediss",
        username=parts.username,
        password=(parts.password.get_secret_value() or None) if parts.password else None,
    )


def parse_node(text: str) -> tuple[str, int]:
    """``"host:port"`` (or ``"[::1]:port"``) as ``(host, port)``."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not _HOST.match(host) or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"cluster node {text!r} is not host:port (e.g. 10.0.0.5:7000)")
    return host, int(port)


class RedisCacheSettings(Settings):
    """``[caches.NAME] type = "redis_cache"``: a Redis server or Redis Cluster as the stack's cache."""

    # Validation errors never show the input: the URL may hold a password.
    model_config = ConfigDict(hide_input_in_errors=True)

    url: SecretStr = Field(
        default=SecretStr(DEFAULT_URL),
        description="redis://[user[:password]@]host[:port][/db], or rediss:// for TLS",
    )
    username: str | None = Field(default=None, description="ACL user (overrides the URL's)")
    password: SecretStr | None = Field(default=None, description="password (overrides the URL's)")
    ssl_ca_certs: str | None = Field(default=None, description="CA bundle (rediss:// only)")
    ssl_certfile: str | None = Field(
        default=None, description="client certificate (rediss:// only)"
    )
    ssl_keyfile: str | None = Field(default=None, description="client key (rediss:// only)")
    ssl_cert_reqs: Literal["required", "optional", "none"] = Field(
        default="required", description="server certificate verification"
    )
    ssl_check_hostname: bool = Field(
        default=True,
        description='check the server certificate\'s host name (not with ssl_cert_reqs = "none")',
    )
    prefix: str = Field(
        default="",
        description="prepended to every key and channel (namespacing, test isolation)",
    )
    pool_min: int = Field(default=10, ge=0, description="connections opened at open()")
    pool_max: int = Field(default=50, ge=1, description="most connections in use at once")
    pool_timeout_ms: int = Field(
        default=1000,
        gt=0,
        description=(
            "a caller waiting for a free connection fails (BackendError) when no command "
            "completes for this long: the pool is stuck. A detector, not a budget: a busy "
            "host pauses a healthy pool for tens of milliseconds, so keep it well above that"
        ),
    )
    socket_timeout_ms: int = Field(
        default=100, gt=0, description="longest wait for a reply (or a write) on a connection"
    )
    connect_timeout_ms: int = Field(default=100, gt=0, description="longest TCP/TLS connect")
    health_check_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="pub/sub: PING after this long without traffic; no answer within it = lost",
    )
    cluster: bool = Field(default=False, description="the URL names a Redis Cluster node")
    cluster_nodes: list[str] = Field(
        default_factory=list, description="more startup nodes (host:port) of the cluster"
    )
    read_from_replicas: bool = Field(default=False, description="cluster: read from replicas")
    client_name: str | None = Field(default=None, description="CLIENT SETNAME of each connection")
    lazy_connect: bool = Field(
        default=False,
        description="open() does not connect (the stack starts while Redis is down)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> RedisCacheSettings:
        # Model-level on purpose: a field-level error would carry the raw URL as its input.
        endpoint = parse_url(self.url.get_secret_value())
        if not endpoint.tls:
            given = [name for name in _SSL_FIELDS if getattr(self, name) is not None]
            if self.ssl_cert_reqs != "required":
                given.append("ssl_cert_reqs")
            if not self.ssl_check_hostname:
                given.append("ssl_check_hostname")
            if given:
                raise ValueError(
                    f"{', '.join(given)}: TLS options need a rediss:// url (the url is redis://)"
                )
        if self.pool_min > self.pool_max:
            raise ValueError(
                f"pool_min ({self.pool_min}) is larger than pool_max ({self.pool_max})"
            )
        for node in self.cluster_nodes:
            parse_node(node)
        if not self.cluster:
            if self.cluster_nodes:
                raise ValueError("cluster_nodes: only for a cluster (set cluster = true)")
            if self.read_from_replicas:
                raise ValueError("read_from_replicas: only for a cluster (set cluster = true)")
        elif endpoint.db != 0:
            raise ValueError(f"url: a Redis Cluster has only database 0, not /{endpoint.db}")
        return self

    def endpoint(self) -> Endpoint:
        """The URL parsed, with ``username`` / ``password`` settings taking precedence."""
        endpoint = parse_url(self.url.get_secret_value())
        username = self.username if self.username is not None else endpoint.username
        password = (
            self.password.get_secret_value() if self.password is not None else endpoint.password
        )
        return Endpoint(
            host=endpoint.host,
            port=endpoint.port,
            db=endpoint.db,
            tls=endpoint.tls,
            username=username,
            password=password,
        )

    def startup_nodes(self) -> list[tuple[str, int]]:
        """The cluster's startup nodes: the URL's host first, then ``cluster_nodes``."""
        endpoint = parse_url(self.url.get_secret_value())
        nodes = [(endpoint.host, endpoint.port)]
        for text in self.cluster_nodes:
            node = parse_node(text)
            if node not in nodes:
                nodes.append(node)
        return nodes


class RedisStreamSettings(RedisCacheSettings):
    """The ``redis_cache`` event sink: the connection settings of the cache, plus the stream."""

    stream: str = Field(
        default="qts:events", min_length=1, description="the stream key (under prefix)"
    )
    maxlen: int = Field(default=100_000, ge=1, description="entries kept in the stream")
    approximate: bool = Field(
        default=True, description="trim with MAXLEN ~ (cheap) rather than exactly"
    )

    def connection(self) -> RedisCacheSettings:
        """The connection part, for the client the sink writes through."""
        values = {name: getattr(self, name) for name in RedisCacheSettings.model_fields}
        return RedisCacheSettings.model_validate(values)
