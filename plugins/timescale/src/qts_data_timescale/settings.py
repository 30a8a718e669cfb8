"""Settings of the ``timescale`` adapter (``[adapters.NAME] type = "timescale"``).

Importable without asyncpg: the plugin registers this model at discovery and
imports the driver only when a stack builds the adapter.

The server is given either as one ``dsn`` (``postgresql://user:pw@host:5432/db``)
or as ``host`` / ``port`` / ``database`` / ``user`` fields; ``password`` and
``sslmode`` may accompany either (the password then overrides the DSN's, so the
DSN can live in the file and the password in ``QTS_DATA__ADAPTERS__DB__PASSWORD``).
Every secret is a ``SecretStr``: masked in ``qts-data check``, logs and errors.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, model_validator

from qts_data.config.urls import ServerUrl, parse_server_url
from qts_data.plugins import Settings

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
Flavour = Literal["timescale", "plain"]

_SCHEMES = ("postgresql", "postgres")
_ADDRESS_FIELDS = ("host", "port", "database", "user")


def _parse_dsn(value: SecretStr, name: str) -> ServerUrl:
    return parse_server_url(
        value.get_secret_value(),
        setting=name,
        schemes=_SCHEMES,
        example="postgresql://qts@127.0.0.1:5432/qts",
    )


async def keep_session(connection: Any) -> None:
    """The pools' ``reset``: nothing to undo (asyncpg still rolls back an open transaction)."""


