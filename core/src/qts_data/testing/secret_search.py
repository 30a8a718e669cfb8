"""A search for secrets in everything the command line shows: every command, awkward secrets.

A plugin with secret-bearing settings writes configurations that hold one of
:data:`AWKWARD_SECRETS` (in a URL and as a field, in TOML and in the
environment, on every error path it can reach), runs every command of the CLI
on each through :func:`run_every_command`, and asserts with
:func:`assert_not_shown` that no piece of the secret appears in stdout, stderr
or any log record::

    for secret in AWKWARD_SECRETS:
        config = write_config(tmp_path, dsn=f"postgresql://qts:{secret}@127.0.0.1:1/qts")
        for shown in run_every_command(config, tmp_path):
            assert_not_shown(secret, shown)

or, with a :class:`SecretCase` per path, :func:`assert_check_hides` (``check`` says
what is wrong, without the secret) and :func:`assert_no_command_shows`.

:func:`masking_net_off` turns off the last line of defence (the registry of
known secrets and the URL-password pattern that :func:`qts_data.config.secrets.mask`
applies to output), so what is checked is that secrets are kept out of messages
by construction.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import click
from click.testing import CliRunner

__all__ = [
    "AWKWARD_SECRETS",
    "SecretCase",
    "Shown",
    "assert_check_hides",
    "assert_no_command_shows",
    "assert_not_shown",
    "command_lines",
    "masking_net_off",
    "run_cli",
    "run_every_command",
    "secret_pieces",
]

#: Secrets of every awkward shape: digits only (a TOML number when unquoted), and each of
#: ``/ # ? @ % :`` and spaces, alone and together. Built of distinctive three-character
#: pieces, so a message that shows any piece of one (``urllib`` cuts a password at its
#: first ``/``) is caught without false alarms.
AWKWARD_SECRETS: tuple[str, ...] = (
    "80417263",
    "Zq7Vw/Xk3Jp",
    "Rt5Ln#Mb8Hc",
    "Fd2Gs?Wy6Nu",
    "Ke4Tp@Qa1Zr",
    "Hm3%41Bn5Vx",
    "Cv8:Lx2Dq7",
    "Sy6 Dj9 Pw4",
    "Gb5/Tz8#Ym3?Qe9@Wr2%41Ux:Io4 Pa7",
)

_DELIMITERS = re.compile(r"[/#?@%: ]+")


def secret_pieces(secret: str) -> set[str]:
    """What must not appear: the secret, its URL-decoded form, and each piece of three or
    more characters between its delimiters (for an all-digit secret, the whole only)."""
    pieces = {secret, unquote(secret)}
    pieces.update(p for p in _DELIMITERS.split(secret) if len(p) >= 3)
    pieces.update(p for p in _DELIMITERS.split(unquote(secret)) if len(p) >= 3)
    return pieces


@dataclass
class Shown:
    """What one command showed: its arguments, exit code, stdout, stderr and log records."""

    argv: list[str]
    exit_code: int
    stdout: str
    stderr: str
    logs: str

    def text(self) -> str:
        return "\n".join((self.stdout, self.stderr, self.logs))


def assert_not_shown(secret: str, shown: Shown) -> None:
    """Fail, naming the command and the piece, when any piece of ``secret`` was shown."""
    text = shown.text()
    found = sorted(piece for piece in secret_pieces(secret) if piece in text)
    if found:
        where = next(
            name
            for name, part in (
                ("stdout", shown.stdout),
                ("stderr", shown.stderr),
                ("logs", shown.logs),
            )
            if any(piece in part for piece in found)
        )
        line = next(line for line in text.splitlines() if any(p in line for p in found))
        raise AssertionError(
            f"qts-data {' '.join(shown.argv)} (exit {shown.exit_code}) showed {found!r} of the "
            f"secret {secret!r} in its {where}: {line[:300]}"
        )


#: Arguments of each command that runs on a configuration, the configuration last;
#: ``{config}`` and ``{dir}`` are filled in. A command of the CLI missing here fails
#: :func:`command_lines`, so a new command is searched too.
_COMMANDS: dict[str, list[str]] = {
    "backfill": ["backfill", "{config}"],
    "check": ["check", "{config}"],
    "check --json": ["check", "--json", "{config}"],
    "db gaps": [
        "db", "gaps", "KRW-BTC", "--interval", "1m",
        "--from", "2024-01-01", "--to", "2024-01-02", "{config}",
    ],
    "db maintain": ["db", "maintain", "{config}"],
    "db status": ["db", "status", "{config}"],
    "db status --json": ["db", "status", "--json", "{config}"],
    "demo": ["demo", "--config", "{config}", "--hours", "0.1", "--trades", "5"],
    "ingest ticks": ["ingest", "ticks", "{dir}/ticks.csv", "{config}"],
    "init": ["init", "{dir}/starter.toml"],
    "metrics": ["metrics", "--once", "{config}"],
    "migrate": ["migrate", "{config}"],
    "migrate --dry-run": ["migrate", "--dry-run", "{config}"],
    "plugins": ["plugins"],
    "plugins --json": ["plugins", "--json"],
    "query ohlcv": [
        "query", "ohlcv", "KRW-BTC", "--from", "2024-01-01", "--to", "2024-01-02", "{config}",
    ],
    "verify": ["verify", "{config}"],
}  # fmt: skip

_TICKS_CSV = (
    "timestamp,symbol,price,volume,side,trade_id\n"
    "2024-01-01T00:00:00Z,KRW-BTC,50000000,0.01,BUY,t1\n"
)


def _leaf_commands(group: click.Group, prefix: str = "") -> list[str]:
    names = []
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            names.extend(_leaf_commands(command, path + " "))
        else:
            names.append(path)
    return names


def command_lines(config: Path, workdir: Path) -> list[list[str]]:
    """The argument lists of every command of the CLI (some with ``--json`` too) on ``config``."""
    from qts_data.cli.main import cli

    covered = {key.split(" --")[0] for key in _COMMANDS}
    missing = [name for name in _leaf_commands(cli) if name not in covered]
    if missing:
        raise AssertionError(f"the secret search has no arguments for: {', '.join(missing)}")
    (workdir / "ticks.csv").write_text(_TICKS_CSV, "utf-8")
    lines = []
    for args in _COMMANDS.values():
        options = {option for option in args if option.startswith("--")}
        if "--dry-run" in options and not _has_option(cli, args, "--dry-run"):
            continue
        lines.append([a.format(config=config, dir=workdir) for a in args])
    return lines


def _has_option(group: click.Group, args: list[str], option: str) -> bool:
    command: click.Command = group
    for arg in args:
        if isinstance(command, click.Group) and arg in command.commands:
            command = command.commands[arg]
    return any(option in p.opts for p in command.params)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = f"{record.name}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            line += "\n" + "".join(traceback.format_exception(*record.exc_info))
        self.lines.append(line)


def run_cli(argv: list[str], env: Mapping[str, str] | None = None) -> Shown:
    """Run ``qts-data ARGV`` in this process; stdout, stderr and every log record (DEBUG up)."""
    from qts_data.cli.logs import configure_logging
    from qts_data.cli.main import cli

    runner = _runner()
    records = _Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(records)
    root.setLevel(logging.DEBUG)
    try:
        configure_logging()
        result = runner.invoke(cli, argv, env=dict(env or {}), catch_exceptions=True)
    finally:
        root.removeHandler(records)
        root.setLevel(level)
    logs = list(records.lines)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        logs.append("".join(traceback.format_exception(result.exception)))
    return Shown(argv, result.exit_code, result.stdout, _stderr(result), "\n".join(logs))


def run_every_command(
    config: Path, workdir: Path, env: Mapping[str, str] | None = None
) -> Iterator[Shown]:
    """:func:`run_cli` of each of :func:`command_lines`."""
    for argv in command_lines(config, workdir):
        yield run_cli(argv, env)


def _runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg, unused-ignore]  # click < 8.2
    except TypeError:
        return CliRunner()  # click >= 8.2 keeps stderr apart by itself


def _stderr(result: Any) -> str:
    try:
        return str(result.stderr)
    except ValueError:  # pragma: no cover - stderr mixed into stdout
        return ""


@contextmanager
def masking_net_off() -> Iterator[None]:
    """Turn off :func:`~qts_data.config.secrets.mask`'s registry and URL pattern for a block."""
    from qts_data.config import secrets

    known, pattern = secrets._known, secrets._URL_PASSWORD

    class _Forgetful(set[str]):
        def add(self, value: str) -> None:
            pass

    secrets._known = _Forgetful()
    secrets._URL_PASSWORD = re.compile(r"(?!)(?P<head>)(?P<pw>)(?P<at>)")
    try:
        yield
    finally:
        secrets._known, secrets._URL_PASSWORD = known, pattern


