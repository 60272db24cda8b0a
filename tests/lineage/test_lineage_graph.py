"""The lineage graph: walks by depth and direction, ingested events from other systems, the SQL view,
and the ``registry lineage`` commands."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlmodel import select

from registry import Registry
from registry.audit.models import AuditEventRow
from registry.db import transaction
from registry.errors import InvalidInput, NotFound
from registry.lineage.emit import LineageRun, enqueue_training_read, registry_namespace
from registry.lineage.graph import to_dot, walk
from registry.lineage.intake import ingest_run_event, ingest_text
from registry.lineage.views import query_views
from registry.models import SnapshotRow
from tests.conftest import Cli


def _commit(reg: Registry, name: str, label: str, **kwargs: Any) -> str:
    return reg.commit(name, pa.table({"id": [1, 2], "label": ["x", label]}), **kwargs).snapshot_id


def _read(reg: Registry, snapshot_id: str, job: str) -> str:
    with transaction(reg.ctx.engine) as session:
        row = session.get(SnapshotRow, snapshot_id)
        assert row is not None
        return enqueue_training_read(session, reg.ctx, row, job).run_id


@pytest.fixture
def chain(reg: Registry) -> dict[str, str]:
    """raw@r1 -source-> d: v1 -> v2 -> v3 -> v4, and a training run reading v2."""
    reg.create_dataset("raw", "id")
    reg.create_dataset("d", "id")
    ids = {"r1": _commit(reg, "raw", "r"), "v1": _commit(reg, "d", "a", lineage=LineageRun(sources=("raw@main",)))}
    for name, label in (("v2", "b"), ("v3", "c"), ("v4", "e")):
        ids[name] = _commit(reg, "d", label)
    ids["train"] = _read(reg, ids["v2"], "airflow/train")
    return ids


def _keys(graph: Any) -> set[str]:
    return {node.key for node, _dist in graph.nodes.values()}


def test_walks_follow_direction_and_depth(reg: Registry, chain: dict[str, str]) -> None:
    v = {k: f"d@{chain[k]}" for k in ("v1", "v2", "v3", "v4")}
    run = f"airflow/train#{chain['train']}"
    raw = f"raw@{chain['r1']}"
    assert _keys(walk(reg.ctx, v["v2"], "upstream", 1)) == {v["v2"], v["v1"]}
    assert _keys(walk(reg.ctx, v["v2"], "upstream", 2)) == {v["v2"], v["v1"], raw}
    assert _keys(walk(reg.ctx, v["v2"], "downstream", 1)) == {v["v2"], v["v3"], run}
    assert _keys(walk(reg.ctx, v["v2"], "downstream", 5)) == {v["v2"], v["v3"], v["v4"], run}
    both = walk(reg.ctx, v["v2"], "both", 1)
    assert _keys(both) == {v["v1"], v["v2"], v["v3"], run}
    distances = {node.key: dist for node, dist in walk(reg.ctx, v["v4"], "upstream", 10).nodes.values()}
    assert distances == {v["v4"]: 0, v["v3"]: 1, v["v2"]: 2, v["v1"]: 3, raw: 4}
    assert {(e.kind, e.src.key, e.dst.key) for e in both.edges} == {
        ("parent", v["v1"], v["v2"]), ("parent", v["v2"], v["v3"]), ("read", v["v2"], run)}
    with pytest.raises(InvalidInput):
        walk(reg.ctx, v["v2"], "both", 0)
    with pytest.raises(NotFound):
        walk(reg.ctx, "d@nosuchtag", "both", 1)


def test_dot_output_names_every_node_and_edge(reg: Registry, chain: dict[str, str]) -> None:
    dot = to_dot(walk(reg.ctx, f"d@{chain['v2']}", "both", 1))
    assert dot.startswith("digraph lineage {") and dot.rstrip().endswith("}")
    assert f'"d@{chain["v1"]}" -> "d@{chain["v2"]}" [label="parent"];' in dot
    assert f'"d@{chain["v2"]}" -> "airflow/train#{chain["train"]}" [label="read"];' in dot
    assert "style=bold" in dot and dot.count(" -> ") == 3


def _event(reg: Registry, snapshot: str | None, *, namespace: str | None = None, name: str = "d",
           outputs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    facets = {"version": {"_producer": "x", "_schemaURL": "y", "datasetVersion": snapshot}} if snapshot else {}
    return {"eventType": "COMPLETE", "eventTime": "2026-11-23T10:00:00Z", "producer": "https://airflow.apache.org",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": str(uuid.uuid4())}, "job": {"namespace": "airflow", "name": "dag.train_task"},
            "inputs": [{"namespace": namespace or registry_namespace(reg.ctx), "name": name, "facets": facets}],
            "outputs": outputs or []}


def test_an_ingested_event_records_its_job_as_a_consumer(reg: Registry, chain: dict[str, str]) -> None:
    event = _event(reg, chain["v3"], outputs=[{"namespace": "s3://models", "name": "resnet/42"}])
    result = ingest_run_event(reg.ctx, event)
    run = f"airflow/dag.train_task#{event['run']['runId']}"
    assert result.consumed == [f"d@{chain['v3']}"] and result.produced == ["s3://models:resnet/42"]
    assert result.new_edges == 2 and result.skipped == []
    down = walk(reg.ctx, f"d@{chain['v3']}", "downstream", 2)
    assert {(e.kind, e.src.key, e.dst.key) for e in down.edges} >= {
        ("consume", f"d@{chain['v3']}", run), ("produce", run, "s3://models:resnet/42")}
    assert ingest_run_event(reg.ctx, event).new_edges == 0  # START and COMPLETE of one run add nothing twice
    with transaction(reg.ctx.engine, readonly=True) as session:
        audited = session.exec(select(AuditEventRow).where(AuditEventRow.action == "lineage.ingest")).all()
    assert [a.object_id for a in audited] == [event["run"]["runId"]]


def test_ingest_ignores_foreign_datasets_and_explains_unplaceable_ones(reg: Registry, chain: dict[str, str]) -> None:
    foreign = ingest_run_event(reg.ctx, _event(reg, chain["v3"], namespace="postgres://db:5432"))
    assert foreign.consumed == [] and foreign.skipped == [] and foreign.new_edges == 0
    unversioned = ingest_run_event(reg.ctx, _event(reg, None))
    assert unversioned.consumed == [] and "no version facet" in unversioned.skipped[0]
    unknown = ingest_run_event(reg.ctx, _event(reg, "f" * 64))
    assert unknown.consumed == [] and unknown.skipped[0].startswith(f"d@{'f' * 64}")
    prefix = ingest_run_event(reg.ctx, _event(reg, chain["v1"][:12]))
    assert prefix.consumed == [f"d@{chain['v1']}"]


@pytest.mark.parametrize("breakage, message", [
    ("not an object", "JSON object"), ("no run", "run and job"), ("bad run id", "not a UUID"),
    ("no job name", "job.name"), ("inputs not a list", "inputs must be a list"), ("no time", "eventTime"),
    ("input without name", "inputs\\[0\\].name"),
])
def test_malformed_events_are_refused_with_the_field_named(reg: Registry, breakage: str, message: str) -> None:
    reg.create_dataset("d", "id")
    event: Any = _event(reg, None)
    if breakage == "not an object":
        event = ["x"]
    elif breakage == "no run":
        del event["run"]
    elif breakage == "bad run id":
        event["run"]["runId"] = "123"
    elif breakage == "no job name":
        event["job"]["name"] = ""
    elif breakage == "inputs not a list":
        event["inputs"] = {"a": 1}
    elif breakage == "no time":
        del event["eventTime"]
    else:
        del event["inputs"][0]["name"]
    with pytest.raises(InvalidInput, match=message):
        ingest_run_event(reg.ctx, event)


def test_ingest_reads_json_lines_and_lists(reg: Registry, chain: dict[str, str]) -> None:
    events = [_event(reg, chain["v1"]), _event(reg, chain["v4"])]
    assert [r.consumed for r in ingest_text(reg.ctx, "\n".join(json.dumps(e) for e in events))] == [
        [f"d@{chain['v1']}"], [f"d@{chain['v4']}"]]
    assert len(ingest_text(reg.ctx, json.dumps(events))) == 2
    with pytest.raises(InvalidInput, match="line 2"):
        ingest_text(reg.ctx, json.dumps(events[0]) + "\n{nope\n")


def test_the_lineage_edges_view_holds_every_edge(reg: Registry, chain: dict[str, str]) -> None:
    table = query_views(reg.ctx)["lineage_edges"]
    assert table.num_rows == 5
    rows = table.to_pylist()
    assert [r["kind"] for r in rows] == ["source", "parent", "parent", "parent", "read"]
    assert rows[0]["src_name"] == "raw" and rows[0]["src_version"] == chain["r1"] and rows[0]["src_namespace"] is None
    assert rows[-1]["dst_kind"] == "run" and rows[-1]["dst_version"] == chain["train"]
    assert rows[-1]["dst_namespace"] == "airflow"
    import duckdb

    edges = table  # noqa: F841 - DuckDB reads the Arrow table by its Python name
    assert duckdb.sql("SELECT count(*) FROM edges WHERE kind = 'parent'").fetchall() == [(3,)]


def test_the_lineage_commands(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,label\n1,a\n2,b\n")
    (tmp_path / "b.csv").write_text("id,label\n1,a\n2,c\n")
    assert cli("dataset", "create", "d", "--key", "id").code == 0
    first = cli("commit", "d", str(tmp_path / "a.csv"), "--source", "s3://raw:labels.csv", "--json")
    assert first.code == 0, first.stderr
    run_id = str(uuid.uuid4())
    second = cli("commit", "d", str(tmp_path / "b.csv"), "--job", "ci/relabel", "--run-id", run_id,
                 "--parent-run", f"ci/nightly/{uuid.uuid4()}", "--json")
    assert second.code == 0, second.stderr
    v1, v2 = json.loads(first.stdout)["id"], json.loads(second.stdout)["id"]

    graph = json.loads(cli("lineage", "d@main", "--upstream", "--depth", "2", "--json").stdout)
    assert graph["root"] == f"d@{v2}" and graph["direction"] == "upstream"
    assert {(e["kind"], e["src"]) for e in graph["edges"]} == {("parent", f"d@{v1}"), ("source", "s3://raw:labels.csv")}
    dot = cli("lineage", "--downstream", f"d@{v1[:12]}", "--dot")
    assert dot.code == 0 and f'"d@{v1}" -> "d@{v2}"' in dot.stdout
    human = cli("lineage", "show", "d@main")
    assert human.code == 0 and "-[parent]->" in human.stdout

    status = json.loads(cli("lineage", "status", "--json").stdout)
    assert (status["pending"], status["delivered"]) == (0, 4)
    flushed = json.loads(cli("lineage", "flush", "--json").stdout)
    assert flushed["delivered"] == 0 and flushed["busy"] is False

    namespace = json.loads(Path(cli.home / "lineage" / "events.jsonl").read_text().splitlines()[0])["outputs"][0][
        "namespace"]
    incoming = {"eventType": "START", "eventTime": "2026-11-23T10:00:00Z", "run": {"runId": str(uuid.uuid4())},
                "job": {"namespace": "spark", "name": "featurize"},
                "inputs": [{"namespace": namespace, "name": "d", "facets": {"version": {"datasetVersion": v2}}}]}
    (tmp_path / "events.jsonl").write_text(json.dumps(incoming) + "\n")
    ingested = cli("lineage", "ingest", str(tmp_path / "events.jsonl"), "--json")
    assert ingested.code == 0, ingested.stderr
    assert json.loads(ingested.stdout)[0]["consumed"] == [f"d@{v2}"]
    down = json.loads(cli("lineage", "d@main", "--downstream", "--json").stdout)
    assert [e["dst"] for e in down["edges"]] == [f"spark/featurize#{incoming['run']['runId']}"]

    bad = cli("commit", "d", str(tmp_path / "a.csv"), "--run-id", "nope")
    assert bad.code == 2 and "not a UUID" in bad.stderr
    (tmp_path / "bad.json").write_text("[1]")
    refused = cli("lineage", "ingest", str(tmp_path / "bad.json"), "--json")
    assert refused.code == 2 and json.loads(refused.stderr)["error"]["code"] == "invalid_input"
    unknown = cli("lineage", "nosuch@main")
    assert unknown.code == 2 and "unknown dataset" in unknown.stderr
