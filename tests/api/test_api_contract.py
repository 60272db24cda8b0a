"""The typed HTTP contract: every 2xx body is described in the OpenAPI document by a wire model of
``registry_client.models``, the server's answers fit those models exactly, and the client returns them.

A new route without a declared body fails :func:`test_every_2xx_response_has_a_schema`; a field the
server sends but its model lacks fails :func:`test_a_real_server_answers_fit_their_models_exactly`.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
import registry_client
import registry_client.models as wire
from fastapi.testclient import TestClient
from pydantic import ValidationError
from registry_client import Client
from registry_client.models import WireModel

from registry import Registry
from registry.api.app import create_app
from registry.auth.tokens import create_token
from tests.support.api_support import POLICY, run_event, serve
from tests.support.paths import FIXTURES

BINARY = {"application/vnd.apache.arrow.stream", "application/vnd.apache.parquet"}
"""The media types of the streamed routes (rows, plan objects): declared instead of a JSON schema."""
NAME = "signs"
ROWS = pa.table({"sample_id": ["s1", "s2", "s3"], "label": ["stop", "yield", "stop"], "score": [0.9, 0.5, 0.7]})


@pytest.fixture
def app_client(tmp_path: Path) -> Iterator[TestClient]:
    Registry.init(tmp_path / "home").close()
    with TestClient(create_app(tmp_path / "home"), follow_redirects=False) as client:
        yield client


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in ("get", "put", "post", "delete", "patch"):
                yield method.upper(), path, operation


def test_every_2xx_response_has_a_schema(app_client: TestClient) -> None:
    document = app_client.get("/api/v1/openapi.json").json()
    missing = []
    count = 0
    for method, path, operation in _operations(document):
        successes = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
        assert successes, f"{method} {path} declares no 2xx response"
        for code, response in successes.items():
            count += 1
            content = response.get("content", {})
            json_schema = content.get("application/json", {}).get("schema")
            typed = bool(json_schema) and json_schema != {} and ("$ref" in json_schema or "anyOf" in json_schema)
            if not typed and not (BINARY & set(content)):
                missing.append(f"{method} {path} {code}: {sorted(content)}")
    assert count >= 40
    assert not missing, "2xx bodies without a schema:\n" + "\n".join(missing)
    schemas = document["components"]["schemas"]
    assert {"DatasetsPublic", "SnapshotPublic", "DiffPublic", "GateStatusPublic", "MergePublic"} <= set(schemas)
    assert schemas["DatasetsPublic"]["required"] == ["count", "data"] or set(schemas["DatasetsPublic"]["required"]) \
        == {"count", "data"}


def test_openapi_at_the_conventional_path_and_the_root_opens_the_console(app_client: TestClient) -> None:
    assert app_client.get("/openapi.json").json() == app_client.get("/api/v1/openapi.json").json()
    root = app_client.get("/")
    assert root.status_code in (302, 307) and root.headers["location"] == "/ui/"
    assert app_client.get("/", follow_redirects=True).status_code == 200


# --- a real server: every answer of a scenario validated against its model, extra keys refused -------


class Recorder:
    """Every JSON answer the client received: (method, path, status, body)."""

    def __init__(self) -> None:
        self.answers: list[tuple[str, str, int, Any]] = []

    def __call__(self, response: httpx.Response) -> None:
        if response.headers.get("content-type", "").startswith("application/json"):
            response.read()
            self.answers.append((response.request.method, response.request.url.path, response.status_code,
                                 response.json()))


def _route(document: dict[str, Any], method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The OpenAPI operation a request went to (path templates matched one segment each)."""
    for template, item in document["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", re.escape(template).replace(r"\{", "{").replace(r"\}", "}")) \
            + "$"
        if re.match(pattern, path) and method.lower() in item:
            return template, item[method.lower()]
    raise AssertionError(f"no operation for {method} {path}")


