"""The labeling loop against a real Label Studio server, through the service protocol (``Registry``'s
``sync_label_studio``, ``register_label_studio_webhook`` and ``requeue``, with the token from
``LABEL_STUDIO_API_KEY``): sync, deletes, unknown task fields, webhooks, failure and resume, requeue.
The server runs from its own venv (``scripts/setup.sh`` installs it); without it the tests skip, saying
why, except under ``CI=true``, where they fail."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from fastapi import FastAPI, Request, Response
from sqlmodel import select

import scripts.label_studio_server as ls_server
from registry import Registry
from registry.api.app import create_app
from registry.db import transaction
from registry.errors import NotFound, UpstreamError
from registry.lineage.models import LineageOutboxRow
from registry.provenance.importers.label_studio import TASK_FIELDS
from registry.provenance.store import records_at
from registry.snapshots.history import resolve_ref
from registry.sync.client import API_TASK_FIELDS
from registry.sync.hooks import SECRET_HEADER
from scripts.label_studio_fixtures import Run, sign_up
from scripts.label_studio_server import LabelStudioServer
from tests.conftest import Cli
from tests.support.api_support import serve
from tests.support.label_studio_facts import require_label_studio, sqlite_registry

pytestmark = pytest.mark.label_studio_live

CONFIG = ('<View><Text name="text" value="$text"/><Choices name="label" toName="text">'
          '<Choice value="cat"/><Choice value="dog"/></Choices></View>')


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """One real server for the module, with two annotators signed up through the invite link."""
    require_label_studio("the Label Studio sync tests")
    server = LabelStudioServer(workdir=tmp_path_factory.mktemp("ls-sync"))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("USE_DEFAULT_BANNED_SUBNETS", "false")  # its webhooks may call a registry on 127.0.0.1
        with server:
            people = Run(server, random.Random(17))
            for who in ("a1", "a3"):
                sign_up(people, who)
            yield people


@pytest.fixture
def reg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Run) -> Iterator[Registry]:
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", run.ls.token)
    with sqlite_registry(tmp_path, monkeypatch) as registry:
        yield registry


def new_project(run: Run, samples: int) -> tuple[int, dict[str, int]]:
    """A project with tasks s0..s{n-1}; their task ids by sample."""
    pid = run.api("POST", "/api/projects/", {"title": f"sync {random.random():.6f}", "label_config": CONFIG})["id"]
    if samples:
        tasks = [{"sample": f"s{i}", "text": f"text {i}"} for i in range(samples)]
        run.api("POST", f"/api/projects/{pid}/import", tasks)
    tasks = run.api("GET", f"/api/tasks/?project={pid}&page_size=1000")["tasks"]
    return pid, {t["data"]["sample"]: t["id"] for t in tasks}


def annotate(run: Run, who: str, task: int, label: str) -> int:
    body = {"result": [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]}
    return int(run.api("POST", f"/api/tasks/{task}/annotations/", body, who)["id"])


def sync(reg: Registry, run: Run, name: str, pid: int, url: str | None = None, **kw: Any) -> Any:
    """A sync through the protocol (the token is the ``LABEL_STUDIO_API_KEY`` the registry opened with)."""
    return reg.sync_label_studio(name, url=url or run.ls.url, project=pid, key="sample", **kw)


def records(reg: Registry, ref: str) -> pa.Table:
    with transaction(reg.ctx.engine, readonly=True) as session:
        _dataset, snapshot = resolve_ref(session, ref)
        return records_at(reg.ctx, session, snapshot)


def test_sync_follows_annotations_updates_and_deletes(reg: Registry, run: Run) -> None:
    pid, _ = new_project(run, 0)
    empty = sync(reg, run, "pets", pid, author="alice")
    assert empty.snapshot_id is None and empty.dataset_created and [d.name for d in reg.datasets()] == ["pets"]
    with pytest.raises(NotFound):
        reg.log("pets")

    run.api("POST", f"/api/projects/{pid}/import", [{"sample": f"s{i}", "text": f"text {i}"} for i in range(4)])
    tasks = {t["data"]["sample"]: t["id"] for t in run.api("GET", f"/api/tasks/?project={pid}")["tasks"]}
    acts = {(who, s): annotate(run, who, tasks[s], label)
            for who, label in (("a1", "cat"), ("a3", "dog")) for s in ("s0", "s1", "s2")}
    reg.set_policy("pets", "maintainers: [alice]\nchecks:\n  - check: row_count\n    min: 4\n", actor="alice")
    first = sync(reg, run, "pets", pid, guideline_version="v1", evaluate=True)
    assert first.snapshot_id is not None and first.gate is not None and first.gate["status"] == "passed"
    assert first.warnings == []  # every field of the API's tasks and annotations is known
    assert (first.tasks, first.tasks_changed, first.tasks_deleted, first.annotations) == (4, 4, 0, 6)
    assert len(reg.log("pets")) == 1 and reg.read("pets").num_rows == 4
    got = records(reg, "pets")
    assert got.num_rows == 6
    assert set(got.column("annotator_email").to_pylist()) == {"alex.kim@example.com", "priya.natarajan@example.com"}
    assert set(got.column("guideline_version").to_pylist()) == {"v1"}

    again = sync(reg, run, "pets", pid)
    assert again.snapshot_id is None and len(reg.log("pets")) == 1  # nothing changed: no snapshot

    fix = {"result": [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["cat"]}}]}
    run.api("PATCH", f"/api/annotations/{acts[('a3', 's0')]}/", fix, "a3")
    run.api("DELETE", f"/api/annotations/{acts[('a3', 's1')]}/")
    run.api("DELETE", f"/api/tasks/{tasks['s2']}/")
    third = sync(reg, run, "pets", pid, evaluate=True)
    assert (third.tasks_changed, third.tasks_deleted) == (2, 1)
    assert third.gate is not None and third.gate["status"] == "failed"  # 3 rows < min 4: the verdict is reported
    diff = reg.diff(f"pets@{first.snapshot_id}", "pets@main")
    assert (diff.added, diff.removed, diff.changed) == (0, 1, 2)
    after = records(reg, "pets")
    assert after.num_rows == 3  # 6 - a3 on s1 - both acts on the deleted s2
    assert f"annotation:{acts[('a3', 's1')]}" not in after.column("annotation_id").to_pylist()
    s0 = {r["annotator_email"]: r["value"] for r in after.to_pylist() if r["sample_key"] == "s0"}
    assert s0 == {"alex.kim@example.com": "cat", "priya.natarajan@example.com": "cat"}

    events = reg.audit_log(dataset="pets", action="snapshot.sync")
    assert len(events) == 2
    assert (events[-1].details["project"], events[-1].details["tasks_deleted"]) == (pid, 1)
    assert events[-1].details["server"] == run.ls.url
    assert all(run.ls.token not in json.dumps(e.details) for e in reg.audit_log())
    with transaction(reg.ctx.engine, readonly=True) as session:
        outbox = [json.loads(r.payload) for r in session.exec(select(LineageOutboxRow)).all()]
    inputs = [i for e in outbox for i in e.get("inputs", []) if i["name"] == f"projects/{pid}"]
    assert inputs and {i["namespace"] for i in inputs} == {run.ls.url}


def newer_label_studio(upstream: str, field: str, value: Any) -> FastAPI:
    """A Label Studio of a later release: the real server at ``upstream``, whose full tasks
    (``/api/tasks/?fields=all``) carry one more field, ``field``, that this registry does not know."""
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST", "PATCH", "DELETE"])
    async def forward(path: str, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        async with httpx.AsyncClient(base_url=upstream, timeout=120) as client:
            answer = await client.request(request.method, f"/{path}", params=list(request.query_params.multi_items()),
                                          content=await request.body(), headers=headers)
        body = answer.content
        if path == "api/tasks/" and request.query_params.get("fields") == "all" and answer.status_code == 200:
            page = answer.json()
            for task in page["tasks"]:
                task[field] = value
            body = json.dumps(page).encode()
        return Response(body, answer.status_code, media_type=answer.headers.get("content-type"))

    return app


def test_the_api_task_fields_are_what_the_real_server_sends(run: Run) -> None:
    """``API_TASK_FIELDS`` is read off the server: a task with annotations, a prediction and a draft, and one
    with none, carry exactly those fields; seven of them are not in the exports (so the export's list would
    call them unknown)."""
    pid, tasks = new_project(run, 2)
    annotate(run, "a1", tasks["s0"], "cat")
    run.api("POST", "/api/predictions/", {"task": tasks["s0"], "model_version": "m-1", "score": 0.5, "result": [
        {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["dog"]}}]})
    run.api("POST", f"/api/tasks/{tasks['s1']}/drafts", {"result": [], "lead_time": 1.0}, "a3")
    full = run.api("GET", f"/api/tasks/?project={pid}&fields=all&page_size=10")["tasks"]
    assert len(full) == 2 and all(task.keys() == API_TASK_FIELDS for task in full)
    assert sorted(API_TASK_FIELDS - TASK_FIELDS) == [
        "annotations_ids", "annotations_results", "avg_lead_time", "completed_at", "predictions_model_versions",
        "predictions_results", "predictions_score"]


def test_an_unknown_task_field_is_kept_raw_and_warned_about_once(reg: Registry, run: Run, tmp_path: Path) -> None:
    """The API's unknown task fields take the JSON importer's path: kept raw in every record of the task
    (``extra``, canonical JSON, as an export's are) and one warning per field name, for any number of tasks."""
    pid, tasks = new_project(run, 3)
    for who, label in (("a1", "cat"), ("a3", "dog")):
        for sample in ("s0", "s1"):
            annotate(run, who, tasks[sample], label)
    stage = {"name": "second review", "round": 2}
    with serve(newer_label_studio(run.ls.url, "workflow_stage", stage)) as url:
        result = sync(reg, run, "staged", pid, url=url)
        cli = Cli(home=reg.home, cwd=tmp_path)
        printed = cli("sync", "label-studio", "staged-cli", "--url", url, "--project", str(pid), "--key", "sample",
                      env={"LABEL_STUDIO_API_KEY": run.ls.token})
    assert result.snapshot_id is not None and result.annotations == 4
    (warning,) = result.warnings
    assert "'workflow_stage'" in warning and "in 3 object(s)" in warning and "extra" in warning
    got = records(reg, "staged")
    assert got.num_rows == 4
    assert {json.loads(x)["task"]["workflow_stage"] == stage for x in got.column("extra").to_pylist()} == {True}
    (event,) = reg.audit_log(dataset="staged", action="snapshot.sync")
    assert event.details["warnings"] == [warning]
    assert printed.code == 0 and printed.stderr.count("workflow_stage") == 1, printed.stderr
    assert run.ls.token not in printed.stdout + printed.stderr


def test_bad_token_and_bad_input_exit_2_and_commit_nothing(reg: Registry, run: Run, tmp_path: Path) -> None:
    pid, _ = new_project(run, 2)
    cli = Cli(home=reg.home, cwd=tmp_path)
    bad = cli("sync", "label-studio", "pets", "--url", run.ls.url, "--project", str(pid),
              env={"LABEL_STUDIO_API_KEY": "not-a-token"})
    assert bad.code == 2 and run.ls.url in bad.stderr and "401" in bad.stderr
    assert "not-a-token" not in bad.stderr + bad.stdout
    assert len(bad.stderr.strip().splitlines()) == 1
    missing = cli("sync", "label-studio", "pets", "--url", run.ls.url, "--project", str(pid),
                  env={"LABEL_STUDIO_API_KEY": ""})
    assert missing.code == 2 and "LABEL_STUDIO_API_KEY" in missing.stderr
    for args, words in ((["--url", "ftp://x"], "http"), (["--url", run.ls.url, "--every", "soon"], "--every"),
                        (["--url", run.ls.url.replace("http://", "http://u:p@")], "credentials")):
        refused = cli("sync", "label-studio", "pets", "--project", str(pid), *args)
        assert refused.code == 2 and words in refused.stderr, refused.stderr
    gone = cli("sync", "label-studio", "pets", "--url", run.ls.url, "--project", "999999")
    assert gone.code == 2 and "404" in gone.stderr
    assert reg.datasets() == []
    ok = cli("sync", "label-studio", "pets", "--url", run.ls.url, "--project", str(pid), "--key", "sample", "--json")
    assert ok.code == 0 and json.loads(ok.stdout)["tasks_changed"] == 2
    other = cli("sync", "label-studio", "pets", "--url", run.ls.url, "--project", str(pid + 1))
    assert other.code == 2 and "syncs from project" in other.stderr


def test_webhook_burst_syncs_and_a_bad_secret_is_401(reg: Registry, run: Run, tmp_path: Path) -> None:
    pid, tasks = new_project(run, 3)
    sync(reg, run, "hooked", pid)
    app = create_app(reg.home)
    with serve(app) as url:
        info = reg.register_label_studio_webhook("hooked", url=run.ls.url, project=pid, hook_url=url)
        hook = info.webhook
        assert info.to_dict() == {"webhook": f"{url}/api/v1/hooks/label-studio/hooked", "project": pid}
        refused = httpx.post(hook, json={"action": "ANNOTATION_CREATED"}, headers={SECRET_HEADER: "wrong"})
        assert refused.status_code == 401 and getattr(app.state, "label_studio_hooks", None) is None
        assert httpx.post(hook, json={}).status_code == 401
        for who, label in (("a1", "cat"), ("a3", "dog")):
            for sample in tasks:
                annotate(run, who, tasks[sample], label)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            head = reg.log("hooked")
            if head and records(reg, "hooked").num_rows == 6:
                break
            time.sleep(1)
        runner = app.state.label_studio_hooks
        assert runner.wait("hooked", 120)
        assert records(reg, "hooked").num_rows == 6
        status = runner.status("hooked")
        assert status["last_error"] is None and 1 <= status["runs"] < 6  # six events, fewer syncs
        hooks = run.api("GET", f"/api/webhooks/?project={pid}")
        assert any(h["url"] == hook and SECRET_HEADER in h["headers"] for h in hooks)
        cli = Cli(home=reg.home, cwd=tmp_path)  # the CLI registers through the protocol too: a new secret
        again = cli("sync", "label-studio", "hooked", "--url", run.ls.url, "--project", str(pid), "--key", "sample",
                    "--register-webhook", url, "--json")
        assert again.code == 0, again.stderr
        decoder, text = json.JSONDecoder(), again.stdout.strip()
        synced, end = decoder.raw_decode(text)
        registered = json.loads(text[end:])
        assert synced["snapshot_id"] is None and registered == {"webhook": hook, "project": pid}
        assert run.ls.token not in again.stdout + again.stderr
        refused = httpx.post(hook, json={"action": "ANNOTATION_CREATED"}, headers={SECRET_HEADER: "wrong"})
        assert refused.status_code == 401


def test_server_stopped_mid_sync_commits_nothing_and_the_next_sync_resumes(
        reg: Registry, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs last: it kills the module's server and starts it again on the same port and data."""
    pid, tasks = new_project(run, 5)
    first = sync(reg, run, "flaky", pid)
    for sample in ("s0", "s1"):
        annotate(run, "a1", tasks[sample], "dog")
    port = run.ls.port

    def kill(message: str) -> None:
        if "fetched" in message and run.ls.process is not None:  # after the tasks, before users and commit
            os.killpg(run.ls.process.pid, signal.SIGKILL)
            run.ls.process.wait()

    with pytest.raises(UpstreamError, match=rf"{run.ls.url}.*(unreachable|HTTP 5)"):
        sync(reg, run, "flaky", pid, progress=kill)
    assert [s.id for s in reg.log("flaky")] == [first.snapshot_id]
    monkeypatch.setattr(ls_server, "free_port", lambda: port)
    run.ls.process = None
    run.ls.start()
    resumed = sync(reg, run, "flaky", pid)
    assert (resumed.tasks_changed, resumed.annotations) == (2, 2) and len(reg.log("flaky")) == 2


def test_requeue_sends_samples_with_predictions(reg: Registry, run: Run, tmp_path: Path) -> None:
    reg.create_dataset("hard", "sample")
    reg.commit("hard", pa.table({"sample": [f"h{i}" for i in range(20)], "text": [f"text {i}" for i in range(20)],
                                 "label": ["cat"] * 20, "pred": ["dog" if i % 2 else "cat" for i in range(20)],
                                 "score": [i / 20 for i in range(20)]}))
    pid, _ = new_project(run, 0)
    kw: dict[str, Any] = dict(url=run.ls.url, project=pid, where="label != pred", prediction_column="pred",
                              score_column="score", model_version="m-7")
    dry = reg.requeue("hard@main", dry_run=True, **kw)
    assert dry.matched == 10 and not dry.created
    assert run.api("GET", f"/api/tasks/?project={pid}")["total"] == 0
    done = reg.requeue("hard@main", **kw)
    assert len(done.created) == 10
    back = run.api("GET", f"/api/tasks/?project={pid}&fields=all&page_size=100")["tasks"]
    assert sorted(t["data"]["sample"] for t in back) == sorted(f"h{i}" for i in range(1, 20, 2))
    for task in back:
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == "m-7"
        assert prediction["result"][0]["value"] == {"choices": ["dog"]}
        assert prediction["score"] == pytest.approx(int(task["data"]["sample"][1:]) / 20)
    (event,) = reg.audit_log(action="labeling.requeue")
    assert event.details["created"] == 10 and event.snapshot is not None

    annotate(run, "a1", next(t["id"] for t in back if t["data"]["sample"] == "h1"), "cat")
    synced = sync(reg, run, "again", pid)
    assert (synced.predictions, synced.annotations) == (10, 1)
    more = reg.requeue("again@main", url=run.ls.url, project=pid, where="sample = 'h1'", prediction_column="label",
                       model_version="m-8")
    assert len(more.predicted) == 1 and not more.created
    task = run.api("GET", f"/api/tasks/{more.predicted[0]}/")
    assert task["meta"]["registry_requeue"]["model_version"] == "m-8" and len(task["predictions"]) == 2
    cli = Cli(home=reg.home, cwd=tmp_path)
    bad = cli("requeue", "hard@main", "--to", "label-studio", "--url", run.ls.url, "--project", str(pid),
              "--where", "nope = 1")
    assert bad.code == 2 and "nope" in bad.stderr
    bad = cli("requeue", "hard@main", "--to", "label-studio", "--url", run.ls.url, "--project", str(pid),
              "--where", "1=1; select 1")
    assert bad.code == 2 and ";" in bad.stderr
