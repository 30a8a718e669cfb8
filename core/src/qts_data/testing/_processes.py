"""Throwaway ``redis-server`` and PostgreSQL processes for fault-injection tests.

The handles here start servers on free loopback ports in private temporary
directories and can kill, freeze, stop and restart them. They never touch the
machine's shared servers. Every handle is also registered for an ``atexit``
clean-up so that an interrupted test run does not leave servers behind
(a SIGKILLed pytest still can; the directories are named ``qts-redis-*`` and
``qts-pg-*`` under the temporary directory).

PostgreSQL refuses to run as root: when the tests run as root the PostgreSQL
binaries are started as the ``postgres`` OS user (``QTS_TEST_PG_OS_USER``
overrides the name) and the data directories are handed to that user.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from qts_data.testing._resp import CommandArg, RespClient, RespReply

__all__ = [
    "PostgresProcess",
    "PsqlError",
    "RedisProcess",
    "ServerStartError",
    "find_free_port",
    "pg_bindir",
    "psql_binary",
    "run_psql",
]

LOOPBACK = "127.0.0.1"
StopMode = Literal["smart", "fast", "immediate"]
_STOP_SIGNALS: dict[str, signal.Signals] = {
    "smart": signal.SIGTERM,
    "fast": signal.SIGINT,
    "immediate": signal.SIGQUIT,
}
_START_ATTEMPTS = 5


class ServerStartError(RuntimeError):
    """A throwaway server did not come up; the message includes the tail of its log."""


# -- ports -----------------------------------------------------------------------------------------

_ports_lock = threading.Lock()
_ports_handed_out: set[int] = set()


def find_free_port(host: str = LOOPBACK, *, avoid: Sequence[int] = ()) -> int:
    """A TCP port on ``host`` that nothing listens on right now.

    The port is found by binding a socket to port 0 and closing it, so another
    process can still take it before the caller binds it: callers retry with a
    new port when the server reports "address in use". Ports already handed
    out by this process are not handed out again.
    """
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        with _ports_lock:
            if port in _ports_handed_out or port in avoid:
                continue
            _ports_handed_out.add(port)
        return port
    raise RuntimeError("could not find a free TCP port")


# -- process helpers -------------------------------------------------------------------------------


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0:1] != ["Z"]


def _children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux ``/proc``; empty elsewhere)."""
    children: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return children
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 1 and fields[1] == str(pid):
            children.append(int(entry))
    return children


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _stop(pids: Sequence[int], timeout: float = 5.0) -> None:
    """SIGSTOP ``pids`` and wait until the kernel shows them stopped: a signal is delivered
    asynchronously, and a server still running for a moment would answer a test's request."""
    for pid in pids:
        _signal(pid, signal.SIGSTOP)
    deadline = time.monotonic() + timeout
    waiting = list(pids)
    while waiting and time.monotonic() < deadline:
        waiting = [pid for pid in waiting if _process_state(pid) not in ("T", "t", "Z", "X", None)]
        if waiting:
            time.sleep(0.001)


def _process_state(pid: int) -> str | None:
    """The state letter of ``/proc/PID/stat`` (R, S, T...), None when unknown or gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return None


def _wait_gone(pids: Sequence[int], timeout: float) -> list[int]:
    """Wait until none of ``pids`` is alive; return those still alive at the deadline."""
    deadline = time.monotonic() + timeout
    alive = [pid for pid in pids if _pid_alive(pid)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [pid for pid in alive if _pid_alive(pid)]
    return alive


_live_handles: weakref.WeakSet[_ServerHandle] = weakref.WeakSet()


@atexit.register
def _close_leftovers() -> None:
    for handle in list(_live_handles):
        with contextlib.suppress(Exception):
            handle.close()


class _ServerHandle:
    """Shared bookkeeping of the two handle classes."""

    base_dir: Path
    _proc: subprocess.Popen[bytes] | None
    _closed: bool

    def _register(self) -> None:
        _live_handles.add(self)

    @property
    def running(self) -> bool:
        """True while the server process exists (it may be frozen)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int:
        """PID of the (last started) server process."""
        if self._proc is None:
            raise RuntimeError("the server has not been started")
        return self._proc.pid

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> _ServerHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# -- Redis -----------------------------------------------------------------------------------------


