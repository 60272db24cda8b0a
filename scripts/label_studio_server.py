"""Run a real Label Studio server for fixtures, tests and benchmarks (start, wait, stop).

Label Studio pins its own Django stack and pyarrow, so it lives in its own venv under
``~/.cache/dataset-registry/label-studio-VERSION`` (created on first use, reused by later runs on the
same machine) and never in the product's. A server runs with its own ``HOME`` and data directory in a
temporary folder (SQLite), on a free port of 127.0.0.1, with an admin whose legacy API token is known.
Only the standard library is used, so any Python can drive it.

    with LabelStudioServer() as ls:
        ls.api("GET", "/api/projects/")

``python scripts/label_studio_server.py --ensure-venv`` creates the venv (``scripts/setup.sh`` calls it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["LS_VERSION", "LabelStudioError", "LabelStudioServer", "ensure_venv", "venv_path"]

LS_VERSION = os.environ.get("LABEL_STUDIO_VERSION", "1.23.2")
START_TIMEOUT = 240.0
"""Seconds to wait for the server to answer (about 30 s on 2 cores; more on a loaded machine)."""


class LabelStudioError(RuntimeError):
    """The server could not be installed or started, or an API call failed."""


def venv_path(version: str = LS_VERSION) -> Path:
    """Where Label Studio ``version``'s own venv lives (shared by every checkout on this machine)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "dataset-registry" / f"label-studio-{version}"


def _installed(venv: Path, version: str) -> bool:
    meta = list((venv / "lib").glob(f"python3*/site-packages/label_studio-{version}.dist-info"))
    return (venv / "bin" / "label-studio").is_file() and bool(meta)


def ensure_venv(version: str = LS_VERSION, *, quiet: bool = False) -> Path:
    """Create Label Studio's venv and install ``label-studio==version`` into it, unless already there.

    Raises:
        LabelStudioError: the installation failed (its output names why).
    """
    venv = venv_path(version)
    if _installed(venv, version):
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    out = None if not quiet else subprocess.DEVNULL
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, stdout=out)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True, stdout=out)
        subprocess.run([*pip, f"label-studio=={version}"], check=True, stdout=out)
    except subprocess.CalledProcessError as exc:
        raise LabelStudioError(f"could not install label-studio=={version} into {venv}: {exc}") from exc
    return venv


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LabelStudioServer:
    """One Label Studio server process in a temporary folder; a context manager that always stops it."""

    def __init__(self, version: str = LS_VERSION, *, admin_email: str = "admin@example.com",
                 workdir: Path | None = None) -> None:
        self.version = version
        self.admin_email = admin_email
        self.admin_password = "Adm1n-" + secrets.token_hex(6)
        self.token = secrets.token_hex(20)
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="label-studio-"))
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    def start(self) -> LabelStudioServer:
        """Install if needed, start the server and wait until it answers.

        Raises:
            LabelStudioError: it exited or did not answer within :data:`START_TIMEOUT` seconds.
        """
        venv = ensure_venv(self.version)
        home, data = self.workdir / "home", self.workdir / "data"
        home.mkdir(parents=True, exist_ok=True)
        data.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO", "DJANGO"))}
        env.update(HOME=str(home), LATEST_VERSION_CHECK="false", LABEL_STUDIO_BASE_DATA_DIR=str(data),
                   PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", PYTHONUNBUFFERED="1")
        command = [str(venv / "bin" / "label-studio"), "start", "--no-browser", "--port", str(self.port),
                   "--internal-host", "127.0.0.1", "--data-dir", str(data), "--username", self.admin_email,
                   "--password", self.admin_password, "--user-token", self.token, "--enable-legacy-api-token"]
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(command, cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self._wait()
        return self

    def _wait(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise LabelStudioError(f"label-studio exited with {self.process.returncode}; "
                                       f"log tail: {self._log_tail()}")
            moved = re.findall(rb"Starting development server at http://[^:]+:(\d+)", self.log_path.read_bytes())
            if moved:
                self.port = int(moved[-1])  # it moves to the next port when the one asked for is busy
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(1)
        raise LabelStudioError(f"label-studio did not answer on {self.url} within {START_TIMEOUT:.0f} s; "
                               f"log tail: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-800:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop the server (its whole process group) and remove the temporary folder if it made it."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LabelStudioServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def api(self, method: str, path: str, body: Any = None, *, token: str | None = None, raw: bool = False) -> Any:
        """Call the REST API with ``token`` (default the admin's); the decoded JSON answer (bytes when
        ``raw`` or when the answer is not JSON).

        Raises:
            LabelStudioError: an HTTP error status (with the server's answer).
        """
        return request(f"{self.url}{path}", method, body, headers={"Authorization": f"Token {token or self.token}"},
                       raw=raw)


def request(url: str, method: str = "GET", body: Any = None, *, headers: dict[str, str] | None = None,
            opener: urllib.request.OpenerDirector | None = None, raw: bool = False) -> Any:
    """One HTTP call; JSON bodies in and out (bytes out when ``raw`` or the answer is not JSON).

    Raises:
        LabelStudioError: an HTTP error status (with the start of the server's answer).
    """
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={
        **({"Content-Type": "application/json"} if data is not None else {}), **(headers or {})})
    try:
        with (opener or urllib.request.build_opener()).open(req, timeout=120) as response:
            answer = response.read()
    except urllib.error.HTTPError as exc:
        raise LabelStudioError(f"{method} {url}: HTTP {exc.code}: {exc.read()[:500]!r}") from None
    if raw:
        return answer
    try:
        return json.loads(answer) if answer else None
    except ValueError:
        return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ensure-venv", action="store_true", help="Create Label Studio's venv if absent.")
    args = parser.parse_args()
    if args.ensure_venv:
        print(ensure_venv())


if __name__ == "__main__":
    main()
