"""QA runs, pins and training reads emit their OpenLineage runs (validated against the official
schemas) and record the snapshot -> job run edge; a crash of the evaluation is a FAIL run."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from registry import Registry
from tests.lineage.test_lineage_spec import check_event, emitted, runs

POLICY = """
maintainers: [alice]
checks:
  - check: row_count
    min: 2
  - check: not_null
    columns: [label]
    severity: warn
"""


@pytest.fixture
def passed(reg: Registry) -> Registry:
    reg.create_dataset("signs", "id", owner="alice")
    reg.commit("signs", pa.table({"id": [1, 2, 3], "label": ["a", None, "b"]}), message="round 1")
    reg.set_policy("signs", POLICY, actor="alice")
    return reg


def _job_events(reg: Registry, prefix: str) -> list[dict]:  # type: ignore[type-arg]
    return [e for e in emitted(reg.home) if e["job"]["name"].startswith(prefix)]


def test_qa_run_emits_a_complete_run_with_assertions(passed: Registry) -> None:
    result = passed.qa_run("signs")
    events = _job_events(passed, "qa/signs")
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert len(runs(events)) == 1
    for event in events:
        check_event(event)
    (dataset,) = events[-1]["inputs"]
    assert dataset["facets"]["version"]["datasetVersion"] == result.snapshot_id
    assertions = dataset["inputFacets"]["dataQualityAssertions"]["assertions"]
    by_name = {a["assertion"]: a for a in assertions}
    assert by_name["row_count"]["success"] is True
    assert by_name["not_null"]["success"] is False and by_name["not_null"]["severity"] == "warn"


def test_failed_gate_is_still_a_complete_run(passed: Registry) -> None:
    passed.set_policy("signs", POLICY.replace("min: 2", "min: 10"), actor="alice")
    assert passed.qa_run("signs").status == "failed"
    events = _job_events(passed, "qa/signs")
    assert events[-1]["eventType"] == "COMPLETE"
    (dataset,) = events[-1]["inputs"]
    assert {a["assertion"]: a["success"] for a in dataset["inputFacets"]["dataQualityAssertions"]["assertions"]
            }["row_count"] is False


def test_a_pin_is_its_own_job_and_a_load_a_run_of_the_training_job(passed: Registry, tmp_path: Path) -> None:
    passed.qa_run("signs")
    lock = tmp_path / "registry.lock"
    entry = passed.pin("signs", lock, job="train-resnet")
    passed.load(entry, job="train-resnet")
    pins, loads = _job_events(passed, "pin/signs"), _job_events(passed, "train-resnet")
    assert [e["eventType"] for e in pins] == [e["eventType"] for e in loads] == ["START", "COMPLETE"]
    assert len(runs(pins)) == len(runs(loads)) == 1 and runs(pins) != runs(loads)
    for event in pins + loads:
        check_event(event)
        (dataset,) = event["inputs"]
        assert dataset["facets"]["version"]["datasetVersion"] == entry.snapshot_id
    edges = passed.query("SELECT kind, src_version, dst_name FROM lineage_edges WHERE kind <> 'parent'").to_pylist()
    assert sorted(e["dst_name"] for e in edges) == ["pin/signs", "train-resnet"]
    assert all(e["src_version"] == entry.snapshot_id for e in edges)
    passed.load(entry, job="airflow/train")
    assert _job_events(passed, "train")[-1]["job"]["namespace"] == "airflow"


def test_default_file_sink_writes_what_the_client_would(passed: Registry, tmp_path: Path) -> None:
    """The home's JSON-lines file is written without importing the client; every line must be byte for
    byte what the client's file transport writes for the same stored event."""
    from openlineage.client.serde import Serde
    from sqlmodel import select

    from registry.db import transaction
    from registry.lineage.models import LineageOutboxRow
    from registry.lineage.transport import file_line, to_client_event

    passed.qa_run("signs")
    passed.pin("signs", tmp_path / "registry.lock", job="train")
    with transaction(passed.ctx.engine, readonly=True) as session:
        payloads = [json.loads(r.payload) for r in session.exec(select(LineageOutboxRow)).all()]
    assert {p["job"]["name"].split("/")[0] for p in payloads} >= {"commit", "qa", "pin"}
    for payload in payloads:
        assert file_line(payload) == Serde.to_json(to_client_event(payload))
    written = (passed.home / "lineage" / "events.jsonl").read_text().splitlines()
    assert sorted(written) == sorted(file_line(p) for p in payloads)
