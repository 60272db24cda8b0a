"""Branches and merges over HTTP: the Python client and the remote CLI against a real uvicorn server."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import registry_client

from tests.api.test_client import Server, server  # noqa: F401  (the live-server fixture)
from tests.conftest import Cli

ROWS = pa.table({"sample_id": ["s1", "s2", "s3"], "label": ["stop", "yield", "stop"], "score": [0.9, 0.5, 0.7]})


def _diverge(client: registry_client.Client) -> None:
    client.create_dataset("ds", "sample_id")
    client.commit("ds", ROWS)
    client.create_branch("ds", "feat")
    client.commit("ds@feat", pa.table({"sample_id": ["s1", "s2"], "label": ["theirs", "yield"],
                                       "score": [0.9, 0.1]}), mode="upsert")
    client.commit("ds", pa.table({"sample_id": ["s1"], "label": ["ours"], "score": [0.9]}), mode="upsert")


def test_client_branches_conflicts_and_merge(server: Server) -> None:  # noqa: F811
    client = server.client()
    _diverge(client)
    assert [b.name for b in client.branches("ds").data] == ["main", "feat"]
    found = client.merge_conflicts("ds", "feat")
    assert [(c.key, c.column, c.ours, c.theirs) for c in found.conflicts] == [
        ({"sample_id": "s1"}, "label", "ours", "theirs")]
    head = client.show("ds").id
    with pytest.raises(registry_client.UnresolvedConflicts) as raised:
        client.merge("ds", "feat")
    assert raised.value.status == 409 and raised.value.conflicts[0]["column"] == "label"
    with pytest.raises(registry_client.RefConflict):
        client.merge("ds", "feat", strategy="theirs", expect_target=client.log("ds").data[-1].id)
    assert client.show("ds").id == head
    result = client.merge("ds", "feat", resolutions=[{"key": {"sample_id": "s1"}, "column": "label",
                                                      "value": "agreed"}], expect_target=head)
    assert result.outcome == "merged" and result.target_before == head
    rows = {r["sample_id"]: r for r in client.read("ds").to_pylist()}
    assert rows["s1"]["label"] == "agreed" and rows["s2"]["score"] == 0.1
    assert client.delete_branch("ds", "feat").merged is True


def test_roles_protection_and_bad_requests(server: Server) -> None:  # noqa: F811
    admin = server.client()
    _diverge(admin)
    writer = server.client("wendy", "writer")
    with pytest.raises(registry_client.PermissionDenied):
        writer.merge("ds", "feat", strategy="ours")
    assert server.reg.audit_log(action="request.denied")[-1].details["action"] == "merge"
    writer.create_branch("ds", "w1")
    with pytest.raises(registry_client.PermissionDenied):
        writer.protect_branch("ds", "main")
    admin.protect_branch("ds", "main")
    with pytest.raises(registry_client.PermissionDenied, match="protected"):
        writer.commit("ds", ROWS)
    with pytest.raises(registry_client.InvalidInput):
        admin.delete_branch("ds", "main")
    with pytest.raises(registry_client.NotFound):
        admin.merge("ds", "nosuch")
    with pytest.raises(registry_client.InvalidInput):
        admin.merge("ds", "feat", strategy="sideways")  # type: ignore[arg-type]
    with pytest.raises(registry_client.InvalidName):
        admin.create_branch("ds", "bad name")
    maintainer = server.client("mia", "maintainer")
    assert maintainer.merge("ds", "feat", strategy="theirs").outcome == "merged"
    assert admin.read("ds").sort_by("sample_id").column("label").to_pylist() == ["theirs", "yield", "stop"]


def test_remote_cli_merge_lists_conflicts_and_exits_1(server: Server, cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    _diverge(server.client())
    env = {"REGISTRY_URL": server.url, "REGISTRY_TOKEN": server.token("robot", "admin")}
    listed = cli("branch", "list", "ds", "--json", env=env)
    assert listed.code == 0 and [b["name"] for b in json.loads(listed.stdout)] == ["main", "feat"]
    refused = cli("merge", "ds@feat", "--json", env=env)
    assert refused.code == 1, refused.stderr
    assert json.loads(refused.stdout)["conflicts"][0]["key"] == {"sample_id": "s1"}
    path = tmp_path / "res.csv"
    pacsv.write_csv(pa.table({"sample_id": ["s1"], "column": ["label"], "value": ["theirs"]}), path)
    merged = cli("merge", "ds@feat", "--resolutions", str(path), "--json", env=env)
    assert merged.code == 0, merged.stderr
    assert json.loads(merged.stdout)["outcome"] == "merged"