@dataclass(frozen=True)
class SecretCase:
    """One way a secret reaches a configuration: the TOML of the component's table, the
    environment, and what ``qts-data check`` must answer (exit code, a fragment of it)."""

    toml: str
    env: dict[str, str]
    exit_code: int
    says: str


def assert_check_hides(config: Path, secret: str, case: SecretCase) -> None:
    """``qts-data check`` (plain and ``--json``, with and without ``QTS_DATA_DEBUG``) on
    ``config`` answers as ``case`` says, shows no piece of ``secret``, masking net off."""
    with masking_net_off():
        for debug in ("0", "1"):
            for argv in (["check", str(config)], ["check", "--json", str(config)]):
                shown = run_cli(argv, {**case.env, "QTS_DATA_DEBUG": debug})
                assert_not_shown(secret, shown)
                assert shown.exit_code == case.exit_code, shown.text()
                if "--json" not in argv:
                    assert case.says in shown.stdout + shown.stderr, shown.text()


def assert_no_command_shows(config: Path, workdir: Path, secret: str, case: SecretCase) -> None:
    """Every command of the CLI on ``config`` (``QTS_DATA_DEBUG=1``: tracebacks too) shows
    no piece of ``secret``, masking net off."""
    ran = 0
    with masking_net_off():
        for shown in run_every_command(config, workdir, {**case.env, "QTS_DATA_DEBUG": "1"}):
            assert_not_shown(secret, shown)
            ran += 1
    assert ran == len(command_lines(config, workdir))
