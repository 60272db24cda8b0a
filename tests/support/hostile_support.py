"""A real `registry serve` process for the hostile-input tests: its limits, its peak memory, its liveness."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.serve_process import start_serve

MIB = 1 << 20
LIMITS = {
    "REGISTRY_API_MAX_UPLOAD_BYTES": str(4 * MIB),
    "REGISTRY_API_MAX_BODY_BYTES": str(256 * 1024),
    "REGISTRY_MAX_INPUT_ROWS": "200000",
    "REGISTRY_MAX_INPUT_BYTES": str(64 * MIB),
    "REGISTRY_QUERY_MEMORY_LIMIT": "256MB",
    "REGISTRY_QUERY_TIMEOUT_SECONDS": "30",
    "REGISTRY_API_MAX_QUERY_ROWS": "1000",
    "REGISTRY_API_SHUTDOWN_GRACE_SECONDS": "2",
    "REGISTRY_AUDIT_DENIED_INTERVAL_SECONDS": "3600",
    "OPENLINEAGE_DISABLED": "true",
}
"""The limits the hostile suite runs the server with (small, so an attack that slips past shows)."""

RSS_MARGIN = 256 * MIB
"""Allowed growth of the server's peak RSS above its idle RSS besides the configured limits: the Python,
Arrow and DuckDB allocators' working sets and caches."""


def rss_budget(idle: int) -> int:
    """The most peak RSS the server may reach: idle, plus one query's memory limit, plus four times the
    decoded-input limit (an upload in Arrow, its normalized copy, the hashing and the written layer),
    plus :data:`RSS_MARGIN`."""
    return idle + 256 * MIB + 4 * int(LIMITS["REGISTRY_MAX_INPUT_BYTES"]) + RSS_MARGIN


def memory(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of process ``pid`` in bytes, from /proc."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["VmHWM"]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    """A running `registry serve` (one worker: the process is the server)."""

    proc: subprocess.Popen[bytes]
    url: str
    spool: Path
    idle_rss: int = 0
    statuses: list[tuple[str, int]] = field(default_factory=list)

    @property
    def api(self) -> str:
        return self.url + "/api/v1"

    def client(self, headers: dict[str, str] | None = None, timeout: float = 60) -> httpx.Client:
        """An HTTP client that records every status it receives."""

        def record(response: httpx.Response) -> None:
            self.statuses.append((f"{response.request.method} {response.request.url.path}", response.status_code))

        return httpx.Client(base_url=self.api, headers=headers or {}, timeout=timeout,
                            event_hooks={"response": [record]})

    def alive(self) -> bool:
        return self.proc.poll() is None and httpx.get(self.url + "/healthz", timeout=10).status_code == 200

    def stop(self, grace: float = 30) -> float:
        """SIGTERM, then how long the process took to exit."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=grace)
        return time.monotonic() - started


def start_server(home: Path, cwd: Path, extra: dict[str, str] | None = None) -> Server:
    """`registry serve` on a loopback port of its own over ``home`` with :data:`LIMITS`; uploads spool under
    ``cwd/spool`` (its TMPDIR) so a test can see that none is left behind."""
    spool = cwd / "spool"
    spool.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env.update({**LIMITS, **(extra or {}), "REGISTRY_HOME": str(home), "TMPDIR": str(spool),
                "PYTHONUNBUFFERED": "1"})
    proc, url = start_serve([], cwd=cwd, env=env, log=cwd / "serve.log")
    server = Server(proc, url, spool)
    server.idle_rss = memory(proc.pid)[0]
    return server


def raw_exchange(url: str, head: str, body: bytes, timeout: float = 20) -> str:
    """Send ``head`` and ``body`` over a plain socket and return the response's status line. The body may
    be a fraction of what the head declares: the point is that the answer comes before the rest."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head.encode("latin-1") + body)
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0].decode("latin-1")