class TimescaleSettings(Settings):
    """Connection, pool, schema, ingest, replica and alert settings."""

    # -- where --------------------------------------------------------------------------
    dsn: SecretStr | None = Field(
        default=None,
        description="postgresql://user:password@host:port/database (the password is masked everywhere)",
    )
    host: str | None = Field(
        default=None, description="server host (when no dsn); default 127.0.0.1"
    )
    port: int | None = Field(default=None, ge=1, le=65535, description="server port; default 5432")
    database: str | None = Field(default=None, description="database name; default qts")
    user: str | None = Field(default=None, description="role name; default qts")
    password: SecretStr | None = Field(default=None, description="password (overrides the dsn's)")
    sslmode: SslMode | None = Field(
        default=None,
        description="libpq sslmode: disable, allow, prefer, require, verify-ca, verify-full",
    )
    read_dsn: SecretStr | None = Field(
        default=None,
        description="a streaming read replica: reads go there while it is up and lags at most read_max_lag_s",
    )

    # -- pool ---------------------------------------------------------------------------
    pool_min_size: int = Field(
        default=5, ge=0, description="connections kept open (seeds/002 §6.2)"
    )
    pool_max_size: int = Field(
        default=20, ge=1, description="most connections at once (seeds/002 §6.2)"
    )
    pgbouncer: bool = Field(
        default=False,
        description="behind PgBouncer in transaction mode: no prepared-statement cache, no session state",
    )
    statement_cache_size: int = Field(
        default=100,
        ge=0,
        description="prepared statements cached per connection (0 with pgbouncer)",
    )
    connect_timeout_s: float = Field(default=5.0, gt=0, description="connecting to the server")
    command_timeout_s: float | None = Field(
        default=60.0, gt=0, description="one statement; None waits forever"
    )
    close_timeout_s: float = Field(
        default=5.0, gt=0, description="graceful close of the pools before the connections are cut"
    )
    retry_timeout_s: float = Field(
        default=30.0,
        ge=0,
        description="how long idempotent operations retry through a lost connection (server restart)",
    )
    application_name: str = Field(default="qts-data", max_length=63)

    # -- schema -------------------------------------------------------------------------
    timescaledb: Literal["auto", "require", "off"] = Field(
        default="auto",
        description="auto: use TimescaleDB where the extension exists, plain PostgreSQL otherwise; "
        "require: fail without it; off: plain PostgreSQL even where it exists",
    )
    auto_migrate: bool = Field(
        default=False, description="bring the schema to the newest version when the adapter opens"
    )

    # -- ingest -------------------------------------------------------------------------
    ingest_method: Literal["copy", "unnest"] = Field(
        default="copy",
        description="copy: binary COPY into a staging table (fastest); unnest: one INSERT of arrays "
        "per batch (for servers or proxies that refuse COPY)",
    )
    ingest_pipeline: bool = Field(
        default=True,
        description="send the next batch on a second connection while the server inserts the previous one",
    )
    refresh_after_backfill: bool = Field(
        default=True,
        description="TimescaleDB: refresh ohlcv_1m over ticks ingested below its watermark",
    )

    # -- replica ------------------------------------------------------------------------
    read_max_lag_s: float = Field(
        default=10.0, ge=0, description="reads leave the replica while it lags more than this"
    )
    replica_check_interval_s: float = Field(
        default=1.0, gt=0, description="how often the replica's lag and health are measured"
    )

    # -- alert thresholds (seeds/002 §7.3): past one, health_check says DEGRADED ---------
    alert_pool_use: float = Field(
        default=0.9, gt=0, le=1, description="pool use above this fraction"
    )
    alert_query_p99_ms: float = Field(default=500.0, gt=0, description="p99 of recent operations")
    alert_replication_lag_s: float = Field(default=10.0, ge=0, description="replica lag")

    _dsn_url: ServerUrl | None = PrivateAttr(default=None)
    _read_url: ServerUrl | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _consistent(self) -> TimescaleSettings:
        # Model-level on purpose: a field-level error would carry the raw DSN as its input.
        self._dsn_url = _parse_dsn(self.dsn, "dsn") if self.dsn is not None else None
        self._read_url = (
            _parse_dsn(self.read_dsn, "read_dsn") if self.read_dsn is not None else None
        )
        if self.dsn is not None:
            both = [name for name in _ADDRESS_FIELDS if getattr(self, name) is not None]
            if both:
                raise ValueError(
                    f"give either dsn or {'/'.join(_ADDRESS_FIELDS)}, not both (also set: {', '.join(both)})"
                )
        if self.pool_min_size > self.pool_max_size:
            raise ValueError(
                f"pool_min_size ({self.pool_min_size}) exceeds pool_max_size ({self.pool_max_size})"
            )
        return self

    # -- derived ------------------------------------------------------------------------
    def connect_kwargs(self, *, replica: bool = False) -> dict[str, Any]:
        """Keyword arguments of ``asyncpg.create_pool`` for the primary or the replica."""
        kwargs: dict[str, Any] = {}
        url = self._read_url if replica else self._dsn_url
        if replica and url is None:
            raise ValueError("no read_dsn is configured")
        if url is not None:
            # The password goes to asyncpg apart from the URL, whatever characters it holds.
            kwargs["dsn"] = url.without_password
            if url.password is not None:
                kwargs["password"] = url.password.get_secret_value()
        else:
            kwargs.update(
                host=self.host or "127.0.0.1",
                port=self.port or 5432,
                database=self.database or "qts",
                user=self.user or "qts",
            )
        if self.password is not None:
            kwargs["password"] = self.password.get_secret_value()
        if self.sslmode is not None:
            kwargs["ssl"] = self.sslmode
        kwargs["statement_cache_size"] = 0 if self.pgbouncer else self.statement_cache_size
        kwargs["timeout"] = self.connect_timeout_s
        kwargs["command_timeout"] = self.command_timeout_s
        kwargs["server_settings"] = {"application_name": self.application_name}
        # The adapter leaves no session state behind (no SET, LISTEN, cursors or
        # session locks), so a released connection needs no RESET ALL round trip.
        kwargs["reset"] = keep_session
        return kwargs

    def address(self, *, replica: bool = False) -> str:
        """Where the adapter connects, for messages: ``host:port/database`` (never a password)."""
        url = self._read_url if replica else self._dsn_url
        if url is not None:
            host = url.host or "localhost"
            if ":" in host:
                host = f"[{host}]"
            database = url.path or url.username or "postgres"
            return f"{host}:{url.port or 5432}/{database}"
        return f"{self.host or '127.0.0.1'}:{self.port or 5432}/{self.database or 'qts'}"
