"""The API server delivers lineage with one thread per process, not a process per commit."""

from __future__ import annotations

import time
from typing import Any

import httpx
import psutil
import pyarrow as pa
import pytest

from registry import Registry
from registry.api.app import create_app
from registry.lineage.outbox import outbox_status
from tests.lineage.test_lineage_delivery import Backend, backend_http  # noqa: F401 - the fixture
from tests.support.api_support import ARROW, arrow_bytes, bearer, serve

pytestmark = pytest.mark.usefixtures("backend_http")


def _wait_for(predicate: Any, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


def _commit(client: httpx.Client, headers: dict[str, str], labels: list[str]) -> None:
    body = arrow_bytes(pa.table({"id": [1, 2], "label": labels}))
    response = client.post("/api/v1/datasets/d/commits", content=body,
                           headers={**headers, "Content-Type": ARROW})
    assert response.status_code == 201, response.text


def test_api_commits_reach_the_backend_through_the_worker_thread_without_child_processes(
        reg: Registry, backend_http: Backend, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("REGISTRY_LINEAGE_BACKOFF_SECONDS", "0.2")
    backend_http.start()
    headers = bearer(reg, "etl", "writer")
    reg.create_dataset("d", "id")
    with serve(create_app(reg.home)) as url, httpx.Client(base_url=url, timeout=30) as client:
        for labels in (["a", "b"], ["a", "c"], ["x", "c"]):
            _commit(client, headers, labels)
        assert psutil.Process().children(recursive=True) == []  # no `registry lineage flush` spawned
        assert _wait_for(lambda: len(backend_http.received) >= 6)
    assert [e["eventType"] for e in backend_http.received] == ["START", "COMPLETE"] * 3
    status = outbox_status(reg.ctx)
    assert (status.pending, status.delivered) == (0, 6)


def test_the_worker_retries_a_backend_that_comes_up_after_the_commit(
        reg: Registry, backend_http: Backend, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("REGISTRY_LINEAGE_BACKOFF_SECONDS", "0.2")
    monkeypatch.setenv("REGISTRY_LINEAGE_BACKOFF_MAX_SECONDS", "0.5")
    headers = bearer(reg, "etl", "writer")
    reg.create_dataset("d", "id")
    with serve(create_app(reg.home)) as url, httpx.Client(base_url=url, timeout=30) as client:
        _commit(client, headers, ["a", "b"])  # the backend is down: the attempt fails, the events wait
        assert _wait_for(lambda: outbox_status(reg.ctx).retrying > 0)
        assert backend_http.received == []
        backend_http.start()
        assert _wait_for(lambda: len(backend_http.received) >= 2)  # no further request needed
    assert outbox_status(reg.ctx).pending == 0
