"""The preloaded registry process (``registry preload start``): import once, fork a child per command.

It imports what the commands need (:data:`PRELOAD_MODULES`), listens on this user's socket
(:func:`registry.cli.preload_client.socket_path`) and, for each request, forks a child that takes the
client's three standard streams, working directory, environment, umask and arguments and runs
:func:`registry.cli.main.main` exactly as ``registry`` would in its own process. The server itself never
runs a command, opens the catalog or reads settings, so each child starts from the same clean state; it
reports each child's exit status to its client (a child ended by signal ``n``: the client ends itself
with ``n``, so its caller sees what it would have seen) and sends SIGTERM to a child whose client went away.

It refuses (and the client runs the command in-process) a request from another installation or
protocol, and any request once the installation's code changed on disk since start-up
(:func:`code_fingerprint`); it then exits when its running commands end. It exits after ``--idle``
seconds without a command, on SIGTERM/SIGINT, and on ``registry preload stop``. A second server for the
same socket exits at once (the lock file ``<socket>.lock``). Linux and macOS only (fork, Unix sockets).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib
import os
import selectors
import signal
import socket
import struct
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

from sqlalchemy.orm import configure_mappers

from registry.arrow_setup import hide_pandas
from registry.cli.help_text import whole_summaries
from registry.cli.main import cli
from registry.cli.main import main as run_command
from registry.cli.preload_client import PROTOCOL, install_key, make_private_folder, private, receive, send

__all__ = ["PRELOAD_MODULES", "PreloadServer", "code_fingerprint", "main"]

PRELOAD_MODULES = (
    "registry.cli.main", "registry.config", "registry.context", "registry.registry", "registry.db",
    "registry.snapshots.commit", "registry.snapshots.diff", "registry.snapshots.tables", "registry.snapshots.read",
    "registry.snapshots.verify", "registry.provenance.sample_history", "registry.provenance.blame",
    "registry.provenance.label_diff", "registry.audit.listing", "registry.audit.verify", "registry.lineage.graph",
    "registry.query", "registry.quality.gatecheck",
    "numpy", "pyarrow", "pyarrow.compute", "pyarrow.dataset", "pyarrow.parquet", "pyarrow.csv", "duckdb",
    "numpy.ma", "sqlalchemy.dialects.sqlite.pysqlite",
)
"""What the everyday commands import; anything else a command needs it imports in its child, as usual."""

INTERNAL_ERROR = 4
_UCRED = struct.Struct("3i")


def code_fingerprint(package: Path | None = None) -> str:
    """Size and modification time of every source file of the installed ``registry`` package (or of
    ``package``), and of the site-packages folders (an install or upgrade changes them): a server whose
    code changed on disk stops taking commands."""
    package = package or Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(package):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                info = os.stat(os.path.join(root, name))
                digest.update(f"{root}/{name}\0{info.st_mtime_ns}\0{info.st_size}\n".encode())
    for folder in sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}):
        with contextlib.suppress(OSError):
            digest.update(f"{folder}\0{os.stat(folder).st_mtime_ns}\n".encode())
    return digest.hexdigest()


class PreloadServer:
    """One listening socket, the children it forked (pid -> the client's connection), and its counters."""

    def __init__(self, path: Path, idle_seconds: float) -> None:
        self.path = path
        self.idle_seconds = idle_seconds
        self.started = time.time()
        self.commands = 0
        self.stopping = False
        self.reason = ""
        self.fingerprint = code_fingerprint()
        self.children: dict[int, socket.socket] = {}
        self.last_activity = time.monotonic()
        self.selector = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.wake_read, self.wake_write = os.pipe()
        self.lock_fd = -1

    # --- life cycle ------------------------------------------------------------------------------------

    def bind(self) -> bool:
        """Take the lock and the socket path; False when another server holds them."""
        make_private_folder(self.path.parent)
        self.lock_fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.lock_fd)
            self.lock_fd = -1
            return False
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a socket left by a killed server: the lock says no one serves it
        previous = os.umask(0o177)
        try:
            self.listener.bind(str(self.path))
        finally:
            os.umask(previous)
        self.listener.listen(64)
        return True

    def serve(self) -> None:
        """Take requests until stopped, idle or stale, then wait for the running commands to end."""
        for fd in (self.wake_read, self.wake_write):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self.wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._stop_on_signal)
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wake_read, selectors.EVENT_READ, "wake")
        while True:
            for key, _ in self.selector.select(timeout=1.0):
                if key.data == "accept":
                    self._accept()
                elif key.data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wake_read, 4096)
                else:
                    self._client_hung_up(key.data, key.fileobj)  # type: ignore[arg-type]
            self._reap()
            idle = time.monotonic() - self.last_activity
            if not self.children and self.idle_seconds > 0 and idle > self.idle_seconds:
                self._stop(f"idle for {self.idle_seconds:g} s")
            if not self.children and self.stopping:
                break
        self.close()
        print(f"stopped after {self.commands} commands: {self.reason}", file=sys.stderr, flush=True)

    def close(self) -> None:
        """Remove the socket, then release the lock (while the lock is held, no other server binds the path)."""
        if self.lock_fd >= 0:
            with contextlib.suppress(OSError):
                self.path.unlink()
            os.close(self.lock_fd)
            self.lock_fd = -1
        self.listener.close()

    def _stop(self, reason: str) -> None:
        if not self.stopping:
            self.stopping, self.reason = True, reason

    def _stop_on_signal(self, signum: int, _frame: object) -> None:
        self._stop(f"signal {signal.Signals(signum).name}")

    # --- requests --------------------------------------------------------------------------------------

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        fds: list[int] = []
        try:
            conn.settimeout(5.0)
            if not self._same_user(conn):
                conn.close()
                return
            request, fds = receive(conn, max_fds=3)
            if request is None:
                conn.close()
                return
            self.last_activity = time.monotonic()
            if "control" in request:
                self._control(conn, request["control"])
                return
            refusal = self._refusal(request, fds)
            if refusal:
                send(conn, {"refused": refusal})
                conn.close()
                return
            self._start(conn, request, fds)
        except (OSError, ValueError):
            conn.close()
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)

    @staticmethod
    def _same_user(conn: socket.socket) -> bool:
        if not hasattr(socket, "SO_PEERCRED"):
            return True  # macOS: the 0700 folder is the guard
        _pid, uid, _gid = _UCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
        return bool(uid == os.getuid())

    def _refusal(self, request: dict[str, Any], fds: list[int]) -> str | None:
        if request.get("protocol") != PROTOCOL or request.get("install") != install_key():
            return "another installation or protocol"
        if len(fds) != 3:
            return "the three standard streams did not arrive"
        if self.stopping:
            return "stopping"
        if code_fingerprint() != self.fingerprint:
            self._stop("the installed code changed on disk")
            return "the installed code changed since the preloaded process started"
        return None

    def _control(self, conn: socket.socket, what: str) -> None:
        if what == "stop":
            self._stop("registry preload stop")
        with contextlib.suppress(OSError):
            send(conn, self.status())
        conn.close()

    def status(self) -> dict[str, Any]:
        """What ``registry preload status`` prints."""
        rss = 0
        with contextlib.suppress(OSError, ValueError, IndexError):
            rss = int(Path(f"/proc/{os.getpid()}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        return {"running": True, "pid": os.getpid(), "socket": str(self.path), "install": install_key(),
                "python": sys.executable, "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
                "commands_served": self.commands, "commands_running": len(self.children),
                "idle_exit_seconds": self.idle_seconds, "stopping": self.stopping,
                "rss_bytes": rss}

    def _start(self, conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
        pid = os.fork()
        if pid == 0:
            self._run_child(conn, request, fds)  # never returns
        self.commands += 1
        self.children[pid] = conn
        conn.settimeout(None)
        send(conn, {"pid": pid})
        self.selector.register(conn, selectors.EVENT_READ, pid)

    def _client_hung_up(self, pid: int, conn: socket.socket) -> None:
        """A client sends nothing after its request: readable means it went away (killed); end its command
        as a closed terminal would."""
        self.selector.unregister(conn)
        if pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(conn)
            ended = {"exit": code} if code >= 0 else {"exit": 128 - code, "signal": -code}
            with contextlib.suppress(OSError):
                send(conn, ended)
            conn.close()
            self.last_activity = time.monotonic()

    # --- the child -------------------------------------------------------------------------------------

    def _run_child(self, conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
        """In the forked child: become the client's process, run the command, leave with its status."""
        code = INTERNAL_ERROR
        try:
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
                signal.signal(signum, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self.selector.close()
            for held in (self.listener, conn, *self.children.values()):
                held.close()
            for fd in (self.wake_read, self.wake_write, self.lock_fd):
                os.close(fd)
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
                os.close(fd)
            fds.clear()
            _adopt_streams(request["streams"])
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            os.umask(int(request["umask"]))
            time.tzset()
            sys.argv = ["registry", *request["argv"]]
            code = run_command(request["argv"])
        except BaseException as exc:  # noqa: BLE001 - the child must leave through os._exit below
            with contextlib.suppress(OSError):
                os.write(2, f"error: internal error: preloaded command: {type(exc).__name__}: {exc}\n".encode())
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(code)


def _adopt_streams(streams: list[dict[str, str | None]]) -> None:
    """Text streams over descriptors 0-2, encoded as the client's would have been."""
    specs = [(0, "r", "stdin"), (1, "w", "stdout"), (2, "w", "stderr")]
    for (fd, mode, name), spec in zip(specs, streams, strict=True):
        line_buffered = fd == 2 or (fd == 1 and os.isatty(1))
        stream = open(fd, mode, encoding=spec.get("encoding") or "utf-8",  # noqa: SIM115 - lives as long as the child
                      errors=spec.get("errors") or "strict", closefd=False, buffering=1 if line_buffered else -1)
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def preload() -> int:
    """Import :data:`PRELOAD_MODULES` (those that exist: the extras may be missing) and build the CLI's help."""
    hide_pandas()
    loaded = 0
    for name in PRELOAD_MODULES:
        try:
            importlib.import_module(name)
            loaded += 1
        except ImportError:
            continue
    configure_mappers()  # the catalog's ORM set-up, once, instead of on each command's first query
    whole_summaries(cli)
    return loaded


def main(argv: list[str] | None = None) -> int:
    """``python -m registry.cli.preload_server --socket PATH --idle SECONDS`` (``registry preload start`` runs it)."""
    parser = argparse.ArgumentParser(prog="registry-preload")
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--idle", type=float, default=1800.0)
    args = parser.parse_args(argv)
    preload()
    server = PreloadServer(args.socket, args.idle)
    if not server.bind():
        print(f"a preloaded registry process already serves {args.socket}", file=sys.stderr)
        return 0
    if not private(args.socket):
        print(f"{args.socket} is not private to this user; not serving", file=sys.stderr)
        server.close()
        return 2
    print(f"serving {args.socket} (pid {os.getpid()})", file=sys.stderr, flush=True)
    server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