def _models(schema: dict[str, Any]) -> list[type[WireModel]]:
    refs = [schema] if "$ref" in schema else schema.get("anyOf", [])
    return [getattr(wire, ref["$ref"].rsplit("/", 1)[1]) for ref in refs]


def _fits_exactly(models: list[type[WireModel]], body: Any) -> str | None:
    """None when ``body`` validates against one of ``models`` with extra keys forbidden and dumps back to the
    same JSON (same keys, same order); else why not."""
    problems = []
    for model in models:
        try:
            parsed = model.model_validate(body, extra="forbid")
        except ValidationError as exc:
            problems.append(f"{model.__name__}: {str(exc)[:600]}")
            continue
        if json.dumps(parsed.to_dict()) != json.dumps(body):
            problems.append(f"{model.__name__}: dumps back as {str(parsed.to_dict())[:600]} (sent {str(body)[:600]})")
            continue
        return None
    return "; ".join(problems)


@pytest.fixture
def served(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Registry, str]]:
    monkeypatch.delenv("REGISTRY_URL", raising=False)
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    reg = Registry.open(home)
    try:
        with serve(create_app(home)) as url:
            yield reg, url
    finally:
        reg.close()


def test_a_real_server_answers_fit_their_models_exactly(served: tuple[Registry, str], tmp_path: Path) -> None:
    reg, url = served
    secret, _ = create_token(reg.ctx, "alice", "admin", [], actor="setup")
    recorder = Recorder()
    with Client(url, secret, timeout=30) as client:
        client._http.event_hooks["response"].append(recorder)
        _scenario(client, tmp_path)
        document = httpx.get(f"{url}/api/v1/openapi.json").json()
        for path in ("/healthz", "/readyz"):
            answer = httpx.get(url + path)
            recorder.answers.append(("GET", path, answer.status_code, answer.json()))
        rows = client._http.get("/diff/labels/rows", params={"a": f"{NAME}@v1", "b": NAME})
        recorder(rows)
    bad = []
    seen = set()
    for method, path, status, body in recorder.answers:
        if not 200 <= status < 300:
            continue
        template, operation = _route(document, method, path)
        schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
        seen.add(f"{method} {template}")
        problem = _fits_exactly(_models(schema), body)
        if problem is not None:
            bad.append(f"{method} {path} {status}: {problem}")
    assert not bad, "\n".join(bad)
    expected = {"POST /api/v1/datasets", "POST /api/v1/datasets/{name}/commits", "POST /api/v1/refs/{ref}/tags",
                "GET /api/v1/diff", "GET /api/v1/datasets/{name}/log", "GET /api/v1/gates/{ref}",
                "PUT /api/v1/policies/{name}", "POST /api/v1/pins", "GET /api/v1/datasets/{name}/branches",
                "POST /api/v1/datasets/{name}/merges", "GET /api/v1/audit/events", "GET /api/v1/lineage/graph",
                "POST /api/v1/datasets/{name}/imports", "GET /api/v1/snapshots/{ref}/plan", "GET /healthz"}
    assert expected <= seen, expected - seen
    assert len(seen) >= 35, sorted(seen)


