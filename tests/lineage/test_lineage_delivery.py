"""Delivery through the outbox to a real HTTP backend on 127.0.0.1 that is down, then up.

The OpenLineage client is configured the OpenLineage way (``OPENLINEAGE__TRANSPORT__*``) with its
own HTTP retries off, so every retry is the registry's (counted on the outbox rows).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import update
from sqlmodel import col, select

from registry import Registry
from registry.db import transaction
from registry.lineage.models import LineageLeaseRow, LineageOutboxRow
from registry.lineage.outbox import deliver, outbox_status, retry_failed
from tests.conftest import Cli
from tests.lineage.test_lineage_spec import check_event, runs
from tests.support.settings import reresolve


class Backend:
    """An OpenLineage HTTP endpoint on a fixed local port that can be started late, and can hold
    requests until released (a slow backend)."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.received: list[dict[str, Any]] = []
        self.release = threading.Event()
        self.release.set()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                backend.release.wait(60)
                backend.received.append(json.loads(body))
                self.send_response(201)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.release.set()
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def backend_http(monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    """A (not yet started) backend, with OpenLineage configured to send to it."""
    server = Backend()
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "http")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__URL", server.url)
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TIMEOUT", "5")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__RETRY", json.dumps({"total": 0, "connect": 0, "read": 0}))
    monkeypatch.setenv("REGISTRY_LINEAGE_BACKOFF_SECONDS", "60")
    yield server
    server.stop()


def _commit_three(reg: Registry) -> list[str]:
    reg.create_dataset("d", "id")
    ids = []
    for labels in (["a", "b"], ["a", "c"], ["x", "c"]):
        ids.append(reg.commit("d", pa.table({"id": [1, 2], "label": labels})).snapshot_id)
    return ids


def _rows(reg: Registry) -> list[LineageOutboxRow]:
    with transaction(reg.ctx.engine, readonly=True) as session:
        return list(session.exec(select(LineageOutboxRow).order_by(col(LineageOutboxRow.id))).all())


