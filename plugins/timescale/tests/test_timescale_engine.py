"""The TimescaleDB test engine of qts_data_timescale.testing: installed once into the cache,
started and stopped with the run, and a run without Node.js stops at once saying what to install."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import asyncpg
import pytest

from qts_data_timescale.testing import EngineError, TimescaleEngine, install_engine
from qts_data_timescale.testing.engine import cache_root

pytestmark = pytest.mark.slow


def _refused(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) != 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_the_install_is_made_once_and_reused(timescaledb_engine: TimescaleEngine) -> None:
    folder = install_engine()  # the session's engine installed it already
    marker = folder / ".installed"
    before = marker.stat().st_mtime_ns
    announced: list[str] = []
    assert install_engine(announce=announced.append) == folder
    assert announced == []
    assert marker.stat().st_mtime_ns == before
    assert folder.parent == cache_root() / "timescaledb-engine"
    assert (folder / "node_modules" / "@unni-craftsman" / "pglite").is_dir()


async def test_an_engine_serves_timescaledb_and_stop_ends_it() -> None:
    engine = TimescaleEngine().start()
    port = engine.port
    try:
        assert engine.versions["timescaledb"].startswith("2.23")
        conn = await asyncpg.connect(engine.dsn, statement_cache_size=0)
        try:
            assert (
                await conn.fetchval(
                    "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
                )
                == engine.versions["timescaledb"]
            )
        finally:
            conn.terminate()
    finally:
        engine.stop()
    assert not engine.running
    assert _refused(port)
    engine.stop()  # idempotent
    with pytest.raises(EngineError):
        _ = engine.dsn


def test_the_engine_ends_with_the_process_that_started_it(tmp_path: Path) -> None:
    """Even a SIGKILLed test run leaves no engine behind (it watches its stdin pipe)."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import time
                from qts_data_timescale.testing import TimescaleEngine
                engine = TimescaleEngine().start()
                print(engine.port, engine._process.pid, flush=True)
                time.sleep(600)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        port, pid = (int(x) for x in child.stdout.readline().split())
        assert _alive(pid)
        child.kill()
        child.wait()
        assert _wait_for(lambda: not _alive(pid) or _zombie(pid), 20), (
            "the engine outlived its parent"
        )
        assert _wait_for(lambda: _refused(port), 20)
    finally:
        if child.poll() is None:
            child.kill()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def _pytest_run(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """pytest on one test that uses the engine fixture, as a plugin's conftest wires it."""
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            """
            from qts_data_timescale.testing import fixtures

            timescaledb_engine = fixtures.timescaledb_engine


            def pytest_collection_modifyitems(config, items):
                fixtures.prepare_engine(config, items)
            """
        )
    )
    (tmp_path / "test_uses_engine.py").write_text(
        "def test_one(timescaledb_engine):\n    raise AssertionError('must not run')\n"
        "def test_two(timescaledb_engine):\n    raise AssertionError('must not run')\n"
    )
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_without_node_the_run_stops_at_once_saying_what_to_install(tmp_path: Path) -> None:
    bare = tmp_path / "bin"
    bare.mkdir()
    (bare / "python").symlink_to(sys.executable)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    env = {**os.environ, "PATH": str(bare), "QTS_TEST_CACHE_DIR": str(tmp_path / "cache")}
    done = _pytest_run(run_dir, env)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if "Node.js" in line]
    assert len(lines) == 1, done.stdout
    assert "npm" in lines[0] and "apt install nodejs npm" in lines[0]
    assert "must not run" not in done.stdout
    assert not (tmp_path / "cache").exists()


def test_a_failed_install_stops_the_run_with_npm_s_reason_and_leaves_nothing_half_made(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "cache"
    env = {
        **os.environ,
        "QTS_TEST_CACHE_DIR": str(cache),
        "npm_config_registry": "http://127.0.0.1:9/",  # nothing listens on the discard port
        "npm_config_cache": str(tmp_path / "npm-cache"),  # nothing cached: npm must download
        "npm_config_fetch_retries": "0",
        "npm_config_offline": "false",
        "npm_config_prefer_offline": "false",
    }
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    done = _pytest_run(run_dir, env)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    failed = "installing the TimescaleDB test engine (npm ci) failed with exit status"
    [line] = [line for line in done.stdout.splitlines() if failed in line]
    assert "127.0.0.1:9" in line  # npm's own reason: the registry it could not reach
    assert "must not run" not in done.stdout
    engines = cache / "timescaledb-engine"
    assert [p.name for p in engines.iterdir() if not p.name.startswith(".lock")] == []