def _scenario(client: Client, tmp_path: Path) -> None:
    """Every JSON endpoint once or more: datasets, commits, tags, diffs, log, policy, gates, waivers, pins,
    branches, merges, imports, provenance, audit, query, lineage, plans, verification."""
    client.whoami()
    client.create_dataset(NAME, "sample_id", description="road signs")
    first = client.commit(NAME, ROWS, message="first")
    client.tag(f"{NAME}@{first.snapshot_id}", "v1")
    path = tmp_path / "v2.parquet"
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"sample_id": ["s1", "s2", "s4"], "label": ["stop", "stop", "yield"],
                             "score": [0.9, 0.6, 0.1]}), path)
    second = client.commit(NAME, path, message="second", expect_parent=first.snapshot_id)
    assert second.created and second.parent == first.snapshot_id
    client.diff(f"{NAME}@v1", NAME, rows=5)
    client.diff(f"{NAME}@v1", NAME, labels=True)
    assert [s.id for s in client.log(NAME).data] == [second.snapshot_id, first.snapshot_id]
    client.show(NAME)
    client.resolve(f"{NAME}@main~1")
    client.schema(NAME)
    client.datasets()
    client.history(NAME, "s2")
    client.blame(NAME, limit=2)

    client.set_policy(NAME, POLICY)
    client.policy(NAME)
    client.gate_check(NAME)
    client.qa_run(NAME)
    client.gate_results(NAME)
    client.waive(NAME, "good enough", expires="7d")
    client.gate_check(NAME)
    client.pin(NAME, job="train")
    client.plan(NAME, shards=2)
    client.admit_training(NAME, job="train")

    client.create_branch(NAME, "feat")
    client.commit(f"{NAME}@feat", pa.table({"sample_id": ["s1"], "label": ["theirs"], "score": [0.9]}), mode="upsert")
    client.commit(NAME, pa.table({"sample_id": ["s1"], "label": ["ours"], "score": [0.9]}), mode="upsert")
    client.protect_branch(NAME, "feat")
    client.protect_branch(NAME, "feat", protected=False)
    client.branches(NAME)
    assert client.merge_conflicts(NAME, "feat").conflicts
    client.merge(NAME, "feat", dry_run=True, strategy="theirs")
    merged = client.merge(NAME, "feat", strategy="theirs")
    assert merged.outcome == "merged"
    client.delete_branch(NAME, "feat")

    labels = FIXTURES / "label-studio"
    for round_ in ("round1", "round2"):
        client.import_annotations("label-studio", "animals", labels / "classification" / round_ / "json.json",
                                  key="sample", users=labels / "users.json")
    relabeled = client.diff("animals@main~1", "animals", labels=True)
    assert relabeled.changes and relabeled.by_annotator
    client.history("animals", str(relabeled.changes[0].key))
    client.blame("animals", limit=3)
    client.query_rows("SELECT name FROM datasets ORDER BY name")
    client.audit_log(dataset=NAME)
    client.verify_audit(client.audit_checkpoint())
    client.verify(NAME)
    snapshot = client.resolve(NAME).snapshot_id
    client.ingest_lineage(run_event([{"namespace": _namespace(client), "name": NAME,
                                      "facets": {"version": {"datasetVersion": snapshot}}}]))
    client.lineage_graph(NAME)


def _namespace(client: Client) -> str:
    """This registry's lineage namespace, as the pin's lock entry names it."""
    entry = client.pin(NAME, job="train")
    assert entry.namespace is not None
    return entry.namespace


# --- the client returns wire models, never bare JSON ------------------------------------------------------


def _bare(annotation: Any) -> bool:
    """Whether a return annotation is (or holds, in a union or a list) a dict or Any."""
    if annotation is Any or annotation is dict:
        return True
    origin = typing.get_origin(annotation)
    if origin is dict:
        return True
    if origin in (typing.Union, types.UnionType, list):
        return any(_bare(arg) for arg in typing.get_args(annotation))
    return False


def test_the_clients_public_methods_return_no_bare_json() -> None:
    checked = []
    for name, method in inspect.getmembers(Client, inspect.isfunction):
        if name.startswith("_"):
            continue
        namespace = {**vars(sys.modules[method.__module__]), "pa": pa, "Client": Client}  # pa: TYPE_CHECKING-only
        hints = typing.get_type_hints(method, globalns=namespace)
        assert "return" in hints, f"Client.{name} has no return annotation"
        assert not _bare(hints["return"]), f"Client.{name} returns {hints['return']}"
        checked.append(name)
    assert {"datasets", "commit", "diff", "gate_check", "merge", "plan", "admit_training", "branches"} <= set(checked)
    assert registry_client.Client is Client
