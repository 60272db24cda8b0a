"""A real ``registry serve`` process on a port the system picks (``--port 0``), for tests over HTTP.

The server binds port 0 and prints the address it bound (``--json``), so no port is chosen before the
server holds it: picking a free port first and passing it in leaves a window in which another process
(a parallel test worker, another server) can take it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

__all__ = ["start_serve"]


def start_serve(options: Sequence[str], *, cwd: Path, env: dict[str, str], log: Path, serve_options: Sequence[str] = (),
                timeout: float = 60) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``registry <options> serve --port 0 --json <serve_options>`` and wait until it answers
    ``/readyz``; return the process and its base URL (``http://127.0.0.1:PORT``).

    Its standard error goes to ``log``, its standard output (the JSON line with the bound address, then
    uvicorn's access log) beside it as ``<log>.stdout``. The process is killed, and the logs shown, if it
    exits or does not come up within ``timeout`` seconds."""
    stdout = log.with_name(log.name + ".stdout")
    with open(stdout, "wb") as out, open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "registry.cli.main", *options, "serve", "--port", "0", "--json",
                                 *serve_options], cwd=cwd, env=env, stdout=out, stderr=err)
    deadline = time.monotonic() + timeout
    url = None
    while True:
        if url is None:
            first, newline, _ = stdout.read_text(errors="replace").partition("\n")
            url = json.loads(first)["url"] if newline else None
        if url is not None:
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    return proc, url
            except httpx.TransportError:
                pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"registry serve did not come up (exit {proc.returncode}):\n"
                               f"{stdout.read_text(errors='replace')}\n{log.read_text(errors='replace')}")
        time.sleep(0.05)
