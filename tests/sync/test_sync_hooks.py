"""Webhook plumbing without a Label Studio server: the coalescing runner (real threads) and the hook
route over real HTTP (secret checks, 202, a failing sync that only logs). The loop against the real
server is in test_label_studio_sync.py."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from registry import Registry, catalog
from registry.api.app import create_app
from registry.cli.sync_cmds import parse_every
from registry.db import transaction
from registry.errors import InvalidInput
from registry.sync import hooks
from registry.sync.hooks import SECRET_HEADER, HookRunner
from registry.sync.models import LabelSyncRow
from registry.sync.state import SyncState, save_state
from tests.support.api_support import serve
from tests.support.label_studio_facts import sqlite_registry


def test_a_burst_coalesces_and_syncs_never_overlap() -> None:
    lock = threading.Lock()
    active, most, starts = 0, 0, []

    def slow_sync(_name: str) -> None:
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
            starts.append(time.monotonic())
        time.sleep(0.3)
        with lock:
            active -= 1

    runner = HookRunner(slow_sync)
    sent: list[float] = []
    def burst() -> None:
        for _ in range(20):
            sent.append(time.monotonic())
            runner.request("ds")
            time.sleep(0.005)
    threads = [threading.Thread(target=burst) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert runner.wait("ds", 10)
    assert most == 1  # never two syncs at once for one dataset
    assert 1 <= len(starts) <= 2 + int((max(sent) - min(sent)) / 0.3) < 80  # a sync covers every event before it
    assert max(starts) >= max(sent)  # the last event is followed by a sync that started after it
    syncs = len(starts)
    assert runner.status("ds")["runs"] == syncs
    assert runner.request("ds") == "started"
    assert runner.wait("ds", 10) and runner.status("ds")["runs"] == syncs + 1 == len(starts)  # a later event syncs


def test_every_parses_durations() -> None:
    assert (parse_every("30s"), parse_every("5m"), parse_every("1h"), parse_every("90")) == (30, 300, 3600, 90)
    for bad in ("", "0m", "5 minutes", "-1s", "1d"):
        with pytest.raises(InvalidInput):
            parse_every(bad)


@pytest.fixture
def reg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    with sqlite_registry(tmp_path, monkeypatch) as registry:
        yield registry


def test_hook_route_checks_the_secret_and_answers_202(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "a-token")
    reg.create_dataset("pets", "sample")
    reg.commit("pets", pa.table({"sample": ["a"], "label": ["cat"]}))
    save_state(reg.ctx, "pets", SyncState("http://127.0.0.1:9", 3, "sample"))  # nothing listens on port 9
    with transaction(reg.ctx.engine) as session:
        row = session.get(LabelSyncRow, catalog.get_dataset(session, "pets").id)
        assert row is not None
        row.hook_secret_sha256 = hashlib.sha256(b"s3cret").hexdigest()
        session.add(row)
    app = create_app(reg.home)
    with serve(app) as url:
        hook = f"{url}/api/v1/hooks/label-studio/pets"
        for headers in ({}, {SECRET_HEADER: "wrong"}):
            answer = httpx.post(hook, json={"action": "ANNOTATION_CREATED"}, headers=headers)
            assert answer.status_code == 401 and answer.json()["error"]["code"] == "unauthenticated"
        unknown = httpx.post(f"{url}/api/v1/hooks/label-studio/nope", headers={SECRET_HEADER: "s3cret"})
        assert unknown.status_code == 401
        assert getattr(app.state, "label_studio_hooks", None) is None  # nothing queued
        big = httpx.post(hook, content=b"x" * (2 << 20), headers={SECRET_HEADER: "s3cret"})
        assert big.status_code == 413
        accepted = httpx.post(hook, json={"action": "ANNOTATION_CREATED", "project": {"id": 3}},
                              headers={SECRET_HEADER: "s3cret"})
        assert accepted.status_code == 202 and accepted.json() == {"dataset": "pets", "sync": "started"}
        runner = app.state.label_studio_hooks
        assert runner.wait("pets", 30)
        status = runner.status("pets")
        assert status["runs"] == 1 and "127.0.0.1:9" in str(status["last_error"])  # logged, nothing committed
        assert len(reg.log("pets")) == 1
        assert "a-token" not in str(status["last_error"])


def test_every_keeps_polling_through_failures(tmp_path: Path, reg: Registry) -> None:
    """``--every`` prints a line per cycle and keeps going when the server is down; stopping it is clean."""
    env = {**os.environ, "REGISTRY_HOME": str(reg.home), "LABEL_STUDIO_API_KEY": "t0ken"}
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "registry.cli.main", "sync", "label-studio", "pets", "--url",
                                 "http://127.0.0.1:9", "--project", "1", "--every", "1s"], env=env, cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=sink, text=True)
        deadline = time.monotonic() + 120  # waits for two cycles, however slow the machine is
        while errors.read_text().count("sync failed") < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    err = errors.read_text()
    failures = [line for line in err.splitlines() if "sync failed" in line]
    assert len(failures) >= 2 and all("http://127.0.0.1:9" in line for line in failures), err
    assert "t0ken" not in out + err and proc.returncode == 0 and reg.datasets() == []


def _asgi_post(app: Any, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bool]:
    """POST ``body`` to ``app`` straight through ASGI: the status and whether anything read the body."""
    read = False
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        read = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80),
             "headers": [(k.lower().encode(), v.encode()) for k, v in
                         {**headers, "content-type": "application/json", "content-length": str(len(body))}.items()]}
    asyncio.run(app(scope, receive, send))
    return next(m["status"] for m in messages if m["type"] == "http.response.start"), read


def test_the_hook_secret_is_checked_once_before_the_body_is_read(
        reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "a-token")
    reg.create_dataset("pets", "sample")
    reg.commit("pets", pa.table({"sample": ["a"], "label": ["cat"]}))
    save_state(reg.ctx, "pets", SyncState("http://127.0.0.1:9", 3, "sample"))  # nothing listens on port 9
    with transaction(reg.ctx.engine) as session:
        row = session.get(LabelSyncRow, catalog.get_dataset(session, "pets").id)
        assert row is not None
        row.hook_secret_sha256 = hashlib.sha256(b"s3cret").hexdigest()
        session.add(row)
    checks: list[str] = []
    real_sha = hooks._sha
    monkeypatch.setattr(hooks, "_sha", lambda secret: checks.append(secret) or real_sha(secret))
    app = create_app(reg.home)
    body = json.dumps({"action": "ANNOTATION_CREATED", "project": {"id": 3}}).encode()
    assert _asgi_post(app, "/api/v1/hooks/label-studio/pets", {SECRET_HEADER: "wrong"}, body) == (401, False)
    assert checks == ["wrong"]
    checks.clear()
    assert _asgi_post(app, "/api/v1/hooks/label-studio/pets", {SECRET_HEADER: "s3cret"}, body) == (202, True)
    assert checks == ["s3cret"]  # the guard's check only: the route trusts it
    assert app.state.label_studio_hooks.wait("pets", 30)
