"""What the registry emits: commit, QA and training-read runs, each event valid against the official
schemas, START/COMPLETE (or FAIL) paired per run, and the full snapshot id in the version facet.

Events are read back from the JSON-lines file the real OpenLineage client writes in the home (the
default sink), so they are exactly what a backend would receive.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlmodel import func, select

from registry import Registry
from registry.db import transaction
from registry.errors import BreakingSchemaChange, InvalidInput, NotFound, RefConflict
from registry.lineage.emit import (
    Assertion,
    LineageRun,
    enqueue_failed_run,
    enqueue_qa_run,
    enqueue_training_read,
    registry_namespace,
)
from registry.lineage.events import CUSTOM_FACET, JobRef
from registry.lineage.graph import walk
from registry.lineage.models import LineageOutboxRow
from registry.models import SnapshotRow
from tests.lineage.test_lineage_spec import check_event, emitted, runs
from tests.support.settings import reresolve

FULL_ID = re.compile(r"^[0-9a-f]{64}$")


def _table(ids: list[int], labels: list[str | None]) -> pa.Table:
    return pa.table({"id": ids, "label": labels})


def _outputs(event: dict[str, Any]) -> dict[str, Any]:
    (output,) = event["outputs"]
    return output  # type: ignore[no-any-return]


def _snapshot(reg: Registry, snapshot_id: str) -> SnapshotRow:
    with transaction(reg.ctx.engine, readonly=True) as session:
        row = session.get(SnapshotRow, snapshot_id)
        assert row is not None
        return row


def test_commits_emit_valid_start_complete_pairs_with_the_full_snapshot_id(reg: Registry) -> None:
    reg.create_dataset("signs", "id", owner="alice")
    first = reg.commit("signs", _table([1, 2, 3], ["a", None, "a"]), message="round 1")
    second = reg.commit("signs", _table([1, 2, 3], ["a", "b", "a"]), message="round 2")
    third = reg.commit("signs", _table([4], ["c"]), mode="upsert")
    widened = reg.commit("signs", pa.table({"id": [1, 2, 3, 4], "label": ["a", "b", "a", "c"], "score": [1.0] * 4}))

    events = emitted(reg.home)
    assert len(events) == 8
    facet_count = sum(check_event(e) for e in events)
    assert facet_count > 8 * 2
    assert list(runs(events).values()) == [["START", "COMPLETE"]] * 4
    for run_id in runs(events):
        assert uuid.UUID(run_id).version == 7

    completes = [e for e in events if e["eventType"] == "COMPLETE"]
    assert [_outputs(e)["facets"]["version"]["datasetVersion"] for e in completes] == [
        first.snapshot_id, second.snapshot_id, third.snapshot_id, widened.snapshot_id]
    for event in events:
        assert event["job"] == {"namespace": "registry", "name": "commit/signs", "facets": event["job"]["facets"]}
        assert _outputs(event)["namespace"] == registry_namespace(reg.ctx) == f"registry://{_host()}/home"
        assert FULL_ID.match(_outputs(event)["facets"]["version"]["datasetVersion"])
    assert completes[0]["inputs"] == []
    assert [i["facets"]["version"]["datasetVersion"] for i in completes[1]["inputs"]] == [first.snapshot_id]

    out = _outputs(completes[0])["facets"]
    assert out["lifecycleStateChange"]["lifecycleStateChange"] == "CREATE"
    assert out["documentation"]["description"] == "round 1"
    assert out["ownership"]["owners"] == [{"name": "user:alice", "type": "OWNER"}]
    assert out["schema"]["fields"] == [{"name": "id", "type": "int64"}, {"name": "label", "type": "string"}]
    metrics = out["dataQualityMetrics"]
    assert metrics["rowCount"] == 3 and metrics["bytes"] > 0
    assert metrics["columnMetrics"]["label"] == {"nullCount": 1, "distinctCount": 1, "count": 3.0}
    custom = out[CUSTOM_FACET]
    assert custom["snapshotId"] == first.snapshot_id and custom["parents"] == []
    assert custom["change"] == {"added": 3, "changed": 0, "removed": 0, "rows": 3,
                                "bytesWritten": first.bytes_written,
                                "summary": _snapshot(reg, first.snapshot_id).summary}
    assert custom["change"]["summary"].startswith("+3")
    assert custom["schemaVersion"]["compatibility"] == "initial"
    assert custom["provenance"]["author"] == _snapshot(reg, first.snapshot_id).author

    upsert = _outputs(completes[2])["facets"]
    assert upsert["lifecycleStateChange"]["lifecycleStateChange"] == "OVERWRITE"
    assert upsert["dataQualityMetrics"]["rowCount"] == 4
    assert upsert["dataQualityMetrics"]["columnMetrics"] == {}  # upserts hold only the change
    assert "documentation" not in upsert  # no message
    assert _outputs(completes[3])["facets"]["lifecycleStateChange"]["lifecycleStateChange"] == "ALTER"
    starts = [e for e in events if e["eventType"] == "START"]
    assert all(s["eventTime"] <= c["eventTime"] for s, c in zip(starts, completes, strict=True))


def _host() -> str:
    import socket

    return socket.gethostname()


def test_a_caller_names_job_run_parent_and_sources(reg: Registry) -> None:
    reg.create_dataset("raw", "id")
    raw = reg.commit("raw", _table([1], ["x"]))
    reg.create_dataset("clean", "id")
    run_id, parent_run = str(uuid.uuid4()), str(uuid.uuid4())
    result = reg.commit("clean", _table([1], ["x"]), lineage=LineageRun(
        job="airflow/etl.clean", run_id=run_id, parent_run=f"airflow/nightly/{parent_run}",
        sources=("raw@main", "s3://landing:images/2026-11")))

    events = [e for e in emitted(reg.home) if e["run"]["runId"] == run_id]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    for event in events:
        check_event(event)
        assert (event["job"]["namespace"], event["job"]["name"]) == ("airflow", "etl.clean")
        parent = event["run"]["facets"]["parent"]
        assert parent["run"] == {"runId": parent_run}
        assert parent["job"] == {"namespace": "airflow", "name": "nightly"}
        inputs = {(i["namespace"], i["name"]): i for i in event["inputs"]}
        assert inputs[(registry_namespace(reg.ctx), "raw")]["facets"]["version"]["datasetVersion"] == raw.snapshot_id
        assert ("s3://landing", "images/2026-11") in inputs
    custom = _outputs(events[1])["facets"][CUSTOM_FACET]
    assert custom["provenance"]["sources"] == [f"raw@{raw.snapshot_id}", "s3://landing:images/2026-11"]

    upstream = walk(reg.ctx, f"clean@{result.snapshot_id}", "upstream", 1)
    assert {(e.kind, e.src.key) for e in upstream.edges} == {
        ("source", f"raw@{raw.snapshot_id}"), ("source", "s3://landing:images/2026-11")}


@pytest.mark.parametrize("bad", [{"job": "nojobnamespace"}, {"run_id": "not-a-uuid"},
                                 {"parent_run": "airflow/dag/not-a-uuid"}, {"sources": ("missing@main",)}])
def test_malformed_lineage_arguments_fail_before_any_work(reg: Registry, bad: dict[str, Any]) -> None:
    reg.create_dataset("d", "id")
    with pytest.raises((InvalidInput, NotFound)):
        reg.commit("d", _table([1], ["x"]), lineage=LineageRun(**bad))
    with pytest.raises(NotFound, match="no snapshots yet"):
        reg.show("d@main")
    assert emitted(reg.home) == []


def test_a_refused_commit_is_a_start_and_fail_with_the_error_message(reg: Registry) -> None:
    reg.create_dataset("d", "id")
    reg.commit("d", _table([1, 2], ["a", "b"]))
    with pytest.raises(BreakingSchemaChange):
        reg.commit("d", pa.table({"id": [1, 2], "label": [1, 2]}))
    head = reg.show("d@main").id
    with pytest.raises(RefConflict):
        reg.commit("d", _table([1, 2], ["c", "d"]), expect_parent="0" * 12)

    events = emitted(reg.home)
    pairs = list(runs(events).values())
    assert pairs == [["START", "COMPLETE"], ["START", "FAIL"], ["START", "FAIL"]]
    fails = [e for e in events if e["eventType"] == "FAIL"]
    for event in fails:
        check_event(event)
        assert event["outputs"] == []
    assert "BreakingSchemaChange" in fails[0]["run"]["facets"]["errorMessage"]["message"]
    assert "breaking schema change" in fails[0]["run"]["facets"]["errorMessage"]["message"]
    assert "RefConflict" in fails[1]["run"]["facets"]["errorMessage"]["message"]
    assert fails[0]["run"]["facets"]["errorMessage"]["programmingLanguage"] == "PYTHON"
    assert reg.show("d@main").id == head


def test_a_commit_that_changes_nothing_is_a_run_without_output(reg: Registry) -> None:
    reg.create_dataset("d", "id")
    first = reg.commit("d", _table([1], ["a"]))
    again = reg.commit("d", _table([1], ["a"]))
    assert not again.created
    events = emitted(reg.home)
    last = [e for e in events if e["run"]["runId"] == events[-1]["run"]["runId"]]
    assert [e["eventType"] for e in last] == ["START", "COMPLETE"]
    for event in last:
        check_event(event)
        assert event["outputs"] == []
        assert [i["facets"]["version"]["datasetVersion"] for i in event["inputs"]] == [first.snapshot_id]


def test_qa_runs_carry_assertions_and_metrics_on_the_input(reg: Registry) -> None:
    reg.create_dataset("d", "id")
    snap = reg.commit("d", _table([1, 2, 3], ["a", None, "c"]))
    assertions = [Assertion("not_null", False, column="label", severity="error", expected="0", actual="1"),
                  Assertion("row_count", True, severity="warn", expected=">= 1", actual="3", name="enough_rows")]
    with transaction(reg.ctx.engine) as session:
        row = session.get(SnapshotRow, snap.snapshot_id)
        assert row is not None
        info = enqueue_qa_run(session, reg.ctx, row, assertions,
                              column_metrics={"label": {"nullCount": 1, "distinctCount": 2}})
    assert (info.job.namespace, info.job.name) == ("registry", "qa/d")

    events = [e for e in emitted(reg.home) if e["run"]["runId"] == info.run_id]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]  # a failed gate still completes
    for event in events:
        check_event(event)
        (data,) = event["inputs"]
        assert data["facets"]["version"]["datasetVersion"] == snap.snapshot_id
        items = data["inputFacets"]["dataQualityAssertions"]["assertions"]
        assert items[0] == {"assertion": "not_null", "success": False, "column": "label", "severity": "error",
                            "expected": "0", "actual": "1"}
        assert items[1]["success"] is True and items[1]["name"] == "enough_rows"
        metrics = data["inputFacets"]["dataQualityMetrics"]
        assert metrics["rowCount"] == 3 and metrics["columnMetrics"]["label"]["nullCount"] == 1

    crash_run = str(uuid.uuid4())
    assert enqueue_failed_run(reg.ctx, info.job, crash_run, RuntimeError("checker crashed"))
    crash = [e for e in emitted(reg.home) if e["run"]["runId"] == crash_run]
    assert [e["eventType"] for e in crash] == ["START", "FAIL"]
    check_event(crash[1])
    assert crash[1]["run"]["facets"]["errorMessage"]["message"] == "RuntimeError: checker crashed"


def test_training_reads_emit_a_run_of_the_training_job_and_record_the_edge(reg: Registry) -> None:
    reg.create_dataset("d", "id")
    snap = reg.commit("d", _table([1, 2], ["a", "b"]))
    given = str(uuid.uuid4())
    with transaction(reg.ctx.engine) as session:
        row = session.get(SnapshotRow, snap.snapshot_id)
        assert row is not None
        pinned = enqueue_training_read(session, reg.ctx, row, "airflow/train_resnet", given, operation="pin")
        loaded = enqueue_training_read(session, reg.ctx, row, JobRef("ml", "train"), operation="load",
                                       parent=f"airflow/train_resnet/{given}")
    assert pinned.run_id == given and loaded.run_id != given

    events = emitted(reg.home)
    for run_id, job in ((given, ("airflow", "train_resnet")), (loaded.run_id, ("ml", "train"))):
        mine = [e for e in events if e["run"]["runId"] == run_id]
        assert [e["eventType"] for e in mine] == ["START", "COMPLETE"]
        for event in mine:
            check_event(event)
            assert (event["job"]["namespace"], event["job"]["name"]) == job
            assert [i["facets"]["version"]["datasetVersion"] for i in event["inputs"]] == [snap.snapshot_id]
    assert [e for e in events if e["run"]["runId"] == loaded.run_id][0]["run"]["facets"]["parent"]["run"] == {
        "runId": given}

    down = walk(reg.ctx, "d@main", "downstream", 1)
    assert {(e.kind, e.dst.key) for e in down.edges} == {
        ("read", f"airflow/train_resnet#{given}"), ("read", f"ml/train#{loaded.run_id}")}


def _outbox_rows(reg: Registry) -> int:
    with transaction(reg.ctx.engine, readonly=True) as session:
        return int(session.exec(select(func.count()).select_from(LineageOutboxRow)).one())


def test_events_roll_back_with_the_operation(reg: Registry) -> None:
    reg.create_dataset("d", "id")
    snap = reg.commit("d", _table([1], ["a"]))
    before = _outbox_rows(reg)
    with pytest.raises(RuntimeError, match="operation failed"), transaction(reg.ctx.engine) as session:
        row = session.get(SnapshotRow, snap.snapshot_id)
        assert row is not None
        enqueue_training_read(session, reg.ctx, row, "airflow/train")
        raise RuntimeError("operation failed after queueing")
    assert _outbox_rows(reg) == before
    assert walk(reg.ctx, "d@main", "downstream", 1).edges == []


def test_openlineage_disabled_queues_nothing_but_keeps_the_graph(reg: Registry, monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    reresolve(reg)
    reg.create_dataset("d", "id")
    reg.commit("d", _table([1], ["a"]))
    second = reg.commit("d", _table([1], ["b"]))
    assert _outbox_rows(reg) == 0 and emitted(reg.home) == []
    assert [e.kind for e in walk(reg.ctx, f"d@{second.snapshot_id}", "upstream", 1).edges] == ["parent"]


def test_the_custom_facet_schema_ships_in_the_package() -> None:
    from importlib.resources import files

    text = files("registry.lineage").joinpath("schemas/RegistryChangeSummaryFacet.json").read_text()
    assert '"RegistryChangeSummaryFacet"' in text


def test_events_file_lives_in_the_home(reg: Registry) -> None:
    reg.create_dataset("d", "id")
    reg.commit("d", _table([1], ["a"]))
    assert (Path(reg.home) / "lineage" / "events.jsonl").stat().st_size > 0


def _label_studio_task(tid: int, label: str) -> dict[str, Any]:
    result = [{"id": f"r{tid}", "from_name": "sign", "to_name": "image", "type": "choices",
               "value": {"choices": [label]}}]
    return {"id": tid, "project": 7, "data": {"image": f"s3://signs/{tid}.jpg"}, "predictions": [],
            "created_at": "2026-10-29T00:00:00Z",
            "annotations": [{"id": tid * 10, "completed_by": 1, "was_cancelled": False, "ground_truth": False,
                             "lead_time": 4.25, "created_at": "2026-11-01T10:00:00Z",
                             "updated_at": "2026-11-01T10:00:00Z", "result": result}]}


def test_an_import_is_a_commit_run_whose_provenance_names_the_annotation_records(reg: Registry,
                                                                                 tmp_path: Path) -> None:
    export = tmp_path / "export.json"
    export.write_text(json.dumps([_label_studio_task(1, "stop"), _label_studio_task(2, "yield")]))
    imported = reg.import_annotations("label-studio", "signs", export)
    events = emitted(reg.home)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    for event in events:
        check_event(event)
        assert event["job"]["name"] == "commit/signs"
    custom = _outputs(events[1])["facets"][CUSTOM_FACET]
    assert custom["snapshotId"] == imported.commit.snapshot_id
    assert FULL_ID.match(custom["provenance"]["annotationRecords"])