def _redis_server_binary() -> str:
    binary = os.environ.get("QTS_TEST_REDIS_SERVER") or shutil.which("redis-server")
    if not binary:
        raise ServerStartError(
            "redis-server was not found on PATH (set QTS_TEST_REDIS_SERVER to its path)"
        )
    return binary


class RedisProcess(_ServerHandle):
    """A ``redis-server`` of the test's own on a free loopback port.

    Persistence is off (``--save "" --appendonly no``) and its working
    directory (``.dir``) is a private temporary directory, which is where a
    relative ``--cluster-config-file`` ends up. Create one with
    :meth:`launch`; :meth:`close` kills it and removes the directory.
    """

    host = LOOPBACK

    def __init__(self, extra_args: Sequence[str] = (), *, port: int | None = None) -> None:
        self.extra_args: tuple[str, ...] = tuple(extra_args)
        self.base_dir = Path(tempfile.mkdtemp(prefix="qts-redis-"))
        self.log_path = self.base_dir / "redis.log"
        self._fixed_port = port is not None
        self.port: int = port if port is not None else find_free_port()
        self.cluster_port: int | None = None
        if "--cluster-enabled" in self.extra_args and "--cluster-port" not in self.extra_args:
            # The default bus port (port + 10000) may be taken or above 65535.
            self.cluster_port = find_free_port(avoid=[self.port])
        self._proc = None
        self._frozen = False
        self._closed = False
        self._ever_started = False
        self._register()

    @classmethod
    def launch(cls, *extra_args: str, port: int | None = None) -> RedisProcess:
        """Start a new server (extra ``redis-server`` arguments as separate tokens) and wait for PING."""
        server = cls(extra_args, port=port)
        try:
            server.start()
        except BaseException:
            server.close()
            raise
        return server

    @property
    def dir(self) -> Path:
        """The server's working directory."""
        return self.base_dir

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def frozen(self) -> bool:
        return self._frozen

    def _argv(self) -> list[str]:
        argv = [
            _redis_server_binary(),
            "--port", str(self.port),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.base_dir),
            "--logfile", str(self.log_path),
            "--daemonize", "no",
            "--protected-mode", "no",
        ]  # fmt: skip
        if self.cluster_port is not None:
            argv += ["--cluster-port", str(self.cluster_port)]
        return [*argv, *self.extra_args]

    def start(self, timeout: float = 10.0) -> None:
        """Start the server (on the same port as before, if it ran before) and wait for PING."""
        if self._closed:
            raise RuntimeError("the handle is closed")
        if self.running:
            raise RuntimeError(f"redis-server is already running on port {self.port}")
        for attempt in range(_START_ATTEMPTS):
            log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            self._proc = subprocess.Popen(
                self._argv(),
                cwd=self.base_dir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self._frozen = False
            if self._wait_ready(timeout):
                self._ever_started = True
                return
            log = (
                self.log_path.read_text(errors="replace")[log_offset:]
                if self.log_path.exists()
                else ""
            )
            self._kill_proc()
            port_taken = "Address already in use" in log or "bind" in log.lower()
            retry = attempt + 1 < _START_ATTEMPTS
            if port_taken and retry and not self._fixed_port and not self._ever_started:
                self.port = find_free_port()
                if self.cluster_port is not None:
                    self.cluster_port = find_free_port(avoid=[self.port])
                continue
            raise ServerStartError(
                f"redis-server did not start on {self.host}:{self.port}; log tail:\n"
                + _log_tail(self.log_path)
            )

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                return False
            if self.ping(timeout=0.5):
                return True
            time.sleep(0.01)
        return False

    def connect(self, timeout: float = 5.0) -> RespClient:
        """A new RESP connection to the server (close it, or use it as a context manager)."""
        return RespClient.connect(f"redis://{self.host}:{self.port}/0", timeout=timeout)

    def command(self, *args: CommandArg, timeout: float = 5.0) -> RespReply:
        """Run one command on a fresh connection; raises on timeout / refusal / error reply."""
        with self.connect(timeout) as client:
            return client.command(*args)

    def ping(self, timeout: float = 1.0) -> bool:
        """True if the server answers PING within ``timeout``; false on timeout or refusal."""
        try:
            with self.connect(timeout) as client:
                return client.ping()
        except (OSError, ValueError):
            return False

    def freeze(self) -> None:
        """SIGSTOP the server: connections are accepted by the kernel but nothing is answered."""
        if not self.running:
            raise RuntimeError("redis-server is not running")
        _stop([self.pid])
        self._frozen = True

    def thaw(self) -> None:
        """SIGCONT a frozen server."""
        if self._proc is not None:
            _signal(self._proc.pid, signal.SIGCONT)
        self._frozen = False

    def kill(self) -> None:
        """SIGKILL the server and wait for it to be gone (connections break, data is lost)."""
        self._kill_proc()

    def _kill_proc(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._frozen = False

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM, no save), SIGKILL if it does not exit within ``timeout``."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        self.thaw()
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill_proc()

    def restart(self, timeout: float = 10.0) -> None:
        """:meth:`stop` then :meth:`start` on the same port."""
        self.stop()
        self.start(timeout)

    def close(self) -> None:
        """Thaw and kill the server and remove its directory (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.thaw()
            self._kill_proc()
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            _live_handles.discard(self)

    def __enter__(self) -> RedisProcess:
        return self

    def __repr__(self) -> str:
        state = "frozen" if self._frozen else "running" if self.running else "stopped"
        return f"<RedisProcess {self.host}:{self.port} {state}>"


# -- PostgreSQL ------------------------------------------------------------------------------------


def pg_bindir() -> Path:
    """Directory of the PostgreSQL server binaries (initdb, postgres, pg_basebackup, ...).

    ``QTS_TEST_PG_BINDIR``, else the newest ``/usr/lib/postgresql/<v>/bin``,
    else ``pg_config --bindir``, else the directory of ``initdb`` on PATH.
    """
    env = os.environ.get("QTS_TEST_PG_BINDIR")
    if env:
        return Path(env)
    versions = []
    for candidate in Path("/usr/lib/postgresql").glob("*/bin"):
        if (candidate / "initdb").exists():
            try:
                versions.append((float(candidate.parent.name), candidate))
            except ValueError:
                continue
    if versions:
        return max(versions)[1]
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out and (Path(out) / "initdb").exists():
            return Path(out)
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise ServerStartError(
        "PostgreSQL server binaries (initdb, postgres) not found; set QTS_TEST_PG_BINDIR"
    )


def psql_binary() -> str:
    """The ``psql`` client: PATH first, then the server binary directory."""
    found = shutil.which("psql")
    if found:
        return found
    try:
        candidate = pg_bindir() / "psql"
    except ServerStartError:
        candidate = None
    if candidate is not None and candidate.exists():
        return str(candidate)
    raise FileNotFoundError("psql was not found on PATH (install the PostgreSQL client)")


class _OsUser:
    """The OS identity PostgreSQL binaries run as (``postgres`` when we are root)."""

    def __init__(self) -> None:
        self.switch = hasattr(os, "geteuid") and os.geteuid() == 0
        self.uid = self.gid = -1
        self.name = ""
        self.home = ""
        if self.switch:
            import pwd

            name = os.environ.get("QTS_TEST_PG_OS_USER", "postgres")
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                raise ServerStartError(
                    f"running as root, but there is no {name!r} OS user to run PostgreSQL as "
                    "(PostgreSQL refuses to run as root; set QTS_TEST_PG_OS_USER)"
                ) from None
            self.uid, self.gid, self.name, self.home = (
                entry.pw_uid,
                entry.pw_gid,
                entry.pw_name,
                entry.pw_dir,
            )

    def chown(self, path: Path) -> None:
        if self.switch:
            os.chown(path, self.uid, self.gid)

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """``subprocess.Popen`` as this user (Popen keyword arguments pass through)."""
        if self.switch:
            env = dict(os.environ, HOME=self.home, USER=self.name, LOGNAME=self.name)
            kwargs.update(user=self.uid, group=self.gid, extra_groups=[], env=env)
        return subprocess.Popen(argv, **kwargs)


# Speed over durability: these clusters are thrown away.
DEFAULT_PG_SETTINGS: Mapping[str, str] = {
    # fsync=off only loses data if the machine crashes; synchronous_commit stays on so
    # that a transaction committed before kill() survives crash recovery.
    "fsync": "off",
    "shared_buffers": "32MB",
    "max_connections": "50",
    "max_wal_senders": "10",
    "wal_level": "replica",
    "hot_standby": "on",
    "checkpoint_timeout": "30min",
    "max_wal_size": "256MB",
    "log_min_messages": "warning",
    "log_line_prefix": "%m [%p] ",
    "logging_collector": "off",
    "autovacuum": "off",
    "timezone": "UTC",
}


class PostgresProcess(_ServerHandle):
    """A PostgreSQL cluster of the test's own: own data directory, own free port.

    It listens on 127.0.0.1 only, with its Unix socket in its private
    directory, trusts every local connection (user ``postgres``), and runs
    with durability off (``fsync=off``; data survives a restart or a crash of
    the server, not of the machine). The postmaster is a direct child of the
    test process. Create one with :meth:`launch`; :meth:`close` stops it and
    removes its directory, and that of its replicas.
    """

    host = LOOPBACK
    user = "postgres"

    def __init__(
        self,
        base_dir: Path,
        data_dir: Path,
        *,
        port: int | None = None,
        primary: PostgresProcess | None = None,
    ) -> None:
        self.base_dir = base_dir
        self.data_dir = data_dir
        self.log_path = base_dir / "postgres.log"
        self.socket_dir = base_dir
        self.primary = primary
        self.replicas: list[PostgresProcess] = []
        self._fixed_port = port is not None
        self.port: int = port if port is not None else find_free_port()
        self._proc = None
        self._frozen_pids: list[int] = []
        self._closed = False
        self._ever_started = False
        self._os_user = _OsUser()
        self._bindir = pg_bindir()
        self._register()

    # -- creation --------------------------------------------------------------------------------

    @classmethod
    def launch(
        cls, settings: Mapping[str, str] | None = None, *, start: bool = True
    ) -> PostgresProcess:
        """``initdb`` a new cluster (extra ``postgresql.conf`` ``settings``) and start it."""
        os_user = _OsUser()
        base_dir = Path(tempfile.mkdtemp(prefix="qts-pg-"))
        os_user.chown(base_dir)
        server = cls(base_dir, base_dir / "data")
        try:
            server._initdb({**DEFAULT_PG_SETTINGS, **(settings or {})})
            if start:
                server.start()
        except BaseException:
            server.close()
            raise
        return server

    def _run_as_pg(self, argv: Sequence[str], timeout: float, what: str) -> str:
        proc = self._os_user.popen(
            argv,
            cwd=self.base_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            proc.kill()
            proc.communicate()
            raise ServerStartError(f"{what} timed out after {timeout} s") from exc
        text = output.decode(errors="replace")
        if proc.returncode != 0:
            raise ServerStartError(f"{what} failed (exit {proc.returncode}):\n{text}")
        return text

    def _initdb(self, settings: Mapping[str, str]) -> None:
        self._run_as_pg(
            [
                str(self._bindir / "initdb"),
                "-D", str(self.data_dir),
                "-U", self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            timeout=120,
            what="initdb",
        )  # fmt: skip
        conf = "".join(f"{key} = '{_conf_quote(value)}'\n" for key, value in settings.items())
        with (self.data_dir / "postgresql.conf").open("a") as handle:
            handle.write("\n# qts-data throwaway settings\n" + conf)

    # -- addresses ---------------------------------------------------------------------------------

    @property
    def dsn(self) -> str:
        """``postgresql://postgres@127.0.0.1:<port>/postgres``."""
        return self.dsn_for("postgres")

    def dsn_for(self, dbname: str) -> str:
        """The DSN of database ``dbname`` on this server."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    @property
    def is_replica(self) -> bool:
        return self.primary is not None

    # -- life cycle ------------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        """Start the postmaster (same port as before, if it ran before) and wait until it accepts
        connections (recovering first if it was killed or stopped in ``immediate`` mode)."""
        if self._closed:
            raise RuntimeError("the handle is closed")
        if self.running:
            raise RuntimeError(f"PostgreSQL is already running on port {self.port}")
        for attempt in range(_START_ATTEMPTS):
            log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            with self.log_path.open("ab") as log:
                self._os_user.chown(self.log_path)
                self._proc = self._os_user.popen(
                    [
                        str(self._bindir / "postgres"),
                        "-D", str(self.data_dir),
                        "-c", f"port={self.port}",
                        "-c", f"listen_addresses={self.host}",
                        "-c", f"unix_socket_directories={self.socket_dir}",
                    ],
                    cwd=self.base_dir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )  # fmt: skip
            self._frozen_pids = []
            if self._wait_ready(timeout):
                self._ever_started = True
                return
            self._kill_all(wait_orphans=True)
            with self.log_path.open("rb") as handle:
                handle.seek(log_offset)
                log_text = handle.read().decode(errors="replace")
            port_taken = "Address already in use" in log_text or "could not bind" in log_text
            retry = attempt + 1 < _START_ATTEMPTS
            if port_taken and retry and not self._fixed_port and not self._ever_started:
                self.port = find_free_port()
                continue
            raise ServerStartError(
                f"PostgreSQL did not start on {self.host}:{self.port} "
                f"(data directory {self.data_dir}); log tail:\n" + _log_tail(self.log_path)
            )

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        pg_isready = str(self._bindir / "pg_isready")
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                return False
            result = subprocess.run(
                [pg_isready, "-q", "-h", self.host, "-p", str(self.port), "-U", self.user,
                 "-d", "postgres", "-t", "2"],
                capture_output=True,
                timeout=10,
                check=False,
            )  # fmt: skip
            if result.returncode == 0:
                return True
            time.sleep(0.05)
        return False

    def stop(self, mode: StopMode = "fast", timeout: float = 30.0) -> None:
        """Stop the server like ``pg_ctl stop -m <mode>`` and wait for every process to exit.

        ``smart`` waits for clients to disconnect, ``fast`` disconnects them and
        checkpoints, ``immediate`` aborts without a checkpoint (the next start
        runs crash recovery). Falls back to SIGKILL after ``timeout``.
        """
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        self.thaw()
        children = _children_of(proc.pid)
        _signal(proc.pid, _STOP_SIGNALS[mode])
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill_all(wait_orphans=True)
            return
        for pid in _wait_gone(children, 10.0):
            _signal(pid, signal.SIGKILL)

    def restart(self, mode: StopMode = "fast", timeout: float = 30.0) -> None:
        """:meth:`stop` (``mode``) then :meth:`start` on the same port."""
        self.stop(mode)
        self.start(timeout)

    def kill(self, *, postmaster_only: bool = False) -> None:
        """Crash the server: SIGKILL the postmaster and (default) all of its child processes.

        Connections break at once; the next :meth:`start` runs crash recovery.
        With ``postmaster_only=True`` only the postmaster is killed and its
        orphaned backends are left to notice and exit by themselves (waited
        for, SIGKILLed after 10 s), like an OOM kill of the postmaster.
        """
        self._kill_all(wait_orphans=True, postmaster_only=postmaster_only)

    def _kill_all(self, *, wait_orphans: bool, postmaster_only: bool = False) -> None:
        proc = self._proc
        self._frozen_pids = []
        if proc is None:
            return
        children = _children_of(proc.pid) if proc.poll() is None else []
        if proc.poll() is None:
            # A stopped process still dies on SIGKILL; its children get SIGCONT first
            # so that they can notice the postmaster's death.
            proc.kill()
            proc.wait()
        for pid in children:
            if not postmaster_only:
                _signal(pid, signal.SIGKILL)
            _signal(pid, signal.SIGCONT)
        if wait_orphans:
            for pid in _wait_gone(children, 10.0):
                _signal(pid, signal.SIGKILL)
            _wait_gone(children, 5.0)

    def freeze(self) -> None:
        """SIGSTOP the postmaster and all its processes: the server hangs (connects and queries
        time out) until :meth:`thaw`."""
        if not self.running:
            raise RuntimeError("PostgreSQL is not running")
        pids = [self.pid, *_children_of(self.pid)]
        _stop(pids)
        self._frozen_pids = pids

    def thaw(self) -> None:
        """SIGCONT what :meth:`freeze` stopped."""
        for pid in self._frozen_pids:
            _signal(pid, signal.SIGCONT)
        self._frozen_pids = []

    @property
    def frozen(self) -> bool:
        return bool(self._frozen_pids)

    def close(self) -> None:
        """Stop the server (immediate) and its replicas, and remove the directory (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            for replica in self.replicas:
                replica.close()
            if self.running:
                try:
                    self.stop("immediate", timeout=15)
                finally:
                    self._kill_all(wait_orphans=True)
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            _live_handles.discard(self)

    # -- SQL ---------------------------------------------------------------------------------------

    def psql(self, sql: str, dbname: str = "postgres", timeout: float = 30.0) -> str:
        """Run ``sql`` with ``psql`` (unaligned, tuples only, stop on error); return its output
        stripped. Raises :class:`PsqlError` on failure."""
        return run_psql(self.dsn_for(dbname), sql, timeout=timeout)

    def is_in_recovery(self) -> bool:
        """True for a standby (``pg_is_in_recovery()``)."""
        return self.psql("SELECT pg_is_in_recovery()") == "t"

    # -- replication -------------------------------------------------------------------------------

    def make_replica(self, *, start: bool = True, timeout: float = 60.0) -> PostgresProcess:
        """A streaming hot-standby replica of this server on another free port.

        Made with ``pg_basebackup -R -X stream`` (so it follows this server via
        ``primary_conninfo``); closed together with this handle. Use
        :meth:`wait_for_replay` to wait until it has caught up.
        """
        if not self.running:
            raise RuntimeError("the primary must be running to make a replica")
        base_dir = Path(tempfile.mkdtemp(prefix="qts-pg-replica-"))
        self._os_user.chown(base_dir)
        replica = PostgresProcess(base_dir, base_dir / "data", primary=self)
        self.replicas.append(replica)
        try:
            replica._run_as_pg(
                [
                    str(self._bindir / "pg_basebackup"),
                    "-h", self.host,
                    "-p", str(self.port),
                    "-U", self.user,
                    "-D", str(replica.data_dir),
                    "-R",
                    "-X", "stream",
                    "--checkpoint=fast",
                    "--no-sync",
                ],
                timeout=timeout,
                what="pg_basebackup",
            )  # fmt: skip
            if start:
                replica.start(timeout)
        except BaseException:
            replica.close()
            self.replicas.remove(replica)
            raise
        return replica

    def current_wal_lsn(self) -> str:
        """``pg_current_wal_lsn()`` of a primary."""
        return self.psql("SELECT pg_current_wal_lsn()")

    def wait_for_replay(self, lsn: str | None = None, timeout: float = 30.0) -> None:
        """On a replica: wait until it has replayed ``lsn`` (default: the primary's current LSN)."""
        if self.primary is None:
            raise RuntimeError("not a replica")
        target = lsn or self.primary.current_wal_lsn()
        deadline = time.monotonic() + timeout
        sql = f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"
        while time.monotonic() < deadline:
            if self.psql(sql) == "t":
                return
            time.sleep(0.05)
        raise TimeoutError(f"replica on port {self.port} did not replay {target} in {timeout} s")

    def promote(self, timeout: float = 30.0) -> None:
        """Promote a replica to a primary (``pg_promote``) and wait until it accepts writes."""
        self.psql(f"SELECT pg_promote(true, {max(1, int(timeout))})", timeout=timeout + 10)
        deadline = time.monotonic() + timeout
        while self.is_in_recovery():
            if time.monotonic() > deadline:
                raise TimeoutError(f"replica on port {self.port} was not promoted in {timeout} s")
            time.sleep(0.05)

    def __enter__(self) -> PostgresProcess:
        return self

    def __repr__(self) -> str:
        role = "replica" if self.primary is not None else "primary"
        state = "frozen" if self.frozen else "running" if self.running else "stopped"
        return f"<PostgresProcess {role} {self.host}:{self.port} {state} {self.data_dir}>"


def _conf_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "''")


class PsqlError(subprocess.CalledProcessError):
    """``psql`` exited with an error; ``str()`` includes its stderr."""

    def __str__(self) -> str:
        stderr = self.stderr if isinstance(self.stderr, str) else ""
        return f"psql failed (exit {self.returncode}): {stderr.strip() or '(no output)'}"


def run_psql(dsn: str, sql: str, *, timeout: float = 30.0, connect_timeout: int = 5) -> str:
    """Run ``sql`` against ``dsn`` with ``psql -X -A -t -q -v ON_ERROR_STOP=1``; return stdout
    stripped. Raises :class:`PsqlError` (a :class:`subprocess.CalledProcessError` with stderr) on failure and
    :class:`subprocess.TimeoutExpired` after ``timeout`` seconds."""
    env = dict(os.environ)
    env.setdefault("PGCONNECT_TIMEOUT", str(connect_timeout))
    result = subprocess.run(
        [psql_binary(), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", sql],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if result.returncode != 0:
        raise PsqlError(result.returncode, ["psql", "-c", sql], result.stdout, result.stderr)
    return result.stdout.strip()


def iter_live_handles() -> Iterator[_ServerHandle]:
    """Handles not closed yet (for debugging leaks)."""
    return iter(list(_live_handles))
