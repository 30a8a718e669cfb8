"""Tests of the server fixtures, against real PostgreSQL and Redis servers."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from qts_data.testing._processes import _pid_alive
from qts_data.testing._resp import RespClient, RespError, glob_escape, parse_redis_url
from qts_data.testing.servers import (
    POSTGRES_START_COMMAND,
    REDIS_START_COMMAND,
    PostgresDatabaseFactory,
    PostgresProcess,
    PsqlError,
    RedisProcess,
    RedisProcessFactory,
    check_postgres_reachable,
    check_redis_reachable,
    cleanup_redis_prefix,
    create_database,
    database_exists,
    drop_database,
    dsn_with_database,
    find_free_port,
    mask_dsn,
    run_psql,
)


def _dbname(dsn: str) -> str:
    return dsn.rsplit("/", 1)[1].split("?", 1)[0]


def _count_keys(url: str, prefix: str) -> int:
    with RespClient.connect(url) as client:
        return len(set(client.scan_iter(match=glob_escape(prefix) + "*")))


# -- the machine's PostgreSQL ----------------------------------------------------------------------


def test_postgres_database_exists_while_in_use(postgres_dsn: str, postgres_database: str) -> None:
    name = _dbname(postgres_database)
    assert name.startswith("qts_test_")
    assert run_psql(postgres_database, "SELECT current_database()") == name
    assert database_exists(postgres_dsn, name)
    run_psql(postgres_database, "CREATE TABLE IF NOT EXISTS t_servers (x int); SELECT 1")
    assert run_psql(postgres_database, "SHOW server_encoding") == "UTF8"


def test_make_postgres_database_gives_distinct_databases(
    make_postgres_database: PostgresDatabaseFactory, postgres_database: str
) -> None:
    first, second = make_postgres_database(), make_postgres_database()
    names = {_dbname(first), _dbname(second), _dbname(postgres_database)}
    assert len(names) == 3
    run_psql(first, "CREATE TABLE only_in_first (x int)")
    assert run_psql(first, "SELECT to_regclass('only_in_first') IS NOT NULL") == "t"
    assert run_psql(second, "SELECT to_regclass('only_in_first') IS NOT NULL") == "f"
    assert set(make_postgres_database.names) >= {_dbname(first), _dbname(second)}


def test_drop_database_removes_it_even_with_open_connections(postgres_dsn: str) -> None:
    dsn = create_database(postgres_dsn)
    name = _dbname(dsn)
    holder = None
    try:
        assert database_exists(postgres_dsn, name)
        # An open session on the database: DROP ... WITH (FORCE) must terminate it.
        holder = subprocess.Popen(
            ["psql", "-X", "-q", "-d", dsn, "-c", "SELECT pg_sleep(60)"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        sql = f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}'"
        while run_psql(postgres_dsn, sql) == "0":
            assert time.monotonic() < deadline, "the holding session never connected"
            time.sleep(0.05)
        drop_database(postgres_dsn, name)
        assert not database_exists(postgres_dsn, name)
        assert holder.wait(10) != 0  # its session was terminated
    finally:
        if holder is not None and holder.poll() is None:
            holder.kill()
            holder.wait()
        drop_database(postgres_dsn, name)


def test_database_factory_drop_all(postgres_dsn: str) -> None:
    factory = PostgresDatabaseFactory(postgres_dsn)
    try:
        names = [_dbname(factory()) for _ in range(2)]
        assert all(database_exists(postgres_dsn, name) for name in names)
    finally:
        factory.drop_all()
    assert not any(database_exists(postgres_dsn, name) for name in names)
    assert factory.names == []


def test_postgres_unreachable_message_names_server_and_start_command() -> None:
    port = find_free_port()  # nothing listens there
    dsn = f"postgresql://postgres:s3cret-pw@127.0.0.1:{port}/postgres"
    with pytest.raises(pytest.fail.Exception) as info:
        check_postgres_reachable(dsn)
    message = str(info.value)
    assert "PostgreSQL is not reachable" in message
    assert f"postgresql://postgres:***@127.0.0.1:{port}/postgres" in message
    assert "s3cret-pw" not in message
    assert POSTGRES_START_COMMAND in message
    assert "QTS_TEST_POSTGRES_DSN" in message
    assert "\n" not in message


def test_mask_dsn_and_dsn_with_database() -> None:
    assert mask_dsn("postgresql://u:pw@h:5/db?sslmode=disable") == (
        "postgresql://u:***@h:5/db?sslmode=disable"
    )
    assert mask_dsn("postgresql://u@h/db?password=pw") == "postgresql://u@h/db?password=***"
    assert (
        mask_dsn("host=h user=u password='p w' dbname=x") == "host=h user=u password=*** dbname=x"
    )
    assert mask_dsn("postgresql://u@h/db") == "postgresql://u@h/db"
    assert dsn_with_database("postgresql://u@h:5/postgres?a=b", "x") == "postgresql://u@h:5/x?a=b"
    assert dsn_with_database("host=h dbname=postgres", "x") == "host=h dbname=postgres dbname=x"


# -- the machine's Redis ---------------------------------------------------------------------------


def test_redis_prefix_cleanup_removes_exactly_the_prefixed_keys(
    redis_url: str, redis_key_prefix: str
) -> None:
    prefix = f"{redis_key_prefix}cleanup:"
    near_miss = f"{redis_key_prefix}cleanup-other"  # shares all but the last ':'
    outside = f"qts-test-outside:{secrets.token_hex(8)}"
    count = 1500  # more than one SCAN page (COUNT 1000): the loop must go on to cursor 0
    with RespClient.connect(redis_url) as client:
        try:
            args: list[str | bytes | int | float] = ["MSET"]
            for index in range(count):
                args += [f"{prefix}{index}", "v"]
            client.command(*args)
            client.command("HSET", f"{prefix}hash", "f", "v")
            client.command("RPUSH", f"{prefix}list", "a", "b")
            client.command("SET", near_miss, "keep")
            client.command("SET", outside, "keep")
            assert _count_keys(redis_url, prefix) == count + 2

            deleted = cleanup_redis_prefix(redis_url, prefix)

            assert deleted == count + 2
            assert _count_keys(redis_url, prefix) == 0
            assert client.command("GET", near_miss) == b"keep"
            assert client.command("GET", outside) == b"keep"
            assert cleanup_redis_prefix(redis_url, prefix) == 0
        finally:
            client.command("DEL", outside)


def test_redis_cleanup_prefix_is_matched_literally(redis_url: str, redis_key_prefix: str) -> None:
    prefix = f"{redis_key_prefix}a*[b]?\\:"
    lookalike = f"{redis_key_prefix}aX[b]?\\:k"  # would match if '*' were a wildcard
    with RespClient.connect(redis_url) as client:
        client.command("MSET", f"{prefix}1", "v", f"{prefix}2", "v", lookalike, "v")
        assert cleanup_redis_prefix(redis_url, prefix) == 2
        assert client.command("EXISTS", lookalike) == 1
    with pytest.raises(ValueError):
        cleanup_redis_prefix(redis_url, "")


def test_redis_key_prefix_is_under_the_run_prefix(redis_prefix: str, redis_key_prefix: str) -> None:
    assert redis_prefix.startswith("qts-test:")
    assert redis_prefix.endswith(":")
    assert redis_key_prefix.startswith(redis_prefix)
    assert redis_key_prefix != redis_prefix
    assert redis_key_prefix.endswith(":")


def test_redis_unreachable_message_names_server_and_start_command() -> None:
    port = find_free_port()
    with pytest.raises(pytest.fail.Exception) as info:
        check_redis_reachable(f"redis://:s3cret-pw@127.0.0.1:{port}/0")
    message = str(info.value)
    assert "Redis is not reachable" in message
    assert f"redis://:***@127.0.0.1:{port}/0" in message
    assert "s3cret-pw" not in message
    assert REDIS_START_COMMAND in message
    assert "QTS_TEST_REDIS_URL" in message


def test_parse_redis_url() -> None:
    address = parse_redis_url("redis://user:p%40ss@10.0.0.1:6380/3")
    assert (address.host, address.port, address.db) == ("10.0.0.1", 6380, 3)
    assert (address.username, address.password) == ("user", "p@ss")
    assert parse_redis_url("unix:///run/redis.sock?db=2").unix_path == "/run/redis.sock"
    with pytest.raises(ValueError):
        parse_redis_url("http://x")


@pytest.mark.slow
def test_a_cluster_with_replicas_has_each_replica_in_sync_with_its_master(
    redis_process_factory: RedisProcessFactory,
) -> None:
    masters = redis_process_factory.cluster(2, "--cluster-node-timeout", "2000", replicas=1)
    for master in masters:
        (replica,) = redis_process_factory.replicas_of(master)
        role = replica.command("ROLE")
        assert isinstance(role, list) and role[0] == b"slave", role
        assert role[2] == master.port and role[3] == b"connected", role
    assert redis_process_factory.replicas_of(redis_process_factory.processes[-1]) == []
    with pytest.raises(ValueError):
        redis_process_factory.cluster(1, replicas=-1)


@pytest.mark.slow
def test_cleanup_scans_every_master_of_a_cluster(
    redis_process_factory: RedisProcessFactory,
) -> None:
    nodes = redis_process_factory.cluster(masters=2)
    prefix = "qts-test:cluster:"
    per_node = {node.port: 0 for node in nodes}
    connections = {node.port: node.connect() for node in nodes}
    try:
        slot_of = connections[nodes[0].port].pipeline(
            [("CLUSTER", "KEYSLOT", f"{prefix}{index}") for index in range(300)]
        )
        writes: dict[int, list[tuple[str, str, str]]] = {node.port: [] for node in nodes}
        for index, slot in enumerate(slot_of):
            assert isinstance(slot, int)
            owner = nodes[0] if slot < 8192 else nodes[1]
            writes[owner.port].append(("SET", f"{prefix}{index}", "v"))
            per_node[owner.port] += 1
        for port, commands in writes.items():
            assert all(reply == "OK" for reply in connections[port].pipeline(commands))
        assert all(count > 0 for count in per_node.values())  # keys on both masters
        keep_slot = connections[nodes[0].port].command("CLUSTER", "KEYSLOT", "keep")
        assert isinstance(keep_slot, int)
        keeper = nodes[0] if keep_slot < 8192 else nodes[1]
        connections[keeper.port].command("SET", "keep", "v")

        assert cleanup_redis_prefix(nodes[0].url, prefix) == 300

        sizes = {port: conn.command("DBSIZE") for port, conn in connections.items()}
        assert sizes == {node.port: int(node is keeper) for node in nodes}
    finally:
        for conn in connections.values():
            conn.close()


# -- throwaway Redis -------------------------------------------------------------------------------


def test_throwaway_redis_answers(throwaway_redis: RedisProcess, redis_url: str) -> None:
    assert throwaway_redis.ping()
    assert throwaway_redis.url == f"redis://127.0.0.1:{throwaway_redis.port}/0"
    assert throwaway_redis.port != parse_redis_url(redis_url).port
    assert throwaway_redis.command("SET", "k", "v") == "OK"
    assert throwaway_redis.command("GET", "k") == b"v"
    with pytest.raises(RespError) as info:
        throwaway_redis.command("NOSUCHCOMMAND")
    assert info.value.kind == "ERR"
    config = throwaway_redis.command("CONFIG", "GET", "save")
    assert config == [b"save", b""]
    assert _pid_alive(throwaway_redis.pid)


def test_throwaway_redis_freeze_and_thaw(throwaway_redis: RedisProcess) -> None:
    before = throwaway_redis.connect(timeout=0.3)
    try:
        throwaway_redis.freeze()
        with pytest.raises(TimeoutError):
            throwaway_redis.command("PING", timeout=0.3)
        with pytest.raises(TimeoutError):
            before.command("PING")
        assert not throwaway_redis.ping(timeout=0.3)
        throwaway_redis.thaw()
        assert throwaway_redis.ping()
        assert throwaway_redis.command("PING", timeout=0.3) == "PONG"
    finally:
        before.close()


def test_throwaway_redis_kill_then_start_on_the_same_port(throwaway_redis: RedisProcess) -> None:
    port, pid = throwaway_redis.port, throwaway_redis.pid
    throwaway_redis.command("SET", "k", "v")
    throwaway_redis.kill()
    assert not throwaway_redis.running
    assert not _pid_alive(pid)
    with pytest.raises(ConnectionRefusedError):
        throwaway_redis.command("PING", timeout=1)
    throwaway_redis.start()
    assert throwaway_redis.port == port
    assert throwaway_redis.pid != pid
    assert throwaway_redis.ping()
    assert throwaway_redis.command("GET", "k") is None  # no persistence


def test_throwaway_redis_restart_keeps_the_port(throwaway_redis: RedisProcess) -> None:
    port, pid = throwaway_redis.port, throwaway_redis.pid
    throwaway_redis.restart()
    assert (throwaway_redis.port, throwaway_redis.ping()) == (port, True)
    assert throwaway_redis.pid != pid
    throwaway_redis.stop()
    assert not throwaway_redis.ping(timeout=0.3)


def test_redis_close_kills_a_frozen_server_and_removes_its_directory() -> None:
    server = RedisProcess.launch()
    server.freeze()
    pid, directory = server.pid, server.dir
    server.close()
    assert not _pid_alive(pid)
    assert not directory.exists()
    server.close()  # idempotent


def test_redis_process_factory_passes_extra_args(
    redis_process_factory: RedisProcessFactory,
) -> None:
    first = redis_process_factory("--maxmemory", "10mb", "--maxmemory-policy", "allkeys-lru")
    second = redis_process_factory()
    assert first.port != second.port
    assert first.command("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"10485760"]
    assert second.command("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"0"]
    assert len(redis_process_factory.processes) == 2


# -- throwaway PostgreSQL --------------------------------------------------------------------------


def test_throwaway_postgres_accepts_queries(throwaway_postgres_session: PostgresProcess) -> None:
    pg = throwaway_postgres_session
    assert pg.dsn == f"postgresql://postgres@127.0.0.1:{pg.port}/postgres"
    assert pg.psql("SELECT 40 + 2") == "42"
    assert pg.psql("SHOW listen_addresses") == "127.0.0.1"
    assert pg.psql("SHOW fsync") == "off"
    assert pg.psql("SHOW unix_socket_directories") == str(pg.socket_dir)
    assert (pg.data_dir / "PG_VERSION").exists()
    assert not pg.is_in_recovery()
    with pytest.raises(PsqlError, match="syntax error"):
        pg.psql("SELEC 1")


def test_throwaway_postgres_freeze_and_thaw(throwaway_postgres_session: PostgresProcess) -> None:
    pg = throwaway_postgres_session
    pg.freeze()
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            run_psql(pg.dsn, "SELECT 1", timeout=1)
    finally:
        pg.thaw()
    assert pg.psql("SELECT 1") == "1"


@pytest.mark.slow
def test_throwaway_postgres_restart_keeps_data(throwaway_postgres: PostgresProcess) -> None:
    pg = throwaway_postgres
    port, pid = pg.port, pg.pid
    pg.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2)")
    pg.restart()
    assert (pg.port, pg.running) == (port, True)
    assert pg.pid != pid
    assert pg.psql("SELECT sum(x) FROM t") == "3"


@pytest.mark.slow
def test_throwaway_postgres_immediate_stop_then_start_recovers(
    throwaway_postgres: PostgresProcess,
) -> None:
    pg = throwaway_postgres
    pg.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (7)")
    pg.stop("immediate")
    assert not pg.running
    with pytest.raises(PsqlError):
        pg.psql("SELECT 1")
    pg.start()
    assert pg.psql("SELECT x FROM t") == "7"
    assert "automatic recovery in progress" in pg.log_path.read_text()


@pytest.mark.slow
def test_throwaway_postgres_kill_then_start_recovers(throwaway_postgres: PostgresProcess) -> None:
    pg = throwaway_postgres
    pg.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (5)")
    pid = pg.pid
    pg.kill()
    assert not pg.running
    assert not _pid_alive(pid)
    with pytest.raises(PsqlError, match="refused"):
        pg.psql("SELECT 1")
    pg.start()
    assert pg.psql("SELECT x FROM t") == "5"


@pytest.mark.slow
def test_throwaway_postgres_replica_follows_the_primary(
    throwaway_postgres: PostgresProcess,
) -> None:
    primary = throwaway_postgres
    primary.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
    replica = primary.make_replica()
    assert replica.port != primary.port
    assert replica.primary is primary
    assert primary.replicas == [replica]
    assert replica.is_in_recovery()
    primary.psql("INSERT INTO t VALUES (2)")
    replica.wait_for_replay()
    assert replica.psql("SELECT sum(x) FROM t") == "3"
    with pytest.raises(PsqlError, match="read-only"):
        replica.psql("INSERT INTO t VALUES (3)")
    replica.promote()
    assert not replica.is_in_recovery()
    replica.psql("INSERT INTO t VALUES (3)")
    assert replica.psql("SELECT sum(x) FROM t") == "6"


@pytest.mark.slow
def test_throwaway_servers_are_cleaned_up_when_the_test_fails(tmp_path: Path) -> None:
    """Run a failing test in a child pytest; its frozen servers must be gone afterwards."""
    record = tmp_path / "servers.json"
    test_file = tmp_path / "test_child.py"
    test_file.write_text(
        textwrap.dedent(
            f"""
            import json

            def test_fails(throwaway_redis, throwaway_postgres):
                throwaway_postgres.psql("SELECT 1")
                data = {{
                    "redis": [throwaway_redis.pid, str(throwaway_redis.dir)],
                    "postgres": [throwaway_postgres.pid, str(throwaway_postgres.base_dir)],
                }}
                with open({str(record)!r}, "w") as handle:
                    json.dump(data, handle)
                throwaway_redis.freeze()
                throwaway_postgres.freeze()
                assert False, "deliberate failure"
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "qts_data.testing", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), "-c", os.devnull, str(test_file)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
        check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "deliberate failure" in result.stdout
    data = json.loads(record.read_text())
    for pid, directory in data.values():
        assert not _pid_alive(pid)
        assert not Path(directory).exists()
