"""The role matrix: every endpoint x every role (and no token, and a token scoped to another
dataset) -> the expected status, from one table written out independently of PERMISSIONS."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from registry import Registry
from registry.api.app import create_app
from registry.auth.roles import ROLES
from tests.support.api_support import ARROW, POLICY, arrow_bytes, bearer, run_event

ALL = "admin maintainer writer ci auditor reader"
ROWS = pa.table({"id": [1, 2, 3], "label": ["a", "b", "c"]})
MAINTAINED = POLICY.replace("[alice]", "[alice, admin-token, maintainer-token]")  # policy and waivers need both
VOTES = b"item,worker_id,answer\ns1,w1,cat\ns1,w2,dog\ns2,w1,dog\n"

# (method, path, body, roles allowed, status when allowed, status for an admin token scoped to another dataset)
MATRIX: list[tuple[str, str, Any, str, int, int]] = [
    ("GET", "/datasets", None, ALL, 200, 200),
    ("POST", "/datasets", {"name": "new-{who}", "key": ["id"]}, "admin maintainer writer", 201, 404),
    ("GET", "/datasets/signs/log", None, ALL, 200, 404),
    ("GET", "/snapshots/signs@main", None, ALL, 200, 404),
    ("GET", "/snapshots/signs/data?format=parquet", None, ALL, 200, 404),
    ("POST", "/datasets/signs/commits?mode=upsert", "arrow", "admin maintainer writer", 201, 404),
    ("POST", "/refs/signs@main/tags", {"tag": "t-{who}"}, "admin maintainer writer", 201, 404),
    ("GET", "/diff?a=signs@main~1&b=signs@main", None, ALL, 200, 404),
    ("GET", "/diff/labels/rows?a=signs@main~1&b=signs@main&limit=2", None, ALL, 200, 404),
    ("GET", "/gates/signs", None, ALL, 200, 404),
    ("POST", "/qa/signs", None, "admin ci", 200, 404),
    ("GET", "/audit/events", None, "admin auditor", 200, 422),
    ("GET", "/audit/events?dataset=signs", None, "admin auditor", 200, 404),
    ("POST", "/query", {"sql": "SELECT count(*) AS n FROM datasets"}, "admin auditor", 200, 403),
    ("POST", "/lineage", "event", "admin writer ci", 200, 200),
    ("GET", "/whoami", None, ALL, 200, 200),
    ("GET", "/refs/signs@main", None, ALL, 200, 404),
    ("GET", "/datasets/signs/schema", None, ALL, 200, 404),
    ("POST", "/datasets/votes/imports?format=table&map=key=item,annotator=worker_id,value=answer", "csv",
     "admin writer", 201, 404),
    ("GET", "/datasets/signs/history?key=1", None, ALL, 200, 404),
    ("GET", "/blame/signs@main?limit=2", None, ALL, 200, 404),
    ("GET", "/policies/signs", None, ALL, 200, 404),
    ("PUT", "/policies/signs", {"document": MAINTAINED}, "admin maintainer", 200, 404),
    ("GET", "/gates/signs/results", None, ALL, 200, 404),
    ("POST", "/gates/signs/waivers", {"reason": "r-{who}"}, "admin maintainer", 201, 404),
    ("POST", "/pins", {"ref": "signs@main", "job": "j-{who}"}, "admin maintainer writer ci reader", 201, 404),
    ("GET", "/snapshots/signs/data?training=true&job=train", None, ALL, 200, 404),
    ("GET", "/snapshots/signs/data?training=true&allow_unverified=true", None, "admin maintainer", 200, 404),
    ("POST", "/audit/verify", {"checkpoint": None}, "admin auditor", 200, 403),
    ("POST", "/audit/checkpoints", None, "admin auditor", 200, 403),
    ("POST", "/verify?dataset=signs", None, "admin auditor", 200, 404),
    ("GET", "/lineage/graph?ref=signs&direction=upstream", None, ALL, 200, 404),
]
READS_BY_POST = {"/query", "/audit/verify", "/audit/checkpoints", "/verify?dataset=signs"}
"""Not GETs, but read actions: refusing them is not audited."""
WRITES_BY_GET = {"/snapshots/signs/data?training=true&allow_unverified=true"}
"""GETs that need a write action (allow_unverified needs read_unverified): refusing them is audited."""


@pytest.fixture
def client(reg: Registry) -> Iterator[TestClient]:
    reg.create_dataset("signs", "id", owner="alice")
    reg.commit("signs", ROWS.slice(0, 2))
    reg.commit("signs", ROWS)
    reg.set_policy("signs", MAINTAINED, actor="alice")
    with TestClient(create_app(reg.home)) as client:
        yield client


def _call(client: TestClient, method: str, path: str, body: Any, who: str, headers: dict[str, str]) -> int:
    url = "/api/v1" + path.replace("{who}", who)
    if body == "arrow":
        response = client.request(method, url, content=arrow_bytes(ROWS), headers={**headers, "Content-Type": ARROW})
    elif body == "event":
        response = client.request(method, url, json=run_event(), headers=headers)
    elif body == "csv":
        response = client.request(method, url, files={"file": ("votes.csv", VOTES)}, headers=headers)
    elif body is not None:
        response = client.request(method, url, json={k: v.replace("{who}", who) if isinstance(v, str) else v
                                                     for k, v in body.items()}, headers=headers)
    else:
        response = client.request(method, url, headers=headers)
    if response.status_code >= 400:
        assert set(response.json()) == {"error"} and response.json()["error"]["code"], response.text
    return response.status_code


def test_role_matrix(client: TestClient, reg: Registry) -> None:
    principals = {role: bearer(reg, f"{role}-token", role) for role in ROLES}
    scoped = bearer(reg, "scoped-admin", "admin", ["other"])
    wrong: dict[str, dict[str, str]] = {"none": {}, "garbage": {"Authorization": "Bearer rgt_nope"},
                                        "basic": {"Authorization": "Basic YWRtaW46YWRtaW4="}}
    got: dict[tuple[str, str, str], int] = {}
    want: dict[tuple[str, str, str], int] = {}
    for method, path, body, allowed, ok, scoped_status in MATRIX:
        for role, headers in principals.items():
            want[method, path, role] = ok if role in allowed.split() else 403
            got[method, path, role] = _call(client, method, path, body, role, headers)
        want[method, path, "scoped"] = scoped_status
        got[method, path, "scoped"] = _call(client, method, path, body, "scoped", scoped)
        for label, headers in wrong.items():
            want[method, path, label] = 401
            got[method, path, label] = _call(client, method, path, body, label, headers)
    assert {k: v for k, v in got.items() if want[k] != v} == {}

    # Every refused write attempt is in the audit log under the token's name; refused reads (GETs and
    # the read-only query) are not.
    # They are rate-limited per token (one a minute by default): each token's first refusal is kept.
    denied = reg.audit_log(action="request.denied")
    first: dict[str, str] = {}
    for method, path, _, allowed, _, _ in MATRIX:
        for role in ROLES:
            if role not in allowed.split() and ((method != "GET" and path not in READS_BY_POST)
                                                or path in WRITES_BY_GET):
                first.setdefault(f"{role}-token", "/api/v1" + path.replace("{who}", role).split("?")[0])
    assert {e.actor: e.details["path"] for e in denied} == first
    assert len(denied) == len(first)
    assert {e.actor for e in denied} == {"maintainer-token", "writer-token", "ci-token", "auditor-token",
                                         "reader-token"}
    assert all(e.actor_kind == "token" and e.client["kind"] == "api" for e in denied)
    assert reg.verify_audit().ok


def test_scoped_token_lists_only_its_datasets(client: TestClient, reg: Registry) -> None:
    reg.create_dataset("cars", "id")
    headers = bearer(reg, "lab", "reader", ["cars"])
    listed = client.get("/api/v1/datasets", headers=headers)
    assert [d["name"] for d in listed.json()["data"]] == ["cars"]
    hidden = client.get("/api/v1/snapshots/signs", headers=headers)
    missing = client.get("/api/v1/snapshots/nosuch", headers=bearer(reg, "full", "reader"))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"]["message"].replace("signs", "X") == missing.json()["error"]["message"].replace(
        "nosuch", "X")
