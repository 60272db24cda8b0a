"""Unknown Label Studio fields are kept raw in the records' ``extra`` (issue 16), and records objects written
before ``extra`` existed keep working with every reader: the full set, history, blame, the label diff, the
``annotations`` query view, record checks, merges and verify. The exports are the real server's
(tests/fixtures/label-studio); the unknown fields are added to a copy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import yaml

import registry.provenance.store as record_store
import registry.snapshots.commit as snapshot_commit
from registry import Registry
from registry.provenance.importers import read_label_studio
from registry.provenance.records import RECORD_SCHEMA
from registry.provenance.store import RecordDelta, read_delta
from registry.sync.client import API_TASK_FIELDS
from tests.support.label_studio_facts import FIXTURES, load_facts

PROJECT = FIXTURES / "classification"


def _export(tmp_path: Path, round_: int, unknown: bool) -> Path:
    """A copy of the real round-``round_`` JSON export; with ``unknown``, task 1 gains a field ``sparkle`` and
    each annotation of task 2 a field ``hologram`` (Label Studio writes neither)."""
    tasks: list[dict[str, Any]] = json.loads((PROJECT / f"round{round_}" / "json.json").read_text())
    if unknown:
        by_id = {t["id"]: t for t in tasks}
        by_id[1]["sparkle"] = {"level": 3}
        for position, annotation in enumerate(by_id[2]["annotations"]):
            annotation["hologram"] = position
    path = tmp_path / f"round{round_}{'-unknown' if unknown else ''}.json"
    path.write_text(json.dumps(tasks))
    return path


def test_unknown_fields_are_kept_raw_in_extra_with_one_warning_per_kind(reg: Registry, tmp_path: Path) -> None:
    result = reg.import_annotations("label-studio", "animals", _export(tmp_path, 1, unknown=True))
    unknown = [w for w in result.warnings if w.startswith("unknown field")]
    assert len(unknown) == 2 and all("kept raw in the records' extra" in w for w in unknown), result.warnings
    assert any("'hologram' in 2 object(s), first in task 2" in w for w in unknown), unknown
    records = reg.annotations("animals@main")
    extra = {r["annotation_id"]: r["extra"] for r in records.to_pylist() if r["extra"] is not None}
    task1 = {r["annotation_id"] for r in records.to_pylist() if r["task_id"] == "1"}
    task2 = [r for r in records.to_pylist() if r["task_id"] == "2" and r["source_kind"] == "human"]
    assert {a: extra[a] for a in task1} == {a: '{"task":{"sparkle":{"level":3}}}' for a in task1}
    assert sorted(json.loads(extra[r["annotation_id"]])["annotation"]["hologram"] for r in task2) == [0, 1]
    assert set(extra) == task1 | {r["annotation_id"] for r in task2}
    shown = reg.query("SELECT count(*) AS n FROM annotations WHERE extra IS NOT NULL").to_pylist()
    assert shown == [{"n": len(extra)}]
    assert reg.verify().ok


def test_records_written_before_extra_keep_working(reg: Registry, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Round 1 imported by a writer of the old schema (no ``extra``), then round 2 (with unknown fields) by
    today's, on a branch merged back into a main that moved meanwhile: every reader sees one schema."""
    real_write = record_store.write_delta

    def old_writer(ctx: Any, delta: RecordDelta) -> Any:
        return real_write(ctx, RecordDelta(delta.table.drop_columns(["extra"]), delta.added, delta.updated,
                                           delta.removed))

    with monkeypatch.context() as old:
        old.setattr(snapshot_commit, "write_delta", old_writer)  # where the commit stage calls it
        first = reg.import_annotations("label-studio", "animals", _export(tmp_path, 1, unknown=False)).commit
    old_object = reg.show(f"animals@{first.snapshot_id}").annotations_sha256
    assert old_object is not None
    assert "extra" not in pa.parquet.ParquetFile(reg.ctx.store.local_path(old_object)).schema_arrow.names
    assert "extra" in read_delta(reg.ctx, old_object).column_names

    old_set = reg.annotations(f"animals@{first.snapshot_id}")
    assert old_set.schema.names == RECORD_SCHEMA.names and old_set.column("extra").null_count == old_set.num_rows

    reg.branch("animals@relabel")
    second = reg.import_annotations("label-studio", "animals@relabel", _export(tmp_path, 2, unknown=True)).commit
    row = reg.read("animals@main").filter(pc.equal(pc.field("task_id"), "30")).to_pylist()[0]
    reg.commit("animals", pa.Table.from_pylist([{**row, "label": "zebra"}]), mode="upsert")  # main moves meanwhile
    merged = reg.merge("animals@relabel")
    assert merged.snapshot_id is not None

    labels = [{r["task_id"]: r["label"] for r in reg.read(f"animals@{s.snapshot_id}").to_pylist()}
              for s in (first, second)]
    diff = reg.label_diff(f"animals@{first.snapshot_id}", f"animals@{second.snapshot_id}")
    assert diff.relabeled == sum(labels[0][t] != labels[1][t] for t in labels[0]) > 0
    relabelled = load_facts()["projects"]["classification"]["relabelled"]
    assert sum(diff.by_annotator.values()) >= 1 and len(relabelled) == 5
    assert reg.annotations(f"animals@{second.snapshot_id}").column("extra").null_count == 96  # 6 acts of tasks 1, 2
    merged_records = reg.annotations("animals@main")  # the union (ours wins a shared annotation id)
    assert merged_records.schema.names == RECORD_SCHEMA.names and merged_records.num_rows == old_set.num_rows
    history = reg.history("animals", "4")  # cls-003: annotation 6 relabeled in round 2
    assert [e.annotation_id for e in history if e.kind == "label" and e.change == "updated"].count("annotation:6") == 1
    blame = reg.blame("animals@main")
    assert blame.num_rows == reg.read("animals@main").num_rows
    rows = reg.query("SELECT snapshot_id, count(*) AS n, count(extra) AS with_extra FROM annotations "
                     "GROUP BY snapshot_id").to_pylist()
    by_snapshot = {r["snapshot_id"]: r for r in rows}
    assert by_snapshot[first.snapshot_id]["with_extra"] == 0 and by_snapshot[first.snapshot_id]["n"] > 0
    assert by_snapshot[second.snapshot_id]["with_extra"] > 0
    reg.set_policy("animals", yaml.safe_dump({"checks": [{"check": "provenance_complete"}]}))
    for ref in (f"animals@{first.snapshot_id}", "animals@main"):
        outcome = reg.qa_run(ref).checks[0]
        assert "error" not in outcome.get("details", {}), outcome
    report = reg.verify()
    assert report.ok, report.problems


