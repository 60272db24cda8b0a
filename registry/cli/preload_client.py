"""The client side of ``registry preload``: hand a command to this user's preloaded registry process.

A new ``registry`` process spends most of a small command's time importing (SQLAlchemy, pydantic,
pyarrow, numpy, DuckDB: 0.3-0.6 s here), not working. ``registry preload start`` keeps one process
per installation that has imported them; the ``registry`` command then sends it its argument list,
working directory, environment, umask and its three standard streams (the file descriptors
themselves, over a Unix socket), the preloaded process forks a child that runs the command exactly
as this process would have, and this process relays signals to it and leaves with its exit status.

This module is the launcher's whole cost when nothing is preloaded: standard library only, one
``stat`` of the socket path. Any failure to hand over (no socket, a refused or stale server, an
unsupported platform) returns None and the command runs here, in-process, as it always did.
``REGISTRY_PRELOAD=off`` turns forwarding off, ``REGISTRY_PRELOAD=auto`` starts a preloaded process when
none runs (unset: only at a terminal); ``REGISTRY_PRELOAD_SOCKET`` names another socket.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import struct
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import subprocess

__all__ = ["DEFAULT_IDLE_SECONDS", "NOT_FORWARDED", "PROTOCOL", "command_word", "forward", "install_key",
           "make_private_folder", "private", "receive", "send", "socket_path", "start_server"]

PROTOCOL = 1
DEFAULT_IDLE_SECONDS = 1800.0
RESTART_PAUSE_SECONDS = 60.0
"""After starting a preloaded process, how long before a command may start another one."""
NOT_FORWARDED = frozenset({"preload", "serve"})
"""Commands that always run in their own process: the preloader's own controls, and the long-lived server."""

_GLOBAL_OPTIONS_WITH_VALUE = frozenset({"--home", "--author"})
_FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
_HEADER = struct.Struct("!I")
MAX_FRAME = 16 << 20
"""A request (argument list and environment) larger than this is refused: no real one comes near it."""


def install_key() -> str:
    """Which installation this is (interpreter, package folder and ``PYTHONPATH``, which decide what code
    a command imports): each gets its own preloaded process, so two virtualenvs or checkouts never run
    each other's code."""
    package = Path(__file__).resolve().parent.parent
    path = os.environ.get("PYTHONPATH", "")
    return hashlib.sha256(f"{sys.executable}\0{package}\0{path}".encode()).hexdigest()[:16]


def socket_path(environ: dict[str, str] | os._Environ[str] | None = None) -> Path:
    """``REGISTRY_PRELOAD_SOCKET``, else ``preload-<install>.sock`` in this user's private runtime folder
    (``$XDG_RUNTIME_DIR/registry``, else ``/tmp/registry-<uid>``)."""
    env = os.environ if environ is None else environ
    named = env.get("REGISTRY_PRELOAD_SOCKET")
    if named:
        return Path(named)
    runtime = env.get("XDG_RUNTIME_DIR")
    folder = Path(runtime) / "registry" if runtime else Path("/tmp") / f"registry-{os.getuid()}"  # noqa: S108 - a per-user 0700 folder, checked before use
    return folder / f"preload-{install_key()}.sock"


def command_word(argv: list[str]) -> str | None:
    """The command name in ``argv`` (after the global options), or None."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _GLOBAL_OPTIONS_WITH_VALUE:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def make_private_folder(folder: Path) -> None:
    """Create ``folder`` readable by this user only, or refuse one that another user owns or can enter."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(folder)
    if info.st_uid != os.getuid() or info.st_mode & 0o077 or not os.path.isdir(folder) or os.path.islink(folder):
        raise PermissionError(f"{folder} must be a folder of this user's that no one else can enter (mode 0700)")


def private(path: Path) -> bool:
    """Whether ``path`` is a socket of this user's in a folder only this user can enter: the request
    carries the environment (tokens), so a socket another user planted is never used."""
    try:
        folder, entry = os.stat(path.parent), os.lstat(path)
    except OSError:
        return False
    uid = os.getuid()
    return folder.st_uid == uid and not folder.st_mode & 0o077 and entry.st_uid == uid


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    """One length-prefixed JSON frame, with ``fds`` attached (SCM_RIGHTS) when given."""
    body = json.dumps(message).encode()
    frame = _HEADER.pack(len(body)) + body
    if fds:
        sent = socket.send_fds(sock, [frame], fds)
        if sent < len(frame):  # sendall of nothing still sends: EPIPE if the peer has answered and closed
            sock.sendall(frame[sent:])
    else:
        sock.sendall(frame)


