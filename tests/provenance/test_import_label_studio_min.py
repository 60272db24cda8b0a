"""Label Studio's JSON_MIN export: detected under label-studio, read with and without the labeling config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from registry.errors import InvalidInput
from registry.provenance.importers import read_label_studio
from registry.provenance.records import RECORD_SCHEMA

CONFIG = """<View>
  <Image name="img" value="$image"/>
  <Choices name="animal" toName="img"><Choice value="cat"/><Choice value="dog"/></Choices>
  <RectangleLabels name="box" toName="img"><Label value="cat"/></RectangleLabels>
</View>"""


def item(task_id: int, annotation_id: int, annotator: Any, animal: Any, **extra: Any) -> dict[str, Any]:
    """One JSON_MIN item as Label Studio writes it: data fields flattened next to the answers."""
    return {"image": f"img/{task_id}.jpg", "id": task_id, "animal": animal, "annotator": annotator,
            "annotation_id": annotation_id, "created_at": "2024-05-01T10:00:00.5Z",
            "updated_at": "2024-05-01T10:01:00Z", "lead_time": 7.25} | extra


REGION = {"x": 10.0, "y": 20.0, "width": 30.0, "height": 40.0, "rotation": 0, "rectanglelabels": ["cat"],
          "original_width": 640, "original_height": 480}


def min_export() -> list[dict[str, Any]]:
    return [
        item(1, 501, 11, "cat"),
        item(1, 502, "bob@example.org", "cat"),
        item(1, 503, 13, "dog"),
        item(2, 504, 11, {"choices": ["dog", "cat"]}),
        item(3, 505, 12, "dog", box=[REGION]),
    ]


@pytest.fixture
def min_file(tmp_path: Path) -> Path:
    path = tmp_path / "min.json"
    path.write_text(json.dumps(min_export()), encoding="utf-8")
    return path


def test_json_min_with_config(min_file: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.xml"
    config.write_text(CONFIG, encoding="utf-8")
    batch = read_label_studio(min_file, batch_id="b", config=config, key="image")
    assert batch.source_format == "label-studio-min" and batch.warnings == []
    assert batch.records.schema.equals(RECORD_SCHEMA)
    records = {r["annotation_id"]: r for r in batch.records.to_pylist()}
    first = records["annotation:501"]
    assert (first["sample_key"], first["task_id"], first["annotator_id"], first["value"]) == ("img/1.jpg", "1",
                                                                                              "11", "cat")
    assert (first["created_at"], first["updated_at"]) == ("2024-05-01T10:00:00.500000Z", "2024-05-01T10:01:00.000000Z")
    assert first["lead_time"] == 7.25 and first["was_cancelled"] is False and first["config_sha256"] is not None
    assert records["annotation:502"]["annotator_email"] == "bob@example.org"
    assert records["annotation:502"]["annotator_id"] is None
    assert records["annotation:504"]["value"] == "cat|dog"
    mixed = records["annotation:505"]
    assert mixed["value_type"] == "choices+rectanglelabels"
    assert [r["from_name"] for r in json.loads(mixed["value"])] == ["animal", "box"]
    rows = {r["image"]: r for r in batch.rows.to_pylist()}
    assert list(rows) == ["img/1.jpg", "img/2.jpg", "img/3.jpg"]
    assert (rows["img/1.jpg"]["label"], rows["img/1.jpg"]["annotations"]) == ("cat", 3)
    assert rows["img/1.jpg"]["agreement"] == pytest.approx(2 / 3)
    assert rows["img/3.jpg"]["label"] == "dog"
    assert json.loads(rows["img/1.jpg"]["data"]) == {"image": "img/1.jpg"}


def test_json_min_without_config_tells_the_answers_from_the_data(min_file: Path) -> None:
    batch = read_label_studio(min_file, batch_id="b")
    assert batch.source_format == "label-studio-min"
    assert batch.warnings == ["no --config: answers told from the data: animal (choices), box (rectanglelabels)"]
    records = {r["annotation_id"]: r for r in batch.records.to_pylist()}
    assert records["annotation:504"]["value"] == "cat|dog"  # an object with 'choices' is recognised by shape
    assert records["annotation:501"]["value"] == "cat"  # a plain answer: it differs within task 1
    assert records["annotation:505"]["value_type"] == "choices+rectanglelabels"
    rows = {r["task_id"]: r for r in batch.rows.to_pylist()}
    assert rows["1"]["label"] == "cat" and json.loads(rows["1"]["data"]) == {"image": "img/1.jpg"}


def test_json_min_whose_label_field_is_ambiguous_is_refused(tmp_path: Path) -> None:
    items = [item(1, 1, 11, "cat", mood="calm"), item(1, 2, 12, "dog", mood="wild")]
    path = tmp_path / "min.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"cannot tell which field holds the label: animal, mood .*labeling config"):
        read_label_studio(path, batch_id="b")


def test_json_min_without_any_answer_field_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "min.json"
    path.write_text(json.dumps([item(1, 1, 11, "cat"), item(2, 2, 12, "dog")]), encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"cannot tell which field holds the label \(fields: animal, image\); "
                                           r"give the project's labeling config"):
        read_label_studio(path, batch_id="b")


def test_structured_data_missing_from_some_items_stays_data(tmp_path: Path) -> None:
    items = [item(1, 1, 11, "cat", meta=[{"camera": "a"}]), item(1, 2, 12, "dog"), item(2, 3, 11, "dog")]
    path = tmp_path / "min.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    batch = read_label_studio(path, batch_id="b")
    assert batch.warnings == ["no --config: answers told from the data: animal (choices)"]
    rows = {r["task_id"]: r for r in batch.rows.to_pylist()}
    assert json.loads(rows["1"]["data"])["meta"] == [{"camera": "a"}] and rows["2"]["label"] == "dog"
