"""Helpers for the API tests: tokens, Arrow bodies, and a real uvicorn server on a free loopback port."""

from __future__ import annotations

import io
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.parquet as pq
import uvicorn
from fastapi import FastAPI

from registry import Registry
from registry.auth.tokens import create_token

ARROW = "application/vnd.apache.arrow.stream"
POLICY = "maintainers: [alice]\nchecks:\n  - check: row_count\n    min: 2\n"


def bearer(reg: Registry, name: str, role: str, datasets: list[str] | None = None) -> dict[str, str]:
    """Authorization headers of a new token."""
    secret, _ = create_token(reg.ctx, name, role, datasets or [], actor="setup")
    return {"Authorization": f"Bearer {secret}"}


def arrow_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def run_event(inputs: list[dict[str, object]] | None = None) -> dict[str, object]:
    """A minimal OpenLineage RunEvent of an outside job."""
    return {"eventType": "COMPLETE", "eventTime": "2026-11-23T10:00:00Z", "run": {"runId": str(uuid.uuid4())},
            "job": {"namespace": "team", "name": "train"}, "inputs": inputs or [], "outputs": [],
            "producer": "https://example.com/trainer", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json"}


@contextmanager
def serve(app: FastAPI, timeout: float = 15.0) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread on 127.0.0.1 (a free port); yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"
