"""``registry preload start|stop|status``: keep one process per installation that has imported the
registry, so every ``registry`` command starts in a fraction of the time (see docs/preload.md)."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import click

from registry.cli import output
from registry.cli.preload_client import DEFAULT_IDLE_SECONDS, private, receive, send, socket_path, start_server
from registry.errors import UserError

__all__ = ["preload"]

START_TIMEOUT_SECONDS = 60.0
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def ask(path: Path, what: str) -> dict[str, Any] | None:
    """The preloaded process's answer to a control request (``status``, ``stop``), or None when none serves ``path``."""
    if not private(path):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5.0)
    try:
        sock.connect(str(path))
        send(sock, {"control": what})
        answer, _ = receive(sock)
    except (OSError, ValueError):
        return None
    finally:
        sock.close()
    return answer


def _not_running(path: Path) -> dict[str, Any]:
    return {"running": False, "socket": str(path)}


def _log_tail(log: Path) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
    except OSError:
        return "(no log)"


@click.group()
def preload() -> None:
    """The background process that keeps the registry imported, so commands start fast (docs/preload.md)."""


@preload.command("start")
@click.option("--idle", type=click.FloatRange(min=0), default=DEFAULT_IDLE_SECONDS, show_default=True,
              help="Exit after this many seconds without a command (0: never).")
@json_option
def preload_start(idle: float, as_json: bool) -> None:
    """Start this user's preloaded process for this installation (nothing changes if one runs already).

    From then on `registry` hands each command to it: the command runs in a fresh child of that process,
    with this shell's arguments, folder, environment and terminal, and exits with the same status.
    At a terminal the first command starts one by itself. `REGISTRY_PRELOAD=off` runs a command in its own
    process; `registry preload stop` ends it."""
    if not hasattr(os, "fork") or not hasattr(socket, "AF_UNIX"):
        raise UserError("registry preload needs fork and Unix sockets (Linux or macOS)")
    path = socket_path()
    running = ask(path, "status")
    if running:
        output.emit({**running, "started": False}, as_json,
                    f"a preloaded registry process runs already (pid {running['pid']}, {path})")
        return
    log = Path(f"{path}.log")
    began = time.monotonic()
    try:
        process = start_server(path, idle)
    except OSError as exc:
        raise UserError(f"cannot start a preloaded process at {path}: {exc}") from exc
    while (status := ask(path, "status")) is None:
        if process.poll() is not None or time.monotonic() - began > START_TIMEOUT_SECONDS:
            raise UserError(f"the preloaded registry process did not start: {_log_tail(log)} (log: {log})")
        time.sleep(0.05)
    output.emit({**status, "started": True, "seconds": round(time.monotonic() - began, 2)}, as_json,
                f"preloaded registry process started (pid {status['pid']}, {path}); "
                f"`registry` commands now run in it (idle exit after {idle:g} s)")


@preload.command("stop")
@json_option
def preload_stop(as_json: bool) -> None:
    """Stop the preloaded process (running commands finish first); commands run in their own process again."""
    path = socket_path()
    answer = ask(path, "stop")
    if answer is None:
        output.emit({**_not_running(path), "stopped": False}, as_json, "no preloaded registry process runs")
        return
    began = time.monotonic()
    while path.exists() and time.monotonic() - began < START_TIMEOUT_SECONDS:
        time.sleep(0.05)
    output.emit({**answer, "running": False, "stopped": True}, as_json,
                f"preloaded registry process stopped (pid {answer['pid']}, "
                f"served {answer['commands_served']} commands)")


@preload.command("status")
@json_option
def preload_status(as_json: bool) -> None:
    """Whether a preloaded process serves this installation, and what it has done; exit 1 when none runs."""
    path = socket_path()
    status = ask(path, "status")
    if status is None:
        output.emit(_not_running(path), as_json, f"no preloaded registry process runs ({path})")
        raise SystemExit(1)
    output.emit(status, as_json,
                f"preloaded registry process pid {status['pid']} at {status['socket']}: "
                f"started {status['started_at']}, "
                f"{status['commands_served']} commands served, {status['commands_running']} running, "
                f"{status['rss_bytes'] / (1 << 20):.0f} MiB resident")
