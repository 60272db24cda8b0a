"""COCO importer: one row per image with its boxes (category names resolved), one record per annotation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from registry.errors import InvalidInput
from registry.provenance.importers import read_coco
from registry.provenance.records import RECORD_SCHEMA


def coco() -> dict[str, Any]:
    return {
        "info": {"year": 2024, "version": "1.0", "description": "", "contributor": "Label Studio"},
        "images": [
            {"id": 0, "file_name": "images/a.jpg", "width": 640, "height": 480},
            {"id": 1, "file_name": "images/b.jpg", "width": 320, "height": 240},
            {"id": 2, "file_name": "images/empty.jpg", "width": 100, "height": 100},
        ],
        "categories": [{"id": 0, "name": "cat", "supercategory": "animal"}, {"id": 1, "name": "dog"}],
        "annotations": [
            {"id": 10, "image_id": 0, "category_id": 1, "segmentation": [], "bbox": [7.5, 7.0, 188, 164],
             "ignore": 0, "iscrowd": 0, "area": 30832},
            {"id": 11, "image_id": 0, "category_id": 0, "segmentation": [[1, 1, 5, 1, 5, 5]], "bbox": [1, 1, 4, 4],
             "ignore": 0, "iscrowd": 1, "area": 8.0},
            {"id": 12, "image_id": 1, "category_id": 0, "bbox": [0, 0, 10, 10], "iscrowd": 0, "area": 100},
        ],
    }


@pytest.fixture
def coco_file(tmp_path: Path) -> Path:
    path = tmp_path / "result.json"
    path.write_text(json.dumps(coco()), encoding="utf-8")
    return path


def test_rows_per_image_with_named_boxes(coco_file: Path) -> None:
    batch = read_coco(coco_file, batch_id="b", guideline_version="v3")
    assert (batch.source_format, batch.key_column, batch.label_column) == ("coco", "image_id", None)
    rows = {r["image_id"]: r for r in batch.rows.to_pylist()}
    assert list(rows) == ["0", "1", "2"]
    assert rows["0"]["file_name"] == "images/a.jpg" and (rows["0"]["width"], rows["0"]["height"]) == (640, 480)
    assert [(b["annotation_id"], b["category"], b["bbox"], b["iscrowd"]) for b in rows["0"]["boxes"]] == [
        ("10", "dog", [7.5, 7.0, 188.0, 164.0], False), ("11", "cat", [1.0, 1.0, 4.0, 4.0], True)]
    assert rows["0"]["annotations"] == 2 and rows["1"]["boxes"][0]["area"] == 100.0
    assert rows["2"]["boxes"] == [] and rows["2"]["annotations"] == 0


def test_records_carry_every_annotation(coco_file: Path) -> None:
    batch = read_coco(coco_file, batch_id="b", guideline_version="v3")
    assert batch.records.schema.equals(RECORD_SCHEMA)
    records = {r["annotation_id"]: r for r in batch.records.to_pylist()}
    assert list(records) == ["coco:10", "coco:11", "coco:12"]
    first = records["coco:10"]
    assert (first["sample_key"], first["task_id"], first["source_kind"], first["value_type"]) == ("0", "0", "human",
                                                                                                  "bbox")
    assert (first["tool"], first["guideline_version"], first["import_batch"]) == ("coco", "v3", "b")
    assert json.loads(first["value"]) == {"bbox": [7.5, 7.0, 188.0, 164.0], "category": "dog", "category_id": 1,
                                          "area": 30832.0, "iscrowd": False}
    assert json.loads(records["coco:11"]["value"])["segmentation"] == [[1, 1, 5, 1, 5, 5]]


def test_key_on_an_image_field(coco_file: Path) -> None:
    batch = read_coco(coco_file, batch_id="b", key="file_name")
    assert batch.key_column == "file_name" and batch.rows.column_names[0] == "file_name"
    assert batch.records.column("sample_key").to_pylist() == ["images/a.jpg", "images/a.jpg", "images/b.jpg"]


def test_scored_annotations_are_model_records(tmp_path: Path) -> None:
    doc = coco()
    doc["annotations"][2]["score"] = 0.91
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    record = read_coco(path, batch_id="b").records.to_pylist()[2]
    assert (record["source_kind"], record["score"]) == ("model", 0.91)


def test_annotation_on_unknown_image(tmp_path: Path) -> None:
    doc = coco()
    doc["annotations"][0]["image_id"] = 99
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(InvalidInput, match="annotation 10: unknown image_id 99"):
        read_coco(path, batch_id="b")
