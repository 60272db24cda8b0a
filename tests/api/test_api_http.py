"""The API over a real uvicorn server on 127.0.0.1: authentication, uploads and streamed reads, error
mapping, the audit trail of requests, gates and the query sandbox; and `registry serve` itself."""

from __future__ import annotations

import io
import json
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlmodel import select

from registry import Registry
from registry.api.app import create_app
from registry.auth.models import ApiTokenRow
from registry.auth.tokens import TOKEN_PREFIX, revoke_token
from registry.db import transaction
from tests.conftest import Cli
from tests.support.api_support import ARROW, POLICY, arrow_bytes, bearer, parquet_bytes, serve

LIMIT = 64 * 1024
ROWS = pa.table({"id": list(range(1000)), "label": [f"l{i % 7}" for i in range(1000)]})


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where uploads are spooled during the test (the server runs in this process)."""
    folder = tmp_path / "spool"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def http(reg: Registry, spool: Path) -> Iterator[httpx.Client]:
    with serve(create_app(reg.home, max_upload_bytes=LIMIT)) as url, httpx.Client(base_url=url + "/api/v1",
                                                                                   timeout=30) as client:
        yield client


def test_authentication(http: httpx.Client, reg: Registry) -> None:
    root = str(http.base_url).removesuffix("/api/v1/")
    assert httpx.get(root + "/healthz").json() == {"status": "ok"}
    assert httpx.get(root + "/readyz").json() == {"status": "ready"}
    assert httpx.get(root + "/docs").status_code == 200

    good = bearer(reg, "reader", "reader")
    assert http.get("/datasets", headers=good).status_code == 200
    expiring = bearer(reg, "soon", "reader")
    revoked = bearer(reg, "gone", "reader")
    with transaction(reg.ctx.engine) as session:
        row = session.exec(select(ApiTokenRow).where(ApiTokenRow.name == "soon")).one()
        row.expires_at = "2001-01-01T00:00:00.000000Z"
        session.add(row)
    revoke_token(reg.ctx, "gone")
    cases = {"none": {}, "invalid": {"Authorization": f"Bearer {TOKEN_PREFIX}invalid"},
             "not bearer": {"Authorization": good["Authorization"].replace("Bearer", "Token")},
             "expired": expiring, "revoked": revoked}
    for label, headers in cases.items():
        response = http.get("/datasets", headers=headers)
        assert response.status_code == 401, label
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {"error": {"code": "unauthenticated", "message": response.json()["error"]["message"]}}


def test_commit_upload_then_streamed_read(http: httpx.Client, reg: Registry, spool: Path) -> None:
    writer = bearer(reg, "etl", "writer")
    created = http.post("/datasets", json={"name": "signs", "key": ["id"], "description": "d"}, headers=writer)
    assert created.status_code == 201, created.text
    first = http.post("/datasets/signs/commits", params={"message": "round 1"}, headers=writer,
                      files={"file": ("rows.parquet", parquet_bytes(ROWS.slice(0, 600)))})
    assert first.status_code == 201, first.text
    assert first.json()["rows"] == 600 and first.json()["created"]
    parent = first.json()["id"]

    stale = http.post("/datasets/signs/commits", headers={**writer, "Content-Type": ARROW, "If-Match": "0" * 64},
                      content=arrow_bytes(ROWS))
    assert (stale.status_code, stale.json()["error"]["code"]) == (409, "ref_conflict"), stale.text
    moved = http.post("/datasets/signs/commits", params={"expect_parent": parent}, content=arrow_bytes(ROWS),
                      headers={**writer, "Content-Type": ARROW})
    assert moved.status_code == 201 and moved.json()["parent"] == parent and moved.json()["added"] == 400
    lost = http.post("/datasets/signs/commits", headers={**writer, "Content-Type": ARROW, "If-Match": f'"{parent}"'},
                     content=arrow_bytes(ROWS.slice(0, 10)))
    assert lost.status_code == 409 and lost.json()["error"]["code"] == "ref_conflict"
    assert reg.show("signs").id == moved.json()["id"]

    reader = bearer(reg, "trainer", "reader")
    for fmt in ("arrow", "parquet"):
        with http.stream("GET", "/snapshots/signs/data", params={"format": fmt}, headers=reader) as response:
            assert response.status_code == 200
            body = b"".join(response.iter_bytes())
        table = pa.ipc.open_stream(body).read_all() if fmt == "arrow" else pq.read_table(io.BytesIO(body))
        assert table.sort_by("id").equals(ROWS)
    assert list(spool.iterdir()) == []  # every upload's spool folder is gone


def test_error_mapping(http: httpx.Client, reg: Registry, spool: Path) -> None:
    reg.create_dataset("signs", "id")
    admin = bearer(reg, "root", "admin")
    arrow = {**admin, "Content-Type": ARROW}
    cases = [
        (http.get("/snapshots/nosuch", headers=admin), 404, "not_found"),
        (http.get("/datasets/nosuch/log", headers=admin), 404, "not_found"),
        (http.post("/datasets", json={"name": "signs", "key": ["id"]}, headers=admin), 409, "already_exists"),
        (http.post("/datasets", json={"name": "bad name!", "key": ["id"]}, headers=admin), 422, "invalid_name"),
        (http.post("/datasets", json={"name": "x"}, headers=admin), 422, "invalid_input"),
        (http.post("/datasets/signs/commits", content=b"not arrow", headers=arrow), 422, "invalid_input"),
        (http.post("/datasets/signs/commits", files={"file": ("x.parquet", b"not parquet")}, headers=admin),
         422, "invalid_input"),
        (http.post("/datasets/signs/commits", files={"other": ("x.parquet", b"x")}, headers=admin),
         422, "invalid_input"),
        (http.post("/datasets/signs/commits", content=b"{}", headers={**admin, "Content-Type": "application/json"}),
         422, "invalid_input"),
        (http.post("/datasets/signs/commits", content=arrow_bytes(pa.table({"other": [1]})), headers=arrow),
         422, "invalid_input"),
        (http.post("/datasets/signs/commits", content=b"x" * (LIMIT + 1), headers=arrow), 413, "too_large"),
        (http.post("/datasets/signs/commits", content=iter([b"x" * 4096] * 40), headers=arrow), 413, "too_large"),
        (http.post("/datasets/signs/commits", files={"file": ("big.parquet", b"x" * (LIMIT * 2))}, headers=admin),
         413, "too_large"),
        (http.get("/snapshots/signs/data", params={"format": "csv"}, headers=admin), 422, "invalid_input"),
        (http.post("/query", json={"sql": "DROP TABLE datasets"}, headers=admin), 422, "invalid_input"),
        (http.post("/query", json={"sql": "SELECT * FROM read_csv('/etc/passwd')"}, headers=admin),
         422, "invalid_input"),
        (http.post("/lineage", json={"run": {}}, headers=admin), 422, "invalid_input"),
        (http.get("/nowhere", headers=admin), 404, "http_error"),
    ]
    for response, status, code in cases:
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text
        assert "Traceback" not in response.text
    assert reg.datasets()[0].snapshots == 0  # nothing was committed
    assert list(spool.iterdir()) == []


def test_audit_names_token_and_address(http: httpx.Client, reg: Registry) -> None:
    reg.create_dataset("signs", "id", owner="alice")
    reg.commit("signs", ROWS)
    writer = bearer(reg, "etl-bot", "writer")
    assert http.post("/refs/signs/tags", json={"tag": "v1"}, headers=writer).status_code == 201
    assert http.post("/refs/signs/tags", json={"tag": "v1"}, headers=writer).status_code == 409
    assert http.post("/qa/signs", headers=writer).status_code == 403
    auditor = bearer(reg, "auditor", "auditor")
    events = http.get("/audit/events", params={"dataset": "signs", "action": "ref.tag"}, headers=auditor).json()["data"]
    assert [(e["actor"], e["actor_kind"], e["client"]["kind"], e["client"]["remote_addr"]) for e in events] == [
        ("etl-bot", "token", "api", "127.0.0.1")]
    denied = http.get("/audit/events", params={"action": "request.denied"}, headers=auditor).json()["data"]
    assert [(e["actor"], e["details"]["action"], e["object_id"]) for e in denied] == [
        ("etl-bot", "qa_run", "POST /api/v1/qa/signs")]
    assert http.get("/audit/events", headers=writer).status_code == 403


def test_gate_status_and_qa(http: httpx.Client, reg: Registry) -> None:
    reg.create_dataset("signs", "id", owner="alice")
    reg.commit("signs", ROWS)
    ci = bearer(reg, "ci", "ci")
    none = http.get("/gates/signs", headers=ci).json()
    assert none["passes"] is False and none["state"] == "no_policy", none
    reg.set_policy("signs", POLICY, actor="alice")
    assert http.get("/gates/signs", headers=ci).json()["passes"] is False
    run = http.post("/qa/signs", headers=ci)
    assert run.status_code == 200, run.text
    gate = http.get("/gates/signs@main", headers=ci).json()
    assert gate["passes"] is True and gate["state"] == "passed"
    auditor = bearer(reg, "auditor", "auditor")
    rows = http.post("/query", json={"sql": "SELECT status FROM gate_results"}, headers=auditor).json()
    assert rows == {"columns": ["status"], "rows": [{"status": "passed"}]}


def test_registry_serve_bootstraps_an_admin(cli: Cli) -> None:
    assert cli("dataset", "create", "signs", "--key", "id").code == 0
    proc = subprocess.Popen([sys.executable, "-m", "registry.cli.main", "serve", "--port", "0", "--bootstrap-admin"],
                            cwd=cli.cwd, env={**cli.env(), "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        secret = lines[1].strip()
        assert "created admin token admin" in lines[0] and secret.startswith(TOKEN_PREFIX)
        # --port 0: the line names the port the server bound, which is what the requests below reach
        served = re.fullmatch(r"serving \S+ on http://127\.0\.0\.1:(\d+) \(API docs: /docs, console: /ui/\)\n",
                              lines[2])
        assert served is not None and int(served[1]) > 0, lines[2]
        port = int(served[1])
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "registry serve did not come up"
            time.sleep(0.1)
        listed = httpx.get(f"http://127.0.0.1:{port}/api/v1/datasets", headers={"Authorization": f"Bearer {secret}"})
        assert [d["name"] for d in listed.json()["data"]] == ["signs"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode is not None
    tokens = json.loads(cli("token", "list", "--json").stdout)
    assert [(t["name"], t["role"], t["active"]) for t in tokens] == [("admin", "admin", True)]
    assert secret not in json.dumps(tokens)


def test_registry_serve_on_a_taken_port_says_so_and_exits_2(cli: Cli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("serve", "--port", str(port), "--json")
    assert result.code == 2, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--port 0" in result.stderr
    assert result.stdout == ""  # nothing claims to be serving
    unknown = cli("serve", "--host", "192.0.2.1", "--port", "0")  # TEST-NET-1: not this host's
    assert unknown.code == 2 and "cannot listen on 192.0.2.1:0" in unknown.stderr
    assert "--host 127.0.0.1" in unknown.stderr and "--port 0" not in unknown.stderr
