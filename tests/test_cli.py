"""The `qts-data` command as a user meets it: listings, checks, init, demo, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_cli
from qts_data.testing import PluginSite

SICK = """
from qts_data.plugins import hookimpl
from qts_data.contracts import HealthState, HealthStatus

def make(settings, ctx):
    from qts_data_memory.adapter import MemoryAdapter

    class Sick(MemoryAdapter):
        async def health_check(self):
            return HealthStatus(component=self.name, state=HealthState.UNHEALTHY, message="disk on fire")

    return Sick()

@hookimpl
def qts_data_adapters(register):
    register("sick", make)
"""


NOISY = """
import logging
from qts_data.plugins import hookimpl

def make(settings, ctx):
    from qts_data_memory.adapter import MemoryAdapter

    class Noisy(MemoryAdapter):
        async def health_check(self):
            # what asyncpg's pool logs on every PostgreSQL restart, here twice
            for n in (1, 2):
                try:
                    raise ConnectionRefusedError(
                        111, f"Connect call failed postgresql://qts:s3cr3t-pw@db/qts #{n}"
                    )
                except OSError:
                    logging.getLogger("asyncpg.pool").warning(
                        "Failed to restore the pool connection floor; retrying", exc_info=True
                    )
            return await super().health_check()

    return Noisy()

@hookimpl
def qts_data_adapters(register):
    register("noisy", make)
"""


def assert_one_line_error(stderr: str, *fragments: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("qts-data: error: "), stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_plugins_json_lists_memory_and_the_core() -> None:
    result = run_cli("plugins", "--json")
    assert result.code == 0, result.err
    plugins = {p["name"]: p for p in json.loads(result.out)}
    memory = plugins["memory"]
    assert memory["status"] == "loaded"
    assert memory["distribution"] == "qts-data-memory"
    assert {(c["kind"], c["name"]) for c in memory["components"]} == {
        ("adapter", "memory"),
        ("cache", "memory"),
        ("sink", "memory"),
    }
    assert plugins["core"]["builtin"] is True


def test_plugins_table_is_readable() -> None:
    result = run_cli("plugins")
    assert result.code == 0
    assert "qts-data-memory" in result.out
    assert "adapter:memory" in result.out


def test_a_broken_plugin_is_listed_with_its_error_while_memory_still_works(
    plugin_site: PluginSite,
) -> None:
    plugin_site.add("broken", "import backend_library_that_is_not_installed\n")
    env = plugin_site.env(COLUMNS="200")
    listed = run_cli("plugins", "--json", env=env)
    assert listed.code == 0, listed.err
    plugins = {p["name"]: p for p in json.loads(listed.out)}
    assert plugins["broken"]["status"] == "failed"
    assert "backend_library_that_is_not_installed" in plugins["broken"]["error"]
    assert plugins["memory"]["status"] == "loaded"
    checked = run_cli("check", env=env)
    assert checked.code == 0, checked.out + checked.err
    assert "HEALTHY" in checked.out


def test_strict_mode_makes_a_broken_plugin_fatal(plugin_site: PluginSite) -> None:
    plugin_site.add("broken", "raise RuntimeError('plugin init exploded')\n")
    result = run_cli("plugins", env=plugin_site.env(QTS_DATA_STRICT_PLUGINS="1"))
    assert result.code == 2
    assert_one_line_error(result.err, "QTS_DATA_STRICT_PLUGINS", "broken", "plugin init exploded")


def test_check_default_stack_is_healthy() -> None:
    result = run_cli("check")
    assert result.code == 0, result.err
    assert "adapter:main" in result.out
    assert "cache:hot" in result.out
    assert "HEALTHY" in result.out


def test_check_json_is_machine_readable() -> None:
    result = run_cli("check", "--json")
    assert result.code == 0
    data = json.loads(result.out)
    assert data["state"] == "HEALTHY"
    assert data["source"] == "<default>"
    assert {c["name"] for c in data["components"]} == {"store", "main", "hot"}
    assert "position" in data["cache"]["kinds"]


def test_check_exits_1_when_a_component_is_unhealthy(
    plugin_site: PluginSite, tmp_path: Path
) -> None:
    plugin_site.add("sick", SICK)
    config = tmp_path / "qts.toml"
    config.write_text('[stack]\nadapter = "db"\n[adapters.db]\ntype = "sick"\n')
    result = run_cli("check", str(config), env=plugin_site.env(COLUMNS="200"))
    assert result.code == 1, result.out + result.err
    assert "UNHEALTHY" in result.out
    assert "disk on fire" in result.out


def test_check_with_a_bad_configuration_prints_one_line(tmp_path: Path) -> None:
    config = tmp_path / "qts.toml"
    config.write_text('[stack]\nadapter = "db"\n[adapters.db]\ntype = "hyperstore"\n')
    result = run_cli("check", str(config))
    assert result.code == 2
    assert_one_line_error(
        result.err, str(config), "adapters.db.type", "no adapter named 'hyperstore'"
    )


def test_check_masks_secrets_in_settings_and_errors(tmp_path: Path) -> None:
    config = tmp_path / "qts.toml"
    config.write_text(
        '[stack]\nadapter = "db"\nsinks = ["log"]\n[adapters.db]\ntype = "memory"\n'
        '[sinks.log]\ntype = "logging"\nlogger = "postgresql://qts:s3cr3t-pw@db.internal/qts"\n'
    )
    result = run_cli("check", "--json", str(config))
    assert result.code == 0, result.err
    assert "s3cr3t-pw" not in result.out
    assert "postgresql://qts:***@db.internal/qts" in result.out
    bad = tmp_path / "bad.toml"
    bad.write_text(
        config.read_text().replace(
            'type = "logging"', 'type = "logging"\nmin_priority = "postgresql://qts:s3cr3t-pw@x/y"'
        )
    )
    result = run_cli("check", str(bad))
    assert result.code == 2
    assert_one_line_error(result.err, "sinks.log.min_priority")
    assert "s3cr3t-pw" not in result.err


def test_missing_config_file_is_one_line(tmp_path: Path) -> None:
    result = run_cli("check", str(tmp_path / "absent.toml"))
    assert result.code == 2
    assert_one_line_error(result.err, "configuration file not found")


def test_unknown_command_is_a_usage_error_without_traceback() -> None:
    result = run_cli("frobnicate")
    assert result.code == 2
    assert "No such command 'frobnicate'" in result.err
    assert "Traceback" not in result.err


def test_init_writes_a_starter_configuration_that_checks_healthy(tmp_path: Path) -> None:
    result = run_cli("init", cwd=tmp_path)
    assert result.code == 0, result.err
    written = tmp_path / "qts-data.toml"
    assert written.exists()
    assert "# qts-data configuration" in written.read_text()
    checked = run_cli("check", str(written))
    assert checked.code == 0, checked.out + checked.err
    again = run_cli("init", cwd=tmp_path)
    assert again.code == 2
    assert_one_line_error(again.err, "already exists", "--force")
    assert run_cli("init", "--force", cwd=tmp_path).code == 0


@pytest.mark.slow
def test_demo_runs_the_main_job_in_under_ten_seconds() -> None:
    started = time.perf_counter()
    result = run_cli("demo")
    elapsed = time.perf_counter() - started
    assert result.code == 0, result.err
    assert elapsed < 10, f"demo took {elapsed:.1f} s"
    out = result.out
    assert "ticks:" in out
    assert "skipped" in out
    assert "candles from ticks: 1m 600, 5m 120, 15m 40, 1h 10" in out
    assert "retried writes recorded once" in out
    assert "hit rate" in out
    assert "position" in out
    assert "stack health: HEALTHY" in out


def test_demo_rejects_bad_arguments_in_one_line() -> None:
    result = run_cli("demo", "--hours", "-3")
    assert result.code == 2
    assert "Invalid value for '--hours'" in result.err
    assert "Traceback" not in result.err


def test_a_closed_pipe_ends_a_command_quietly() -> None:
    """`qts-data plugins | head -0`: the reader went away; no error text, exit 141 like Unix tools."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "qts_data.cli", "plugins"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the command writes anything
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141, err
    assert err == ""