def receive(sock: socket.socket, max_fds: int = 0) -> tuple[dict[str, Any] | None, list[int]]:
    """One frame and the descriptors that came with it; (None, []) when the peer closed first.

    It reads exactly one frame, never into the next: the server's "started" and "ended" frames can both be
    waiting when a command ends before its client reads (``--help`` on a loaded machine), and a byte read
    past the first frame would be the second one lost."""
    fds: list[int] = []
    buffer = b""
    needed = _HEADER.size
    while len(buffer) < needed:
        if max_fds and not fds:
            data, got, _flags, _addr = socket.recv_fds(sock, needed - len(buffer), max_fds)
            fds.extend(got)
        else:
            data = sock.recv(needed - len(buffer))
        if not data:
            for fd in fds:
                os.close(fd)
            return None, []
        buffer += data
        if needed == _HEADER.size and len(buffer) == _HEADER.size:
            size = _HEADER.unpack_from(buffer)[0]
            if size > MAX_FRAME:
                raise ValueError("preload frame too large")
            needed += size
    return json.loads(buffer[_HEADER.size:]), fds


def _streams() -> list[dict[str, str | None]]:
    """How this process would have encoded its three streams, so the child writes the same bytes."""
    return [{"encoding": getattr(stream, "encoding", None), "errors": getattr(stream, "errors", None)}
            for stream in (sys.stdin, sys.stdout, sys.stderr)]


def forward(argv: list[str]) -> int | None:
    """Run ``registry argv`` in the preloaded process and return its exit status; None when it cannot be
    handed over (the caller then runs it here). Nothing has been run when None is returned.

    When none answers, one is started in the background for the next command (this one still runs here)
    with ``REGISTRY_PRELOAD=auto``, and, when the variable is unset, in a terminal (stdin and stderr are
    terminals: a person typing commands), saying so once; never for a script, a pipe or CI."""
    mode = os.environ.get("REGISTRY_PRELOAD", "").lower()
    if mode in {"off", "0", "false", "no"}:
        return None
    if command_word(argv) in NOT_FORWARDED or not hasattr(socket, "AF_UNIX") or not hasattr(socket, "send_fds"):
        return None
    path = socket_path()
    code = _hand_over(path, argv) if private(path) else None
    if code is None and (mode == "auto" or (not mode and _in_a_terminal())) and not _start_under_way(path):
        with contextlib.suppress(OSError):
            process = start_server(path, DEFAULT_IDLE_SECONDS)
            if not mode:
                sys.stderr.write(f"note: started a background registry process (pid {process.pid}) so the next "
                                 "commands start in about 0.1 s; `registry preload stop` ends it, "
                                 "REGISTRY_PRELOAD=off keeps every command in its own process\n")
    return code


def _start_under_way(path: Path) -> bool:
    """Whether a preloaded process was started for ``path`` in the last ``RESTART_PAUSE_SECONDS`` (its log
    was written): it may still be importing, or it failed; either way, do not start another yet."""
    try:
        return time.time() - os.stat(f"{path}.log").st_mtime < RESTART_PAUSE_SECONDS
    except OSError:
        return False


def _in_a_terminal() -> bool:
    """A person at a terminal: stdin and stderr are terminals."""
    return all(stream is not None and stream.isatty() for stream in (sys.stdin, sys.stderr))


def start_server(path: Path, idle_seconds: float) -> subprocess.Popen[bytes]:
    """Start a preloaded process for ``path`` in its own session, logging to ``<path>.log``; it exits at once
    when another one already serves ``path``."""
    import subprocess  # lazy: the launcher needs it only to start a server

    make_private_folder(path.parent)
    with open(f"{path}.log", "ab") as log:
        log.write(f"starting, asked by pid {os.getpid()}\n".encode())  # and the log's time says a start is under way
        log.flush()
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "registry.cli.preload_server", "--socket", str(path), "--idle", str(idle_seconds)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True)


def _hand_over(path: Path, argv: list[str]) -> int | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
        mask = os.umask(0)
        os.umask(mask)
        send(sock, {"protocol": PROTOCOL, "install": install_key(), "argv": argv, "cwd": os.getcwd(),
                    "env": dict(os.environ), "umask": mask, "streams": _streams()}, [0, 1, 2])
        started, _ = receive(sock)
    except (OSError, ValueError):
        sock.close()
        return None
    if not started or "pid" not in started:
        sock.close()
        return None  # refused (stale code, another installation): run here
    return _relay(sock, int(started["pid"]))


def _relay(sock: socket.socket, pid: int) -> int:
    """Pass this process's signals on to the child until the server reports how it ended."""

    def pass_on(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for signum in _FORWARDED_SIGNALS:
        signal.signal(signum, pass_on)
    while True:
        try:
            ended, _ = receive(sock)
            break
        except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for clarity
            continue
        except (OSError, ValueError):
            ended = None
            break
    sock.close()
    if ended is None or "exit" not in ended:
        sys.stderr.write("error: the preloaded registry process went away before the command ended; "
                         "run it again (`registry preload stop` runs every command in its own process)\n")
        return 4
    if ended.get("signal"):  # the command died of a signal: so does this process, for its caller to see
        sys.stdout.flush()
        if int(ended["signal"]) not in {signal.SIGKILL, signal.SIGSTOP}:  # those two cannot be caught anyway
            signal.signal(int(ended["signal"]), signal.SIG_DFL)
        os.kill(os.getpid(), int(ended["signal"]))
    return int(ended["exit"])