def test_the_known_task_fields_are_the_readers_choice(tmp_path: Path) -> None:
    """``read_label_studio(task_fields=...)`` decides which task fields are known (the sync passes the REST
    API's list): the exports' ``allow_skip``, which the API does not send, is then kept raw with one warning,
    and the API's ``completed_at`` is not; the default list reads the same file without a warning."""
    path = _export(tmp_path, 1, unknown=False)
    tasks = json.loads(path.read_text())
    for task in tasks:
        task["completed_at"] = task["updated_at"]
    path.write_text(json.dumps(tasks))
    as_api = read_label_studio(path, batch_id="b", task_fields=API_TASK_FIELDS)
    (warning,) = [w for w in as_api.warnings if w.startswith("unknown field")]
    assert f"'allow_skip' in {len(tasks)} object(s)" in warning, warning
    kept = {json.dumps(json.loads(x)["task"]) for x in as_api.records.column("extra").to_pylist()}
    assert kept == {json.dumps({"allow_skip": t["allow_skip"]}) for t in tasks if t["annotations"]}
    as_export = read_label_studio(path, batch_id="b")
    assert [w for w in as_export.warnings if "'allow_skip'" in w] == []
    assert [w for w in as_export.warnings if "'completed_at'" in w] != []  # the exports' list does not know it
