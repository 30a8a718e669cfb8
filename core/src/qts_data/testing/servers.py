"""Pytest fixtures giving tests real PostgreSQL and Redis servers.

Two kinds of server are offered:

* **The machine's shared servers** (``postgres_dsn``, ``redis_url``): tests
  get a database of their own (``postgres_database``,
  ``make_postgres_database``) or a key prefix of their own (``redis_prefix``,
  ``redis_key_prefix``) on them, removed afterwards. Nothing else on these
  servers is ever touched: no FLUSH, no KEYS, no configuration change.
  A missing server makes the test *fail* (not skip) with instructions, since
  in CI the servers are always there.
* **Throwaway servers** (``throwaway_redis``, ``redis_process_factory``,
  ``throwaway_postgres``, ``throwaway_postgres_session``,
  ``postgres_process_factory``): processes of the test's own on free loopback
  ports, which the test may kill, freeze, stop and restart. They are always
  killed and their directories removed at teardown, also when the test failed.

Only command-line tools and a socket are used (``psql`` for PostgreSQL, a
small RESP client for Redis): the core does not depend on asyncpg or redis-py.

Environment variables: ``QTS_TEST_POSTGRES_DSN`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``), ``QTS_TEST_REDIS_URL``
(default ``redis://127.0.0.1:6379/0``), ``QTS_TEST_PG_BINDIR`` (PostgreSQL
server binaries for throwaway clusters), ``QTS_TEST_PG_OS_USER`` (OS user
running them when the tests run as root, default ``postgres``),
``QTS_TEST_REDIS_SERVER`` (path of ``redis-server``).
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial
from urllib.parse import urlsplit, urlunsplit

import pytest

from qts_data.testing._processes import (
    PostgresProcess,
    PsqlError,
    RedisProcess,
    ServerStartError,
    find_free_port,
    run_psql,
)
from qts_data.testing._resp import (
    RedisAddress,
    RespClient,
    RespError,
    RespProtocolError,
    cluster_masters,
    glob_escape,
    parse_redis_url,
)

__all__ = [
    "PostgresDatabaseFactory",
    "PostgresProcess",
    "PostgresProcessFactory",
    "PsqlError",
    "RedisProcess",
    "RedisProcessFactory",
    "ServerStartError",
    "check_postgres_reachable",
    "check_redis_reachable",
    "cleanup_redis_prefix",
    "create_database",
    "database_exists",
    "drop_database",
    "dsn_with_database",
    "find_free_port",
    "make_postgres_database",
    "mask_dsn",
    "postgres_database",
    "postgres_dsn",
    "postgres_process_factory",
    "redis_key_prefix",
    "redis_prefix",
    "redis_process_factory",
    "redis_url",
    "run_psql",
    "throwaway_postgres",
    "throwaway_postgres_session",
    "throwaway_redis",
]

POSTGRES_DSN_ENV = "QTS_TEST_POSTGRES_DSN"
REDIS_URL_ENV = "QTS_TEST_REDIS_URL"
DEFAULT_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_START_COMMAND = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
REDIS_START_COMMAND = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" '
    "--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log"
)
TEST_DATABASE_PREFIX = "qts_test_"
TEST_KEY_PREFIX = "qts-test:"

_SAFE_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_KEYWORD_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)", re.IGNORECASE)


# -- PostgreSQL helpers ----------------------------------------------------------------------------


def _is_url_dsn(dsn: str) -> bool:
    return dsn.startswith(("postgresql://", "postgres://"))


def mask_dsn(dsn: str) -> str:
    """``dsn`` (URL or ``key=value`` form) with any password replaced by ``***``."""
    if _is_url_dsn(dsn):
        parts = urlsplit(dsn)
        netloc = parts.netloc
        if parts.password is not None:
            userinfo, _, hostinfo = netloc.rpartition("@")
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{hostinfo}"
        query = _KEYWORD_PASSWORD.sub(r"\1***", parts.query)
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    return _KEYWORD_PASSWORD.sub(r"\1***", dsn)


def _dsn_password(dsn: str) -> str | None:
    if _is_url_dsn(dsn):
        password = urlsplit(dsn).password
        if password:
            return password
    match = _KEYWORD_PASSWORD.search(dsn)
    return match.group(2).strip("'") if match else None


def dsn_with_database(dsn: str, dbname: str) -> str:
    """``dsn`` (URL or ``key=value`` form) pointing at database ``dbname`` instead."""
    if _is_url_dsn(dsn):
        parts = urlsplit(dsn)
        query = "&".join(
            item for item in parts.query.split("&") if item and not item.startswith("dbname=")
        )
        return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, query, parts.fragment))
    return f"{dsn} dbname={dbname}"


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _check_db_name(name: str) -> None:
    if not _SAFE_DB_NAME.match(name):
        raise ValueError(f"unsafe test database name {name!r} (letters, digits, _; max 63)")


def postgres_unreachable_reason(dsn: str, timeout: float = 15.0) -> str | None:
    """Why ``SELECT 1`` through ``psql`` fails on ``dsn`` (password masked), or ``None`` if it works."""
    try:
        run_psql(dsn, "SELECT 1", timeout=timeout)
    except PsqlError as exc:
        reason = (exc.stderr or "").strip() or f"psql exited with status {exc.returncode}"
    except subprocess.TimeoutExpired:
        reason = f"psql did not finish within {timeout} s"
    except OSError as exc:
        reason = f"psql could not be run: {exc}"
    else:
        return None
    password = _dsn_password(dsn)
    if password:
        reason = reason.replace(password, "***")
    return " ".join(reason.split())


def check_postgres_reachable(dsn: str) -> None:
    """Fail the test (``pytest.fail``, not skip) if PostgreSQL at ``dsn`` does not answer."""
    reason = postgres_unreachable_reason(dsn)
    if reason is None:
        return
    pytest.fail(
        f"PostgreSQL is not reachable at {mask_dsn(dsn)} ({reason}). The tests using "
        "PostgreSQL need a running server (in CI it is always there, so this test fails "
        f"rather than skips). Start the machine's server with `{POSTGRES_START_COMMAND}`, "
        f"or set {POSTGRES_DSN_ENV} to the DSN of another server (a superuser, or a role "
        "allowed to CREATE DATABASE).",
        pytrace=False,
    )


def create_database(admin_dsn: str, name: str | None = None) -> str:
    """Create a fresh database (default name ``qts_test_<random>``) from ``template0`` with
    UTF8 encoding, via the admin connection ``admin_dsn``; return its DSN."""
    name = name or f"{TEST_DATABASE_PREFIX}{secrets.token_hex(6)}"
    _check_db_name(name)
    base = f"CREATE DATABASE {_quote_ident(name)} TEMPLATE template0 ENCODING 'UTF8'"
    try:
        run_psql(admin_dsn, base)
    except PsqlError as exc:
        if "incompatible" not in (exc.stderr or ""):
            raise
        # The server's default locale does not fit UTF8: use the neutral C locale.
        run_psql(admin_dsn, f"{base} LC_COLLATE 'C' LC_CTYPE 'C'")
    return dsn_with_database(admin_dsn, name)


def drop_database(admin_dsn: str, name: str) -> None:
    """``DROP DATABASE IF EXISTS <name> WITH (FORCE)`` (terminates its open connections)."""
    _check_db_name(name)
    run_psql(admin_dsn, f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")


def database_exists(admin_dsn: str, name: str) -> bool:
    """Whether ``pg_database`` lists ``name``."""
    out = run_psql(
        admin_dsn, f"SELECT count(*) FROM pg_database WHERE datname = {_quote_literal(name)}"
    )
    return out == "1"


class PostgresDatabaseFactory:
    """Creates fresh databases on demand (``factory()`` returns a DSN); :meth:`drop_all` drops them."""

    def __init__(self, admin_dsn: str) -> None:
        self.admin_dsn = admin_dsn
        self.names: list[str] = []

    def __call__(self) -> str:
        """Create another database ``qts_test_<random>`` and return its DSN."""
        name = f"{TEST_DATABASE_PREFIX}{secrets.token_hex(6)}"
        self.names.append(name)
        return create_database(self.admin_dsn, name)

    def drop_all(self) -> None:
        """Drop every database made so far (all are attempted; the first error is raised)."""
        errors: list[Exception] = []
        while self.names:
            name = self.names.pop()
            try:
                drop_database(self.admin_dsn, name)
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]


# -- Redis helpers ---------------------------------------------------------------------------------


def redis_unreachable_reason(url: str, timeout: float = 5.0) -> str | None:
    """Why PING fails on the Redis at ``url``, or ``None`` if it answers PONG."""
    try:
        with RespClient.connect(url, timeout=timeout) as client:
            reply = client.command("PING")
    except (OSError, RespError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if reply != "PONG":
        return f"PING answered {reply!r}"
    return None


def check_redis_reachable(url: str) -> None:
    """Fail the test (``pytest.fail``, not skip) if Redis at ``url`` does not answer PING."""
    reason = redis_unreachable_reason(url)
    if reason is None:
        return
    try:
        shown = parse_redis_url(url).masked_url()
    except ValueError:
        shown = "<unparsable URL>"
    pytest.fail(
        f"Redis is not reachable at {shown} ({reason}). The tests using Redis need a running "
        "server (in CI it is always there, so this test fails rather than skips). Start the "
        f"machine's server with `{REDIS_START_COMMAND}`, or set {REDIS_URL_ENV} to the URL of "
        "another server.",
        pytrace=False,
    )


def _delete_matching(client: RespClient, pattern: str, *, same_slot_only: bool) -> int:
    deleted = 0
    for page in client.scan_pages(match=pattern, count=1000):
        if same_slot_only:
            # Cluster: a multi-key DEL must stay within one slot, so delete key by key.
            replies = client.pipeline([("DEL", key) for key in page])
        else:
            replies = [client.command("DEL", *page)]
        for reply in replies:
            if isinstance(reply, RespError):
                raise reply
            if isinstance(reply, int):
                deleted += reply
    return deleted


def cleanup_redis_prefix(url: str, prefix: str, *, timeout: float = 30.0) -> int:
    """Delete every key starting with ``prefix`` and return how many were deleted.

    Runs ``SCAN MATCH <prefix>* COUNT 1000`` until the cursor is back to 0 and
    DELs each page (never KEYS, never FLUSH*). The prefix is glob-escaped, so
    it matches literally. On a Redis Cluster every master is scanned.
    """
    if not prefix:
        raise ValueError("refusing to clean up an empty prefix (that would be every key)")
    pattern = glob_escape(prefix) + "*"
    address = parse_redis_url(url)
    with RespClient.connect(address, timeout=timeout) as client:
        masters = cluster_masters(client)
        if masters is None:
            return _delete_matching(client, pattern, same_slot_only=False)
    deleted = 0
    for master in masters:
        node: RedisAddress = replace(address, host=master.host, port=master.port, db=0)
        with RespClient.connect(node, timeout=timeout) as client:
            deleted += _delete_matching(client, pattern, same_slot_only=True)
    return deleted


class RedisProcessFactory:
    """Starts throwaway ``redis-server`` processes; :meth:`close_all` kills them all.

    ``factory(*extra_args)`` passes extra ``redis-server`` arguments as separate
    tokens, e.g. ``factory("--cluster-enabled", "yes", "--cluster-config-file",
    "nodes.conf")`` (relative files land in the server's own directory).
    """

    def __init__(self) -> None:
        self.processes: list[RedisProcess] = []
        self._replicas: dict[int, list[RedisProcess]] = {}

    def __call__(self, *extra_args: str, port: int | None = None) -> RedisProcess:
        """Start another server and wait until it answers PING."""
        server = RedisProcess(extra_args, port=port)
        self.processes.append(server)
        server.start()
        return server

    def cluster(
        self, masters: int = 3, *extra_args: str, replicas: int = 0, timeout: float = 20.0
    ) -> list[RedisProcess]:
        """Start ``masters`` cluster-enabled servers, split the 16384 slots among them, join
        them (``CLUSTER MEET``) and wait until every node reports ``cluster_state:ok``.

        ``replicas``: that many more servers per master, each made a replica of its master
        (``CLUSTER REPLICATE``) and in sync with it before this returns; find them with
        :meth:`replicas_of`. For a failover to happen when a master dies, pass a short
        ``"--cluster-node-timeout", "2000"`` (the default is 15 s).

        Returns the masters in slot order; connect to any node with a cluster client.
        """
        if masters < 1:
            raise ValueError("a cluster needs at least one master")
        if replicas < 0:
            raise ValueError("replicas cannot be negative")
        cluster_args = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
        nodes = [self(*cluster_args, *extra_args) for _ in range(masters)]
        followers = [
            [self(*cluster_args, *extra_args) for _ in range(replicas)] for _ in range(masters)
        ]
        slots = 16384
        for index, node in enumerate(nodes):
            first = index * slots // masters
            last = (index + 1) * slots // masters - 1
            node.command("CLUSTER", "ADDSLOTSRANGE", first, last)
        everyone = [*nodes, *(replica for group in followers for replica in group)]
        for node in everyone[1:]:
            if node.cluster_port is None:
                raise ServerStartError(f"{node!r} has no cluster bus port")
            everyone[0].command("CLUSTER", "MEET", node.host, node.port, node.cluster_port)
        deadline = time.monotonic() + timeout
        if replicas:
            # A replica can follow a master only once it knows it (the gossip spreads MEET).
            known = str(len(everyone))
            _wait_until(
                lambda: all(_cluster_info(n).get("cluster_known_nodes") == known for n in everyone),
                deadline,
                f"the {len(everyone)} Redis Cluster nodes did not all meet in {timeout} s",
            )
            for master, group in zip(nodes, followers, strict=True):
                master_id = master.command("CLUSTER", "MYID")
                name = master_id.decode() if isinstance(master_id, bytes) else str(master_id)
                for replica in group:
                    _wait_until(
                        partial(_replicate, replica, name),
                        deadline,
                        f"{replica!r} could not become a replica of {master!r} in {timeout} s",
                    )
                self._replicas[master.port] = group
        _wait_until(
            lambda: (
                all(_cluster_ready(node, len(everyone)) for node in everyone)
                and all(_replica_in_sync(replica) for group in followers for replica in group)
            ),
            deadline,
            f"the {masters}-master Redis Cluster ({replicas} replicas each) did not converge "
            f"in {timeout} s",
        )
        return nodes

    def replicas_of(self, master: RedisProcess) -> list[RedisProcess]:
        """The replicas :meth:`cluster` started for ``master`` (empty without replicas)."""
        return list(self._replicas.get(master.port, ()))

    def close_all(self) -> None:
        """Thaw, kill and remove every server started (idempotent)."""
        self._replicas.clear()
        while self.processes:
            self.processes.pop().close()


def _wait_until(done: Callable[[], bool], deadline: float, message: str) -> None:
    while not done():
        if time.monotonic() > deadline:
            raise ServerStartError(message)
        time.sleep(0.05)


def _parse_info(raw: object, command: str) -> dict[str, str]:
    if not isinstance(raw, bytes):
        raise RespProtocolError(f"unexpected {command} reply: {raw!r}")
    info: dict[str, str] = {}
    for line in raw.decode().splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key] = value.strip()
    return info


def _cluster_info(node: RedisProcess) -> dict[str, str]:
    with node.connect() as client:
        return _parse_info(client.command("CLUSTER", "INFO"), "CLUSTER INFO")


def _cluster_ready(node: RedisProcess, nodes: int) -> bool:
    info = _cluster_info(node)
    return info.get("cluster_state") == "ok" and info.get("cluster_known_nodes") == str(nodes)


def _replicate(replica: RedisProcess, master_id: str) -> bool:
    """``CLUSTER REPLICATE``; False while the replica does not know the master yet."""
    try:
        replica.command("CLUSTER", "REPLICATE", master_id)
    except RespError as exc:
        if "Unknown node" in str(exc):
            return False
        raise
    return True


def _replica_in_sync(replica: RedisProcess) -> bool:
    with replica.connect() as client:
        info = _parse_info(client.command("INFO", "replication"), "INFO replication")
    return info.get("role") == "slave" and info.get("master_link_status") == "up"


class PostgresProcessFactory:
    """Starts throwaway PostgreSQL clusters (``factory(settings=None)``); :meth:`close_all`
    stops and removes them all, with their replicas."""

    def __init__(self) -> None:
        self.processes: list[PostgresProcess] = []

    def __call__(self, settings: dict[str, str] | None = None) -> PostgresProcess:
        """``initdb`` and start another cluster (extra ``postgresql.conf`` settings)."""
        server = PostgresProcess.launch(settings)
        self.processes.append(server)
        return server

    def close_all(self) -> None:
        """Stop and remove every cluster started (all are attempted; the first error is raised)."""
        errors: list[Exception] = []
        while self.processes:
            try:
                self.processes.pop().close()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]


# -- fixtures: the machine's PostgreSQL ------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """DSN of the machine's PostgreSQL admin database (session).

    ``$QTS_TEST_POSTGRES_DSN`` or ``postgresql://postgres@127.0.0.1:5432/postgres``.
    Reachability is checked once per session; an unreachable server fails the
    test with instructions (it is not skipped). Do not create objects in this
    database: use ``postgres_database`` / ``make_postgres_database``.
    """
    dsn = os.environ.get(POSTGRES_DSN_ENV) or DEFAULT_POSTGRES_DSN
    check_postgres_reachable(dsn)
    return dsn


@pytest.fixture(scope="session")
def postgres_database(postgres_dsn: str) -> Iterator[str]:
    """DSN of a database ``qts_test_<random>`` created for this test run (session).

    Shared by every test of the session (use your own schema or table names, or
    ``make_postgres_database`` for isolation); dropped ``WITH (FORCE)`` at the end.
    """
    name = f"{TEST_DATABASE_PREFIX}{secrets.token_hex(6)}"
    dsn = create_database(postgres_dsn, name)
    try:
        yield dsn
    finally:
        drop_database(postgres_dsn, name)


@pytest.fixture(scope="session")
def make_postgres_database(postgres_dsn: str) -> Iterator[PostgresDatabaseFactory]:
    """Factory of fresh databases (session): ``make_postgres_database()`` creates another
    ``qts_test_<random>`` database and returns its DSN. All are dropped at session end."""
    factory = PostgresDatabaseFactory(postgres_dsn)
    try:
        yield factory
    finally:
        factory.drop_all()


# -- fixtures: the machine's Redis -----------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the machine's Redis (session).

    ``$QTS_TEST_REDIS_URL`` or ``redis://127.0.0.1:6379/0``. Checked once with
    PING; an unreachable server fails the test with instructions (not skipped).
    Only ever write keys under ``redis_prefix`` / ``redis_key_prefix``.
    """
    url = os.environ.get(REDIS_URL_ENV) or DEFAULT_REDIS_URL
    check_redis_reachable(url)
    return url


@pytest.fixture(scope="session")
def redis_prefix(redis_url: str) -> Iterator[str]:
    """Key prefix ``qts-test:<random>:`` of this test run (session).

    At session end every key starting with it is deleted (SCAN loop to completion + DEL).
    """
    prefix = f"{TEST_KEY_PREFIX}{secrets.token_hex(8)}:"
    try:
        yield prefix
    finally:
        cleanup_redis_prefix(redis_url, prefix)


@pytest.fixture
def redis_key_prefix(redis_url: str, redis_prefix: str) -> Iterator[str]:
    """A key prefix of this test's own under ``redis_prefix`` (function); its keys are
    deleted after the test."""
    prefix = f"{redis_prefix}{secrets.token_hex(4)}:"
    try:
        yield prefix
    finally:
        cleanup_redis_prefix(redis_url, prefix)


# -- fixtures: throwaway servers -------------------------------------------------------------------


@pytest.fixture
def throwaway_redis() -> Iterator[RedisProcess]:
    """A ``redis-server`` of this test's own on a free loopback port (function).

    No persistence, private directory, answering PING when the test starts.
    The :class:`RedisProcess` handle has ``host``, ``port``, ``url``, ``pid``,
    ``ping()``, ``command(*args)``, ``connect()``, ``kill()``, ``freeze()``,
    ``thaw()``, ``stop()``, ``start()``, ``restart()``. Thawed, killed and
    removed at teardown, whatever the test did.
    """
    server = RedisProcess.launch()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_process_factory() -> Iterator[RedisProcessFactory]:
    """Factory of throwaway ``redis-server`` processes (function):
    ``redis_process_factory(*extra_args)`` returns a started :class:`RedisProcess`;
    ``redis_process_factory.cluster(masters=3, replicas=0)`` builds a Redis Cluster. All are
    killed at teardown."""
    factory = RedisProcessFactory()
    try:
        yield factory
    finally:
        factory.close_all()


@pytest.fixture
def throwaway_postgres() -> Iterator[PostgresProcess]:
    """A PostgreSQL cluster of this test's own (function): fresh ``initdb``, free port on
    127.0.0.1, trust auth for user ``postgres``, durability off.

    The :class:`PostgresProcess` handle has ``dsn``, ``dsn_for(db)``, ``port``,
    ``data_dir``, ``pid``, ``psql(sql)``, ``stop(mode)``, ``start()``,
    ``restart()``, ``kill()``, ``freeze()``, ``thaw()``, ``make_replica()``.
    Stopped and removed at teardown (with its replicas), whatever the test did.
    """
    server = PostgresProcess.launch()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def throwaway_postgres_session() -> Iterator[PostgresProcess]:
    """A throwaway PostgreSQL cluster shared by the whole session (saves the ``initdb``).

    Tests may restart it but must leave it running; tests that break it for
    good should use ``throwaway_postgres`` instead.
    """
    server = PostgresProcess.launch()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres_process_factory() -> Iterator[PostgresProcessFactory]:
    """Factory of throwaway PostgreSQL clusters (function): ``postgres_process_factory()``
    returns a started :class:`PostgresProcess`. All are stopped and removed at teardown."""
    factory = PostgresProcessFactory()
    try:
        yield factory
    finally:
        factory.close_all()