def test_debug_shows_the_traceback_of_a_configuration_error_before_its_line(
    tmp_path: Path,
) -> None:
    config = tmp_path / "qts.toml"
    config.write_text('[stack]\nadapter = "db"\n[adapters.db]\ntype = "hyperstore"\n')
    env = {**os.environ, "QTS_DATA_DEBUG": "1"}
    result = run_cli("check", str(config), env=env)
    assert result.code == 2
    assert result.err.startswith("Traceback (most recent call last):"), result.err
    assert result.err.strip().splitlines()[-1].startswith("qts-data: error: ")
    quiet = run_cli("check", str(config), env={**os.environ, "QTS_DATA_DEBUG": "0"})
    assert_one_line_error(quiet.err, "no adapter named 'hyperstore'")


def test_piped_tables_print_whole_values(plugin_site: PluginSite) -> None:
    plugin_site.add("broken", "import backend_library_that_is_not_installed_anywhere\n")
    env = plugin_site.env()
    env.pop("COLUMNS", None)  # not a terminal, no width given: rich would assume 80
    listed = run_cli("plugins", env=env)
    assert listed.code == 0, listed.err
    assert "backend_library_that_is_not_installed_anywhere" in listed.out
    assert "…" not in listed.out


def test_a_library_warning_with_its_exception_is_one_line_unless_debugging(
    plugin_site: PluginSite, tmp_path: Path
) -> None:
    plugin_site.add("noisy", NOISY)
    config = tmp_path / "qts.toml"
    config.write_text('[stack]\nadapter = "db"\n[adapters.db]\ntype = "noisy"\n')
    expected = [
        "qts-data: warning: asyncpg.pool: Failed to restore the pool connection floor; retrying"
        f" (ConnectionRefusedError: [Errno 111] Connect call failed postgresql://qts:***@db/qts #{n})"
        for n in (1, 2)
    ]
    quiet = run_cli("check", str(config), env=plugin_site.env(COLUMNS="200"))
    assert quiet.code == 0, quiet.out + quiet.err
    assert quiet.err.splitlines() == expected  # one line per event, no traceback
    debug = run_cli("check", str(config), env=plugin_site.env(QTS_DATA_DEBUG="1"))
    assert debug.code == 0, debug.out + debug.err
    assert debug.err.count("Traceback (most recent call last):") == 2, debug.err
    lines = debug.err.splitlines()
    assert lines[0] == expected[0]
    assert lines[1] == "Traceback (most recent call last):"
    assert expected[1] in lines
    assert "s3cr3t-pw" not in debug.err
