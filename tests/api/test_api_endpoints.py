"""The endpoints of the API's second slice: each body equals the service function's ``to_dict`` (what
the CLI prints with ``--json``), each error maps to its status; imports and the training read also
against a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from registry import Registry
from registry.api.app import create_app
from registry.audit.verify import verify_audit
from registry.lineage.emit import registry_namespace
from registry.lineage.graph import walk
from registry.quality.evaluate import gate_results
from registry.snapshots.history import resolve, schema_versions
from registry.snapshots.verify import verify
from registry.training.lockfile import LockEntry, write_lockfile
from tests.api import test_api_http
from tests.provenance.test_import_label_studio_min import CONFIG, min_export
from tests.support.api_support import bearer, run_event, serve

ROWS = pa.table({"id": [1, 2, 3, 4], "label": ["a", "b", "a", "c"]})
PASSING = "maintainers: [alice, keeper]\nchecks:\n  - check: row_count\n    min: 2\n"
FAILING = "maintainers: [alice, keeper]\nchecks:\n  - check: row_count\n    min: 100\n"


def j(value: Any) -> Any:
    """``value`` as it comes back from JSON (the API's encoding: anything else as its string)."""
    return json.loads(json.dumps(value, default=str))

spool = test_api_http.spool
"""The fixture: uploads are spooled in the test's own folder (the server runs in this process)."""


@pytest.fixture
def signs(reg: Registry) -> Registry:
    """Dataset ``signs`` (owner alice, maintainer token name ``keeper``): two snapshots, ``v1`` the first."""
    reg.create_dataset("signs", "id", owner="alice")
    reg.commit("signs", ROWS.slice(0, 3), message="first")
    reg.tag("signs@main", "v1")
    reg.commit("signs", ROWS, message="second")
    reg.set_policy("signs", PASSING, actor="alice")
    return reg


@pytest.fixture
def client(signs: Registry) -> Iterator[TestClient]:
    with TestClient(create_app(signs.home)) as client:
        yield client


@pytest.fixture
def http(signs: Registry, spool: Path) -> Iterator[httpx.Client]:
    with serve(create_app(signs.home)) as url, httpx.Client(base_url=url + "/api/v1", timeout=30) as client:
        yield client


def _error(response: httpx.Response) -> tuple[int, str]:
    assert "Traceback" not in response.text
    return response.status_code, response.json()["error"]["code"]


def test_whoami_names_the_token_its_scope_and_actions(client: TestClient, signs: Registry) -> None:
    headers = bearer(signs, "etl", "writer", ["signs"])
    body = client.get("/api/v1/whoami", headers=headers).json()
    assert body == {"name": "etl", "role": "writer", "datasets": ["signs"],
                    "actions": ["read", "gate_check", "commit", "tag", "branch", "import", "pin", "lineage_ingest"]}
    auditor = client.get("/api/v1/whoami", headers=bearer(signs, "aud", "auditor")).json()
    assert (auditor["datasets"], auditor["actions"]) == ([], ["read", "gate_check", "audit", "query"])
    assert _error(client.get("/api/v1/whoami")) == (401, "unauthenticated")


def test_refs_resolve_through_the_catalog(client: TestClient, signs: Registry) -> None:
    headers = bearer(signs, "r", "reader")
    newest, first = (s.id for s in signs.log("signs"))
    for ref, ref_part, snapshot_id in [("signs", "main", newest), ("signs@main~1", "main~1", first),
                                       ("signs@v1", "v1", first), (f"signs@{first[:10]}", first[:10], first)]:
        body = client.get(f"/api/v1/refs/{ref}", headers=headers).json()
        assert body == {"dataset": "signs", "ref": ref_part, "snapshot_id": snapshot_id}
        assert body == resolve(signs.ctx, ref).to_dict()
    assert _error(client.get("/api/v1/refs/nosuch", headers=headers)) == (404, "not_found")
    assert _error(client.get("/api/v1/refs/signs@nosuch", headers=headers)) == (404, "not_found")
    assert _error(client.get("/api/v1/refs/signs@main~5", headers=headers)) == (404, "not_found")
    assert _error(client.get("/api/v1/refs/bad name!", headers=headers)) == (422, "invalid_name")


def test_schema_history_and_blame_are_the_services(client: TestClient, signs: Registry) -> None:
    headers = bearer(signs, "r", "reader")
    schema = client.get("/api/v1/datasets/signs/schema", headers=headers).json()["data"]
    assert schema == j([v.to_dict() for v in schema_versions(signs.ctx, "signs")]) and len(schema) == 1
    history = client.get("/api/v1/datasets/signs/history", params={"key": "4"}, headers=headers).json()["data"]
    assert history == j([e.to_dict() for e in signs.history("signs", "4")])
    assert [(e["kind"], e["change"], e["message"]) for e in history] == [("snapshot", "upserted", "second")]
    blame = client.get("/api/v1/blame/signs@main", params={"limit": 3}, headers=headers).json()["data"]
    assert blame == j(signs.blame("signs@main", "label", 3).to_pylist())
    assert [(r["id"], r["message"]) for r in blame] == [(1, "first"), (2, "first"), (3, "first")]
    full = client.get("/api/v1/blame/signs", headers=headers).json()["data"]
    assert [r["message"] for r in full] == ["first", "first", "first", "second"]

    cases = [
        (client.get("/api/v1/datasets/nosuch/schema", headers=headers), 404, "not_found"),
        (client.get("/api/v1/datasets/nosuch/history", params={"key": "1"}, headers=headers), 404, "not_found"),
        (client.get("/api/v1/datasets/signs/history", params={"key": "99"}, headers=headers), 404, "not_found"),
        (client.get("/api/v1/datasets/signs/history", headers=headers), 422, "invalid_input"),
        (client.get("/api/v1/blame/nosuch", headers=headers), 404, "not_found"),
        (client.get("/api/v1/blame/signs", params={"column": "nope"}, headers=headers), 422, "invalid_input"),
        (client.get("/api/v1/blame/signs", params={"limit": 0}, headers=headers), 422, "invalid_input"),
    ]
    for response, status, code in cases:
        assert _error(response) == (status, code), response.text


def test_policies_show_and_set(client: TestClient, signs: Registry) -> None:
    reader = bearer(signs, "r", "reader")
    keeper = bearer(signs, "keeper", "maintainer")
    current = client.get("/api/v1/policies/signs", headers=reader).json()
    assert current == j(signs.policy("signs").to_dict()) and current["version"] == 1

    changed = client.put("/api/v1/policies/signs", json={"document": FAILING, "source": "qa.yaml"}, headers=keeper)
    assert changed.status_code == 200, changed.text
    assert changed.json() == j(signs.policy("signs").to_dict())
    assert (changed.json()["version"], changed.json()["created_by"], changed.json()["created"]) == (2, "keeper", True)
    again = client.put("/api/v1/policies/signs", json={"document": FAILING}, headers=keeper).json()
    assert (again["version"], again["created"]) == (2, False)
    assert client.get("/api/v1/policies/signs", params={"version": 1}, headers=reader).json() == current
    [event] = signs.audit_log(action="policy.set", actor="keeper")
    assert (event.actor_kind, event.client["kind"], event.details["version"]) == ("token", "api", 2)

    stranger = bearer(signs, "stranger", "maintainer")  # the role may set policies, but not of this dataset
    refused = client.put("/api/v1/policies/signs", json={"document": PASSING}, headers=stranger)
    assert _error(refused) == (403, "permission_denied") and "keeper" in refused.json()["error"]["message"]
    bad_yaml = client.put("/api/v1/policies/signs", json={"document": "checks: [", "source": "qa.yaml"},
                          headers=keeper)
    assert _error(bad_yaml) == (422, "invalid_input") and "qa.yaml" in bad_yaml.json()["error"]["message"]
    assert _error(client.put("/api/v1/policies/signs", json={"source": "x"}, headers=keeper)) == (422, "invalid_input")
    assert _error(client.get("/api/v1/policies/signs", params={"version": 9}, headers=reader)) == (404, "not_found")
    assert _error(client.get("/api/v1/policies/nosuch", headers=reader)) == (404, "not_found")
    assert signs.policy("signs").version == 2  # nothing refused was stored


def test_gate_results_newest_first_and_waivers(client: TestClient, signs: Registry) -> None:
    ci = bearer(signs, "ci", "ci")
    keeper = bearer(signs, "keeper", "maintainer")
    assert client.get("/api/v1/gates/signs/results", headers=ci).json() == {"data": [], "count": 0}
    first = client.post("/api/v1/qa/signs", headers=ci).json()
    signs.set_policy("signs", FAILING, actor="alice")
    second = client.post("/api/v1/qa/signs", headers=ci).json()
    results = client.get("/api/v1/gates/signs/results", headers=ci).json()["data"]
    assert results == j([r.to_dict() for r in gate_results(signs.ctx, "signs")])
    assert [(r["id"], r["status"], r["policy_version"]) for r in results] == [
        (second["id"], "failed", 2), (first["id"], "passed", 1)]
    assert client.get("/api/v1/gates/signs@v1/results", headers=ci).json() == {"data": [], "count": 0}
    assert client.get("/api/v1/gates/signs", headers=ci).json()["passes"] is False

    waiver = client.post("/api/v1/gates/signs/waivers", json={"reason": "small on purpose", "checks": ["row_count"],
                                                               "expires": "7d"}, headers=keeper)
    assert waiver.status_code == 201, waiver.text
    gate = signs.gate("signs")
    assert gate.passes and gate.state == "waived" and gate.waiver is not None
    body = waiver.json()
    assert (body["id"], body["checks"], body["reason"], body["created_by"]) == (gate.waiver["id"], ["row_count"],
                                                                               "small on purpose", "keeper")
    [event] = signs.audit_log(action="gate.waive")
    assert (event.actor, event.object_id) == ("keeper", body["id"])

    cases = [
        (client.post("/api/v1/gates/signs/waivers", json={"reason": " "}, headers=keeper), 422, "invalid_input"),
        (client.post("/api/v1/gates/signs/waivers", json={"reason": "x", "checks": ["nope"]}, headers=keeper),
         422, "invalid_input"),
        (client.post("/api/v1/gates/signs/waivers", json={"reason": "x", "expires": "yesterday"}, headers=keeper),
         422, "invalid_input"),
        (client.post("/api/v1/gates/signs/waivers", json={"reason": "x"}, headers=bearer(signs, "m2", "maintainer")),
         403, "permission_denied"),
        (client.post("/api/v1/gates/nosuch/waivers", json={"reason": "x"}, headers=keeper), 404, "not_found"),
        (client.get("/api/v1/gates/nosuch/results", headers=ci), 404, "not_found"),
    ]
    for response, status, code in cases:
        assert _error(response) == (status, code), response.text
    assert len(signs.audit_log(action="gate.waive")) == 1


def test_pins_return_the_entry_the_client_writes(client: TestClient, signs: Registry, tmp_path: Path) -> None:
    reader = bearer(signs, "trainer", "reader")
    blocked = client.post("/api/v1/pins", json={"ref": "signs", "job": "resnet"}, headers=reader)
    assert _error(blocked) == (409, "gate_blocked")
    [refusal] = signs.audit_log(action="pin.refuse")
    assert (refusal.actor, refusal.details["job"], refusal.details["lockfile"]) == ("trainer", "resnet", None)

    signs.qa_run("signs")
    pinned = client.post("/api/v1/pins", json={"ref": "signs", "job": "resnet"}, headers=reader)
    assert pinned.status_code == 201, pinned.text
    entry = LockEntry(**pinned.json())
    assert (entry.dataset, entry.job, entry.ref, entry.snapshot_id, entry.pinned_by) == (
        "signs", "resnet", "main", signs.show("signs").id, "trainer")
    [event] = signs.audit_log(action="pin.create")
    assert {k: event.details[k] for k in pinned.json()} == pinned.json() and event.details["lockfile"] == ""
    assert not (signs.home.parent / "registry.lock").exists()  # the server wrote no lockfile

    lockfile = tmp_path / "client.lock"
    write_lockfile(lockfile, [entry])  # what a client does with the body; a local pull then verifies it
    [pulled] = signs.pull(lockfile, tmp_path / "out")
    assert (pulled.snapshot_id, pulled.content_hash, pulled.rows) == (entry.snapshot_id, entry.content_hash, 4)
    assert _error(client.post("/api/v1/pins", json={"ref": "nosuch"}, headers=reader)) == (404, "not_found")
    assert _error(client.post("/api/v1/pins", json={"job": "x"}, headers=reader)) == (422, "invalid_input")


def test_audit_checkpoint_and_verify(client: TestClient, signs: Registry) -> None:
    auditor = bearer(signs, "aud", "auditor")
    checkpoint = client.post("/api/v1/audit/checkpoints", headers=auditor)
    assert checkpoint.status_code == 200, checkpoint.text
    head = verify_audit(signs.ctx)
    assert (checkpoint.json()["seq"], checkpoint.json()["hash"]) == (head.head_seq, head.head_hash)
    signs.tag("signs@main", "v2")  # the chain grows past the checkpoint
    plain = client.post("/api/v1/audit/verify", headers=auditor).json()
    assert plain == j(verify_audit(signs.ctx).to_dict()) and plain["ok"] is True
    assert client.post("/api/v1/audit/verify", json={"checkpoint": None}, headers=auditor).json() == plain
    kept = client.post("/api/v1/audit/verify", json={"checkpoint": checkpoint.json()}, headers=auditor).json()
    assert kept["ok"] is True and kept["checkpoint"]["seq"] == checkpoint.json()["seq"]

    forged = {**checkpoint.json(), "hash": "0" * 64}
    mismatch = client.post("/api/v1/audit/verify", json={"checkpoint": forged}, headers=auditor)
    assert mismatch.status_code == 200 and mismatch.json()["ok"] is False and mismatch.json()["problem"]
    for bad in ({"seq": 1}, {**checkpoint.json(), "hash": "abc"}, {**checkpoint.json(), "format": "other"}):
        assert _error(client.post("/api/v1/audit/verify", json={"checkpoint": bad}, headers=auditor)) == (
            422, "invalid_input")
    scoped = bearer(signs, "aud-signs", "auditor", ["signs"])
    assert _error(client.post("/api/v1/audit/verify", headers=scoped)) == (403, "permission_denied")
    assert _error(client.post("/api/v1/audit/checkpoints", headers=scoped)) == (403, "permission_denied")


def test_verify_reports_problems_with_200(client: TestClient, signs: Registry) -> None:
    auditor = bearer(signs, "aud", "auditor")
    clean = client.post("/api/v1/verify", params={"dataset": "signs"}, headers=auditor).json()
    assert clean == j(verify(signs.ctx, "signs").to_dict()) and clean["ok"] is True and clean["snapshots"] == 2
    assert client.post("/api/v1/verify", headers=auditor).json() == j(verify(signs.ctx).to_dict())
    manifest = signs.ctx.store.local_path(_manifest_sha(signs))
    manifest.chmod(0o644)
    manifest.write_bytes(manifest.read_bytes() + b" ")
    damaged = client.post("/api/v1/verify", params={"dataset": "signs"}, headers=auditor)
    assert damaged.status_code == 200 and damaged.json()["ok"] is False and damaged.json()["problems"]
    assert _error(client.post("/api/v1/verify", params={"dataset": "nosuch"}, headers=auditor)) == (404, "not_found")
    scoped = bearer(signs, "aud-signs", "auditor", ["signs"])
    assert _error(client.post("/api/v1/verify", headers=scoped)) == (422, "invalid_input")
    assert client.post("/api/v1/verify", params={"dataset": "signs"}, headers=scoped).json()["ok"] is False


def _manifest_sha(reg: Registry) -> str:
    from registry.db import transaction
    from registry.snapshots.history import resolve_ref

    with transaction(reg.ctx.engine, readonly=True) as session:
        return resolve_ref(session, "signs")[1].manifest_sha256


def test_lineage_graph_hides_other_datasets_from_a_scoped_token(client: TestClient, signs: Registry) -> None:
    signs.create_dataset("cars", "id")
    signs.commit("cars", ROWS)
    ns = registry_namespace(signs.ctx)
    source, made = signs.show("signs").id, signs.show("cars").id
    event = run_event([{"namespace": ns, "name": "signs", "facets": {"version": {"datasetVersion": source}}}])
    event["outputs"] = [{"namespace": ns, "name": "cars", "facets": {"version": {"datasetVersion": made}}}]
    assert client.post("/api/v1/lineage", json=event, headers=bearer(signs, "ci", "ci")).status_code == 200

    full = client.get("/api/v1/lineage/graph", params={"ref": "cars", "direction": "upstream"},
                      headers=bearer(signs, "r", "reader")).json()
    assert full == j(walk(signs.ctx, "cars", "upstream", 3).to_dict())
    signs_nodes = {f"signs@{s.id}" for s in signs.log("signs")}  # the source and its parent (upstream of it)
    assert signs_nodes <= {n["key"] for n in full["nodes"]} and len(full["edges"]) == 3
    scoped = client.get("/api/v1/lineage/graph", params={"ref": "cars", "direction": "upstream"},
                        headers=bearer(signs, "cars-only", "reader", ["cars"])).json()
    assert {n["key"] for n in scoped["nodes"]} == {n["key"] for n in full["nodes"]} - signs_nodes
    assert [(e["kind"], e["dst"]) for e in scoped["edges"]] == [("produce", f"cars@{made}")]
    reader = bearer(signs, "r2", "reader")
    for params in ({"ref": "cars", "direction": "sideways"}, {"ref": "cars", "depth": 0}, {}):
        assert _error(client.get("/api/v1/lineage/graph", params=params, headers=reader)) == (422, "invalid_input")
    assert _error(client.get("/api/v1/lineage/graph", params={"ref": "nosuch"}, headers=reader)) == (404, "not_found")


def test_a_scoped_token_finds_other_datasets_missing(client: TestClient, signs: Registry) -> None:
    signs.create_dataset("cars", "id")
    scoped = bearer(signs, "lab", "admin", ["cars"])
    full = bearer(signs, "root", "admin")
    requests = [("GET", "/refs/{d}", None), ("GET", "/datasets/{d}/schema", None),
                ("GET", "/datasets/{d}/history?key=1", None), ("GET", "/blame/{d}", None),
                ("GET", "/policies/{d}", None), ("GET", "/gates/{d}/results", None),
                ("POST", "/gates/{d}/waivers", {"reason": "x"}), ("POST", "/pins", {"ref": "{d}"}),
                ("GET", "/snapshots/{d}/data?training=true", None), ("POST", "/verify?dataset={d}", None),
                ("GET", "/lineage/graph?ref={d}", None), ("PUT", "/policies/{d}", {"document": PASSING})]
    for method, path, body in requests:
        def call(dataset: str, headers: dict[str, str], method: str = method, path: str = path,
                 body: Any = body) -> httpx.Response:
            payload = json.loads(json.dumps(body).replace("{d}", dataset)) if body is not None else None
            return client.request(method, "/api/v1" + path.replace("{d}", dataset), json=payload, headers=headers)

        hidden, missing = call("signs", scoped), call("nosuch", full)
        assert _error(hidden) == _error(missing) == (404, "not_found"), (path, hidden.text, missing.text)
        assert hidden.json()["error"]["message"].replace("signs", "X") == missing.json()["error"]["message"].replace(
            "nosuch", "X"), path


def test_imports_over_http(http: httpx.Client, signs: Registry, spool: Path, tmp_path: Path) -> None:
    writer = bearer(signs, "labeler", "writer")
    export = json.dumps(min_export()).encode()
    params = {"format": "label-studio", "key": "image", "guideline_version": "g7", "message": "round 1"}
    made = http.post("/datasets/animals/imports", params=params, headers=writer,
                     files={"file": ("min.json", export), "config": ("config.xml", CONFIG.encode())})
    assert made.status_code == 201, made.text
    body = made.json()
    (tmp_path / "min.json").write_bytes(export)
    (tmp_path / "config.xml").write_text(CONFIG)
    local = signs.import_annotations("label-studio", "animals-local", tmp_path / "min.json", key="image",
                                     guideline_version="g7", config=tmp_path / "config.xml", message="round 1")
    differ = {"dataset", "id", "snapshot_id", "batch_id"}  # its own batch id; the dataset (and so the id) differs
    assert {k: v for k, v in body.items() if k not in differ} == {
        k: v for k, v in j(local.to_dict()).items() if k not in differ}
    assert (body["dataset"], body["created"], body["dataset_created"], body["samples"]) == ("animals", True, True, 3)
    assert body["snapshot_id"] == signs.show("animals").id and body["warnings"] == []
    assert signs.show("animals").message == "round 1"
    [event] = signs.audit_log(action="snapshot.import", dataset="animals")
    assert (event.actor, event.client["kind"], event.details["file"], event.details["guideline_version"]) == (
        "labeler", "api", "min.json", "g7")
    assert event.details["config_sha256"] is not None
    assert signs.annotations("animals").num_rows == 5

    table = b"item,worker_id,answer\ns1,w1,cat\ns1,w2,cat\ns2,w1,dog\n"
    votes = http.post("/datasets/votes/imports", params={"format": "table", "map": "key=item,annotator=worker_id,"
                                                         "value=answer"}, headers=writer,
                      files={"file": ("votes.csv", table)})
    assert votes.status_code == 201 and votes.json()["records"] == 3, votes.text
    assert sorted(signs.read("votes").column("label").to_pylist()) == ["cat", "dog"]

    def post(params: dict[str, str], files: Any = None, **kwargs: Any) -> httpx.Response:
        return http.post("/datasets/animals/imports", params=params, files=files, headers=writer, **kwargs)

    cases = [
        (post({"format": "xml"}, {"file": ("min.json", export)}), 422, "invalid_input"),
        (post({}, {"file": ("min.json", export)}), 422, "invalid_input"),
        (post({"format": "label-studio"}, {"other": ("min.json", export)}), 422, "invalid_input"),
        (post({"format": "label-studio"}, content=export), 422, "invalid_input"),
        (post({"format": "coco"}, {"file": ("min.json", export), "config": ("c.xml", b"<View/>")}),
         422, "invalid_input"),
        (post({"format": "label-studio", "map": "key=x"}, {"file": ("min.json", export)}), 422, "invalid_input"),
        (post({"format": "label-studio"}, {"file": ("min.json", b"{not json")}), 422, "invalid_input"),
        (post({"format": "table", "map": "key=item,annotator=worker_id,value=answer"},
              {"file": ("votes.csv", table)}), 422, "invalid_input"),  # keyed by image, not item
        (http.post("/datasets/animals/imports", params={"format": "coco"}, files={"file": ("x.json", b"{}")},
                   headers=bearer(signs, "ci", "ci")), 403, "permission_denied"),
        (http.post("/datasets/animals/imports", params={"format": "coco"}, files={"file": ("x.json", b"{}")},
                   headers=bearer(signs, "other", "writer", ["signs"])), 404, "not_found"),
    ]
    for response, status, code in cases:
        assert _error(response) == (status, code), response.text
    assert len(signs.log("animals")) == 1  # nothing refused was committed
    assert list(spool.iterdir()) == []


def test_training_read_over_http(http: httpx.Client, signs: Registry) -> None:
    reader = bearer(signs, "trainer", "reader")
    keeper = bearer(signs, "keeper", "maintainer")
    signs.set_policy("signs", FAILING, actor="alice")
    signs.qa_run("signs")

    blocked = http.get("/snapshots/signs/data", params={"training": "true", "job": "resnet"}, headers=reader)
    assert _error(blocked) == (409, "gate_blocked") and "row_count" in blocked.json()["error"]["message"]
    [refusal] = signs.audit_log(action="gate.refuse")
    assert (refusal.actor, refusal.actor_kind, refusal.snapshot, refusal.details["job"], refusal.details["read"]) == (
        "trainer", "token", signs.show("signs").id, "resnet", "signs")
    assert http.get("/snapshots/signs/data", headers=reader).status_code == 200  # a plain read is not gated

    anyway = http.get("/snapshots/signs/data", params={"training": "true", "allow_unverified": "true"},
                      headers=keeper)
    assert anyway.status_code == 200, anyway.text
    assert [e.actor for e in signs.audit_log(action="read.unverified")] == ["keeper"]
    for role in ("writer", "ci", "reader"):  # only those who own gates may read past one
        refused = http.get("/snapshots/signs/data", params={"training": "true", "allow_unverified": "true"},
                           headers=bearer(signs, f"etl-{role}", role))
        assert _error(refused) == (403, "permission_denied")

    waived = http.post("/gates/signs/waivers", json={"reason": "small on purpose"}, headers=keeper)
    assert waived.status_code == 201, waived.text
    for fmt in ("arrow", "parquet"):
        with http.stream("GET", "/snapshots/signs/data", params={"training": "true", "job": "resnet", "format": fmt},
                         headers=reader) as response:
            assert response.status_code == 200
            data = b"".join(response.iter_bytes())
        table = pa.ipc.open_stream(data).read_all() if fmt == "arrow" else pq.read_table(io.BytesIO(data))
        assert table.sort_by("id").equals(signs.read("signs").sort_by("id"))

    signs.load("signs", job="resnet", actor="local-trainer")  # the local training read, for comparison
    *remote, local = signs.audit_log(action="read.training")
    assert [e.actor for e in remote] == ["trainer", "trainer"] and local.actor == "local-trainer"
    for event in remote:  # audited like the local load: same action, object, detail fields and lineage job
        assert (event.object_type, event.object_id, event.dataset) == (local.object_type, local.object_id, "signs")
        assert set(event.details) == set(local.details)
        assert {k: event.details[k] for k in ("job", "ref", "rows", "gate", "pinned", "operation")} == {
            "job": "resnet", "ref": "main", "rows": 4, "gate": "waived", "pinned": False, "operation": "load"}
        assert (event.client["kind"], event.client["remote_addr"]) == ("api", "127.0.0.1")

    cases = [
        (http.get("/snapshots/nosuch/data", params={"training": "true"}, headers=reader), 404, "not_found"),
        (http.get("/snapshots/signs/data", params={"training": "true", "format": "csv"}, headers=reader),
         422, "invalid_input"),
        (http.get("/snapshots/signs/data", params={"job": "x"}, headers=reader), 422, "invalid_input"),
        (http.get("/snapshots/signs/data", params={"training": "maybe"}, headers=reader), 422, "invalid_input"),
    ]
    for response, status, code in cases:
        assert _error(response) == (status, code), response.text
