"""A sync's audit event against verify's cross-check, with a stand-in Label Studio API that serves the tasks of
the real server's exports (tests/fixtures/label-studio, round 1 then round 2): the event's ``annotations`` is
the snapshot's records SHA-256 (the count is ``annotation_count``), so verify passes after syncs and names an
edited records hash."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI, Request

from registry import Registry
from registry.sync.service import sync_label_studio
from tests.support.api_support import serve
from tests.support.audit_helpers import execute
from tests.support.label_studio_facts import FIXTURES

PROJECT = FIXTURES / "classification"


def fake_label_studio(state: dict[str, Any]) -> FastAPI:
    """The API calls a sync makes, answered from ``state["tasks"]`` (a real export's tasks)."""
    app = FastAPI()

    @app.get("/api/version")
    def version() -> dict[str, str]:
        return {"release": "1.23.2"}

    @app.get("/api/projects/1/")
    def project() -> dict[str, Any]:
        return {"id": 1, "label_config": (PROJECT / "config.xml").read_text(), "task_number": len(state["tasks"])}

    @app.get("/api/users/")
    def users() -> list[dict[str, Any]]:
        return list(json.loads((FIXTURES / "users.json").read_text()))

    @app.get("/api/tasks/")
    def tasks(request: Request) -> dict[str, Any]:
        page, size = int(request.query_params["page"]), int(request.query_params["page_size"])
        chosen = state["tasks"][(page - 1) * size:page * size]
        return {"tasks": chosen, "total": len(state["tasks"])}

    return app


def _tasks(round_: int) -> list[dict[str, Any]]:
    return list(json.loads((PROJECT / f"round{round_}" / "snapshot.json").read_text()))


def test_a_sync_keeps_the_records_hash_in_its_event_and_verify_checks_it(
        reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    state: dict[str, Any] = {"tasks": _tasks(1)}
    with serve(fake_label_studio(state)) as url:  # type: ignore[arg-type]
        first = sync_label_studio(reg.ctx, "animals", url=url, project=1, token="t")
        state["tasks"] = _tasks(2)
        second = sync_label_studio(reg.ctx, "animals", url=url, project=1, token="t")
    assert first.snapshot_id and second.snapshot_id and second.tasks_changed == 5
    events = reg.audit_log(dataset="animals", action="snapshot.sync")
    assert len(events) == 2
    for event, result in zip(events, (first, second), strict=True):
        assert event.details["annotations"] == reg.show(f"animals@{result.snapshot_id}").annotations_sha256
        assert event.details["annotation_count"] == result.annotations
    report = reg.verify()
    assert report.ok, report.problems

    execute(reg.ctx.engine, "UPDATE snapshot SET annotations_sha256 = :a WHERE id = :s",
            a=events[0].details["annotations"], s=second.snapshot_id)
    problems = reg.verify().problems
    expected = (f"snapshot animals@{second.snapshot_id[:12]}: annotations_sha256 is "
                f"{events[0].details['annotations']!r} in the catalog, but the audit chain recorded "
                f"{events[1].details['annotations']!r}")
    assert expected in problems, problems