def test_every_event_arrives_exactly_once_in_order_through_an_outage(
        reg: Registry, backend_http: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_LINEAGE_DELIVERY", "inline")  # even inline, a dead backend never fails a commit
    reresolve(reg)
    started = time.monotonic()
    ids = _commit_three(reg)
    assert time.monotonic() - started < 30
    assert reg.show("d@main").id == ids[-1]

    rows = _rows(reg)
    assert len(rows) == 6 and all(r.status == "pending" for r in rows)
    assert rows[0].attempts == 1 and "Connection" in (rows[0].last_error or "")
    status = outbox_status(reg.ctx)
    assert (status.pending, status.failed, status.delivered) == (6, 0, 0)
    assert status.retrying >= 3 and status.last_error
    assert status.sink == "the configured OpenLineage transport"

    down = deliver(reg.ctx)  # an explicit flush ignores backoff, and fails again
    assert down.delivered == 0 and down.failed_attempts == 3 and down.pending == 6  # one try per run: order kept
    assert backend_http.received == []

    backend_http.start()
    up = deliver(reg.ctx)
    assert up.delivered == 6 and up.pending == 0 and up.errors == []
    again = deliver(reg.ctx)
    assert again.delivered == 0

    received = backend_http.received
    assert len(received) == 6
    assert [(e["run"]["runId"], e["eventType"]) for e in received] == [(r.run_id, r.event_type) for r in rows]
    assert list(runs(received).values()) == [["START", "COMPLETE"]] * 3
    assert [e["outputs"][0]["facets"]["version"]["datasetVersion"] for e in received
            if e["eventType"] == "COMPLETE"] == ids
    for event in received:
        check_event(event)
    final = outbox_status(reg.ctx)
    assert (final.pending, final.retrying, final.failed, final.delivered, final.last_error) == (0, 0, 0, 6, None)
    assert all(r.delivered_at for r in _rows(reg))
    assert [r.attempts for r in _rows(reg)] == [3, 1] * 3  # START: inline, flush while down, flush; COMPLETE: once


def test_after_max_attempts_events_park_until_retry_failed(reg: Registry, backend_http: Backend,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_LINEAGE_DELIVERY", "manual")
    monkeypatch.setenv("REGISTRY_LINEAGE_MAX_ATTEMPTS", "2")
    reresolve(reg)
    _commit_three(reg)
    assert deliver(reg.ctx).parked == 0
    assert deliver(reg.ctx).parked == 3  # each run's START gave up; its COMPLETE waits behind it
    status = outbox_status(reg.ctx)
    assert (status.failed, status.pending) == (3, 3)

    backend_http.start()
    held = deliver(reg.ctx)
    assert held.delivered == 0 and backend_http.received == []  # a COMPLETE never overtakes its START
    assert retry_failed(reg.ctx) == 3
    assert deliver(reg.ctx).delivered == 6
    assert list(runs(backend_http.received).values()) == [["START", "COMPLETE"]] * 3


def test_a_busy_lease_stops_a_second_deliverer_and_an_expired_one_does_not(
        reg: Registry, backend_http: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_LINEAGE_DELIVERY", "manual")
    reresolve(reg)
    backend_http.start()
    _commit_three(reg)
    with transaction(reg.ctx.engine) as session:
        session.execute(update(LineageLeaseRow).values(owner="someone-else", expires_at="9999-01-01T00:00:00.000000Z"))
    busy = deliver(reg.ctx)
    assert busy.busy and busy.delivered == 0 and backend_http.received == []
    with transaction(reg.ctx.engine) as session:
        session.execute(update(LineageLeaseRow).values(expires_at="2000-01-01T00:00:00.000000Z"))  # it died
    assert deliver(reg.ctx).delivered == 6
    with transaction(reg.ctx.engine, readonly=True) as session:
        lease = session.get(LineageLeaseRow, 1)
        assert lease is not None and lease.owner is None


def test_waiting_delivery_retries_with_backoff_until_the_backend_comes_up(
        reg: Registry, backend_http: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_LINEAGE_DELIVERY", "manual")
    monkeypatch.setenv("REGISTRY_LINEAGE_BACKOFF_SECONDS", "0.2")
    reresolve(reg)
    _commit_three(reg)
    timer = threading.Timer(1.5, backend_http.start)
    timer.start()
    try:
        report = deliver(reg.ctx, wait=30)
    finally:
        timer.join()
    assert report.delivered == 6 and report.pending == 0
    assert report.failed_attempts >= 3
    assert len(backend_http.received) == 6
    attempts = [r.attempts for r in _rows(reg)]
    assert max(attempts) >= 3  # several tries, spaced by the doubling backoff


def test_auto_delivery_to_a_configured_backend_never_waits_for_it(
        cli: Cli, backend_http: Backend, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend that hangs: the CLI commit returns while the background deliverer is still stuck on
    it; once it answers, the events arrive once each."""
    monkeypatch.setenv("REGISTRY_LINEAGE_BACKOFF_SECONDS", "0.5")
    backend_http.release.clear()
    backend_http.start()
    (tmp_path / "rows.csv").write_text("id,label\n1,a\n")
    assert cli("dataset", "create", "d", "--key", "id").code == 0
    run_id = str(uuid.uuid4())
    result = cli("commit", "d", str(tmp_path / "rows.csv"), "--job", "ci/load", "--run-id", run_id)
    assert result.code == 0, result.stderr
    assert backend_http.received == []  # the commit did not wait for the hung backend
    backend_http.release.set()
    deadline = time.monotonic() + 90
    while len(backend_http.received) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    assert [(e["run"]["runId"], e["eventType"]) for e in backend_http.received] == [
        (run_id, "START"), (run_id, "COMPLETE")]
    status = json.loads(cli("lineage", "status", "--json").stdout)
    assert (status["pending"], status["delivered"]) == (0, 2)


def test_the_default_sink_is_delivered_inline_and_flush_is_a_no_op(reg: Registry) -> None:
    from tests.lineage.test_lineage_spec import emitted

    _commit_three(reg)
    assert len(emitted(reg.home)) == 6
    status = outbox_status(reg.ctx)
    assert (status.pending, status.delivered) == (0, 6) and status.sink.startswith("file ")
    assert deliver(reg.ctx).delivered == 0
    assert len(emitted(reg.home)) == 6


def test_a_deliverer_killed_between_send_and_mark_repeats_only_that_event(
        reg: Registry, cli: Cli, backend_http: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """The documented limit of exactly-once: a crash after the backend accepted an event and before
    the outbox marked it makes that one event arrive twice; every other event still arrives once."""
    monkeypatch.setenv("REGISTRY_LINEAGE_DELIVERY", "manual")
    monkeypatch.setenv("REGISTRY_LINEAGE_LEASE_SECONDS", "3")
    reresolve(reg)
    backend_http.start()
    _commit_three(reg)
    killed = cli("lineage", "flush", env={"REGISTRY_FAILPOINT": "lineage:after-send"})
    assert killed.code == -9
    assert len(backend_http.received) == 1
    status = outbox_status(reg.ctx)
    assert (status.pending, status.delivered) == (6, 0)

    resumed = deliver(reg.ctx, wait=30)  # once the dead deliverer's lease has expired
    assert resumed.delivered == 6
    sent = [(e["run"]["runId"], e["eventType"]) for e in backend_http.received]
    assert sent[0] == sent[1] and len(sent) == 7 and len(set(sent)) == 6
