"""``registry serve``: run the HTTP API under uvicorn.

The settings the CLI resolved are handed to the app factory as an argument, never through the
environment: with ``--workers N`` uvicorn pickles its config, factory included, into each worker
process (see :func:`run_server`), so workers get the same home and settings without ``os.environ``
being written.
"""

from __future__ import annotations

import errno
import json
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from registry.cli import output
from registry.errors import Hint, InvalidInput

if TYPE_CHECKING:
    from fastapi import FastAPI

    from registry.config import Settings


__all__ = ["AppFactory", "admin_token_text", "listen", "run_server", "serve", "server_options"]

ADMIN_TOKEN = "admin"


def admin_token_text(secret: str) -> str:
    """How a new admin token's secret is printed: one line saying so, then the secret alone on the next."""
    return f"created admin token {ADMIN_TOKEN}; it is shown only now:\n{secret}"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port to listen on (0: any free port; the address printed is the one bound).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Worker processes.")
@click.option("--bootstrap-admin", is_flag=True,
              help="Create an admin token named 'admin' if no active admin token exists, and print it once.")
@click.option("--json", "as_json", is_flag=True, help="Print the address (and a new admin token) as one JSON line.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, bootstrap_admin: bool, as_json: bool) -> None:
    """Serve the registry over HTTP (API under /api/v1, docs at /docs); see docs/api.md."""
    registry = ctx.obj.host("serve")  # the root group's Session: opens (and checks) the home first
    secret = registry.create_admin_token() if bootstrap_admin else None
    if bootstrap_admin and not as_json:
        output.say(admin_token_text(secret) if secret else "an admin token exists already; none created")
    settings = registry.ctx.settings
    registry.close()
    sock = listen(host, port)  # before printing: the address printed is the one bound, and is free
    bound = sock.getsockname()[1]
    url = f"http://[{host}]:{bound}" if ":" in host else f"http://{host}:{bound}"
    if as_json:
        output.say(json.dumps({"home": str(registry.home), "url": url, "api": f"{url}/api/v1",
                               "console": f"{url}/ui/", "admin_token": secret}))
    else:
        output.say(f"serving {registry.home} on {url} (API docs: /docs, console: /ui/)")
    sys.stdout.flush()
    run_server(registry.home, settings, sock=sock, workers=workers)


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (0: a free port the system picks) for :func:`run_server`,
    inheritable so that uvicorn's worker processes share it. Bound here, not by uvicorn, so that ``serve``
    prints the port really bound and a taken port is a one-line error (exit 2) rather than a log line.

    Raises:
        InvalidInput: the address cannot be bound (taken, not this host's, or not permitted).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        # A taken or privileged port: another port helps. Anything else (an unknown name, an address not
        # this host's) is the host's fault.
        port_fault = exc.errno in (errno.EADDRINUSE, errno.EACCES)
        raise InvalidInput(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                           hint=Hint("option", "port", "0") if port_fault else Hint("option", "host", "127.0.0.1")
                           ) from None
    sock.set_inheritable(True)
    return sock


@dataclass(frozen=True)
class AppFactory:
    """uvicorn's app factory for ``registry serve``: the API over ``home`` with ``settings``. Pickled into
    each worker process, and cheap to unpickle (FastAPI is imported on the call, inside the worker's
    server), so a worker answers uvicorn's health check while it starts."""

    home: Path
    settings: Settings

    def __call__(self) -> FastAPI:
        from registry.api.app import create_app  # lazy: see the class docstring

        return create_app(self.home, self.settings)


def run_server(home: Path, settings: Settings, *, sock: socket.socket, workers: int) -> None:
    """Serve the API over ``home`` with ``settings`` on the bound ``sock`` (see :func:`listen`) until
    stopped, as ``uvicorn.run`` does, except that the app comes from a factory bound to those arguments
    (uvicorn.run takes only an import string for several workers). Exits 3 when a single server failed to
    start, as uvicorn.run does."""
    import uvicorn  # lazy: only `registry serve` needs the server
    from uvicorn.supervisors import Multiprocess  # lazy: only `registry serve` needs the server

    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(AppFactory(home, settings), factory=True, host=host, port=port,
                            workers=workers, log_level="info", **server_options(settings))
    server = uvicorn.Server(config)
    try:
        if workers > 1:
            Multiprocess(config, sockets=[sock]).run()
            return
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        return
    if not server.started:
        sys.exit(3)


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options from the settings: ``X-Forwarded-For`` believed only from the configured proxies
    (never by default, so a client cannot spoof the address the audit log records), and a bounded
    graceful shutdown."""
    proxies = [p.strip() for p in settings.api.trusted_proxies.split(",") if p.strip()]
    return {"proxy_headers": bool(proxies), "forwarded_allow_ips": proxies or [],
            "timeout_graceful_shutdown": settings.api.shutdown_grace_seconds}
