"""Annotation tables (CSV, Parquet, JSON lines) with a column mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from registry.errors import InvalidInput
from registry.provenance.importers import parse_mapping, read_annotation_table
from registry.provenance.records import RECORD_SCHEMA

LOG = pa.table({
    "item": ["s1", "s1", "s1", "s2", "s2"],
    "worker_id": ["w1", "w2", "w3", "w1", "w2"],
    "answer": ["cat", "cat", "dog", "dog", "cat"],
    "submitted": ["2024-05-01T10:00:00Z", "2024-05-01T11:00:00+01:00", "2024-05-01 12:00", None, None],
    "seconds": [3.5, 4.0, None, 1.0, 2.0],
    "gold": [False, False, False, False, True],
})
MAPPING = "key=item,annotator=worker_id,value=answer,created_at=submitted,lead_time=seconds,ground_truth=gold"


def write(tmp_path: Path, suffix: str) -> Path:
    path = tmp_path / f"log{suffix}"
    if suffix == ".csv":
        pacsv.write_csv(LOG, path)
    elif suffix == ".parquet":
        pq.write_table(LOG, path)
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in LOG.to_pylist()), encoding="utf-8")
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_table_with_mapping(tmp_path: Path, suffix: str) -> None:
    path = write(tmp_path, suffix)
    batch = read_annotation_table(path, mapping=parse_mapping(MAPPING), batch_id="b", guideline_version="g1")
    assert (batch.source_format, batch.key_column, batch.label_column) == ("table", "item", "label")
    assert batch.records.schema.equals(RECORD_SCHEMA)
    records = batch.records.to_pylist()
    assert [r["annotator_id"] for r in records] == ["w1", "w2", "w3", "w1", "w2"]
    assert [r["value"] for r in records] == ["cat", "cat", "dog", "dog", "cat"]
    assert records[0]["created_at"] == "2024-05-01T10:00:00.000000Z"
    assert records[1]["created_at"] == "2024-05-01T10:00:00.000000Z"
    # zone-less text is kept as given; a zone-less timestamp column (Arrow's JSON reader) is taken as UTC
    assert records[2]["created_at"] == ("2024-05-01 12:00" if suffix != ".jsonl" else "2024-05-01T12:00:00.000000Z")
    assert [r["lead_time"] for r in records] == [3.5, 4.0, None, 1.0, 2.0]
    assert records[4]["ground_truth"] is True and records[0]["ground_truth"] is False
    assert {(r["tool"], r["guideline_version"], r["import_batch"], r["source_kind"], r["value_type"])
            for r in records} == {(path.name, "g1", "b", "human", "label")}
    assert all(r["annotation_id"].startswith("row:") for r in records)
    assert len({r["annotation_id"] for r in records}) == 5
    rows = {r["item"]: r for r in batch.rows.to_pylist()}
    assert batch.rows.column_names == ["item", "label", "annotations", "agreement", "disputed"]
    assert (rows["s1"]["label"], rows["s1"]["annotations"], rows["s1"]["agreement"]) == ("cat", 3, pytest.approx(2 / 3))
    assert (rows["s2"]["label"], rows["s2"]["disputed"]) == ("cat", False)  # ground truth breaks the tie


def test_hashed_ids_are_stable_and_mapped_ids_are_used(tmp_path: Path) -> None:
    path = write(tmp_path, ".csv")
    first = read_annotation_table(path, mapping=parse_mapping(MAPPING), batch_id="b1")
    again = read_annotation_table(path, mapping=parse_mapping(MAPPING), batch_id="b2")
    assert first.records.column("annotation_id").equals(again.records.column("annotation_id"))
    with pytest.raises(InvalidInput, match="row 4: annotation id 'w1' appears more than once"):
        read_annotation_table(path, mapping=parse_mapping("key=item,value=answer,annotation_id=worker_id"),
                              batch_id="b")
    mapped = read_annotation_table(path, mapping=parse_mapping("key=worker_id,value=answer,annotation_id=submitted"),
                                   batch_id="b")
    assert mapped.records.column("annotation_id").to_pylist()[:2] == ["2024-05-01T10:00:00Z",
                                                                      "2024-05-01T11:00:00+01:00"]


def test_repeated_rows_get_distinct_ids(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("item,answer\na,x\na,x\n", encoding="utf-8")
    ids = read_annotation_table(path, mapping=parse_mapping("key=item,value=answer"),
                                batch_id="b").records.column("annotation_id").to_pylist()
    assert ids[1] == ids[0] + ":2"


def test_source_kind_and_score(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("item,answer,who,kind,p\na,x,w1,human,\na,y,m1,model,0.8\n", encoding="utf-8")
    batch = read_annotation_table(path, mapping=parse_mapping("key=item,value=answer,model_version=who,"
                                                              "source_kind=kind,score=p"), batch_id="b")
    model = batch.records.to_pylist()[1]
    assert (model["source_kind"], model["score"], model["model_version"]) == ("model", 0.8, "m1")
    assert batch.rows.to_pylist()[0]["label"] == "x" and batch.rows.to_pylist()[0]["annotations"] == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("item,answer,kind\na,x,robot\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="source_kind must be 'human' or 'model', not 'robot'"):
        read_annotation_table(bad, mapping=parse_mapping("key=item,value=answer,source_kind=kind"), batch_id="b")


def test_parse_mapping_aliases() -> None:
    assert parse_mapping(" annotator = worker_id , label=answer,sample_key=item ") == {
        "annotator_id": "worker_id", "value": "answer", "key": "item"}
