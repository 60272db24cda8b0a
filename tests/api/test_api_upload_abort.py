"""A client that sends half an upload and closes the socket leaves nothing behind: no snapshot, no
object, no spooled file, no audit event; and the server goes on serving. Raw sockets against a real
uvicorn server on 127.0.0.1, so the disconnect happens mid-body as it would on a network."""

from __future__ import annotations

import json
import logging
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pyarrow as pa
import pytest

from registry import Registry
from registry.api.app import create_app
from tests.api import test_api_http
from tests.provenance.test_import_label_studio_min import item
from tests.support.api_support import ARROW, arrow_bytes, bearer, parquet_bytes, serve

ROWS = pa.table({"id": list(range(20_000)), "label": [f"label-{i % 13}" for i in range(20_000)]})

spool = test_api_http.spool
"""The fixture: uploads are spooled in the test's own folder (the server runs in this process)."""


@pytest.fixture
def server(reg: Registry, spool: Path) -> Iterator[str]:
    reg.create_dataset("signs", "id")
    reg.commit("signs", ROWS.slice(0, 10))
    with serve(create_app(reg.home)) as url:
        yield url


def _multipart(part: str, filename: str, data: bytes) -> tuple[str, bytes]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{part}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


def _files(home: Path) -> set[str]:
    """Every file of the home but the catalog database (whose journal reads may touch)."""
    return {str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and not p.name.startswith("catalog.db")}


def _wait(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def _send_half(url: str, path: str, token: str, content_type: str, body: bytes, spool: Path, chunked: bool) -> None:
    """Send the headers and half of ``body``, wait until the server is spooling it, then hang up."""
    parts = urlsplit(url)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
    head = (f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: {content_type}\r\n{framing}\r\n\r\n").encode()
    half = body[:len(body) // 2]
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        sock.sendall(head + (f"{len(body):x}\r\n".encode() + half if chunked else half))
        _wait(lambda: any(spool.iterdir()), "the server spools the upload")
        sock.shutdown(socket.SHUT_RDWR)
    _wait(lambda: not any(spool.iterdir()), "the server removes the spool folder")


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("kind", ["arrow", "parquet", "import"])
def test_half_an_upload_leaves_nothing(server: str, reg: Registry, spool: Path, kind: str, chunked: bool,
                                       caplog: pytest.LogCaptureFixture) -> None:
    token = bearer(reg, "etl", "admin")["Authorization"].removeprefix("Bearer ")
    before_files, before_events = _files(reg.home), len(reg.audit_log())
    head = reg.show("signs").id
    if kind == "arrow":
        path, content_type, body = "/api/v1/datasets/signs/commits", ARROW, arrow_bytes(ROWS)
    elif kind == "parquet":
        path = "/api/v1/datasets/signs/commits?mode=upsert"
        content_type, body = _multipart("file", "rows.parquet", parquet_bytes(ROWS))
    else:
        path = "/api/v1/datasets/animals/imports?format=label-studio&key=image"
        # two annotations per task, which disagree on some tasks: the answer field is told from the data
        export = [item(n // 2, 10_000 + n, n % 7, "cat" if n % 3 else "dog") for n in range(2_000)]
        content_type, body = _multipart("file", "export.json", json.dumps(export).encode())
    assert len(body) > 100_000  # big enough to arrive in several reads

    with caplog.at_level(logging.INFO, logger="registry.api"):
        _send_half(server, path, token, content_type, body, spool, chunked)
        _wait(lambda: any(r.name == "registry.api" for r in caplog.records), "the server notes the disconnect")
    assert [r.getMessage() for r in caplog.records if r.name == "registry.api"] == [
        f"client disconnected during POST {urlsplit(path).path}"]  # noted, not an internal error

    assert reg.show("signs").id == head and len(reg.log("signs")) == 1
    assert [d.name for d in reg.datasets()] == ["signs"]  # the import created no dataset
    assert _files(reg.home) == before_files  # no object, manifest or temporary file
    assert len(reg.audit_log()) == before_events
    assert list(spool.iterdir()) == []
    # The server is fine: the same upload, whole, succeeds.
    whole = httpx.post(server + path, content=body, timeout=60,
                       headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})
    assert whole.status_code == 201, whole.text
    assert reg.show(whole.json()["dataset"]).id == whole.json()["snapshot_id"]
    assert list(spool.iterdir()) == []
