"""Label Studio importer: a full export built as Label Studio writes it, read back field by field."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from registry.errors import InvalidInput
from registry.provenance.importers import read_label_studio, resolve_labels
from registry.provenance.records import RECORD_SCHEMA

CONFIG = """<View>
  <Image name="img" value="$image"/>
  <Choices name="animal" toName="img" choice="single">
    <Choice value="cat"/><Choice value="dog"/>
  </Choices>
  <RectangleLabels name="box" toName="img"><Label value="cat"/><Label value="dog"/></RectangleLabels>
</View>
"""


def choice(label: str, from_name: str = "animal") -> list[dict[str, Any]]:
    return [{"id": f"r-{label}", "from_name": from_name, "to_name": "img", "type": "choices",
             "origin": "manual", "value": {"choices": [label]}}]


def box(x: float, label: str) -> dict[str, Any]:
    return {"id": f"b{x}", "from_name": "box", "to_name": "img", "type": "rectanglelabels", "original_width": 640,
            "original_height": 480, "image_rotation": 0,
            "value": {"x": x, "y": 5.0, "width": 12.4, "height": 10.5, "rotation": 0, "rectanglelabels": [label]}}


def annotation(ann_id: int, completed_by: Any, result: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    base = {"id": ann_id, "completed_by": completed_by, "result": result, "was_cancelled": False,
            "ground_truth": False, "created_at": "2024-05-01T10:00:00.123456Z",
            "updated_at": "2024-05-01T10:05:00.000001Z", "lead_time": 12.5, "result_count": 0, "task": 0,
            "project": 7, "parent_prediction": None, "parent_annotation": None, "last_action": None}
    return base | extra


ALICE = 11
BOB = {"id": 12, "first_name": "Bob", "last_name": "Builder", "email": "bob@example.org", "avatar": None}
CARA = {"id": 13, "username": "cara", "email": "cara@example.org", "first_name": "", "last_name": ""}


def task(task_id: int, image: str, annotations: list[dict[str, Any]],
         predictions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"id": task_id, "data": {"image": image, "site": "north"}, "annotations": annotations,
            "predictions": predictions or [], "meta": {}, "created_at": "2024-04-30T09:00:00Z",
            "updated_at": "2024-05-01T10:05:00Z", "inner_id": task_id, "total_annotations": len(annotations),
            "cancelled_annotations": 0, "total_predictions": len(predictions or []), "comment_count": 0,
            "unresolved_comment_count": 0, "last_comment_updated_at": None, "project": 7, "updated_by": 12,
            "file_upload": "upload.json", "comment_authors": [], "annotators": [], "drafts": []}


def export() -> list[dict[str, Any]]:
    """Five tasks covering both completed_by shapes, predictions, cancellation, ground truth, ties, boxes."""
    return [
        task(1, "img/1.jpg", [
            annotation(101, ALICE, choice("cat"), created_at="2024-05-01T12:00:00+02:00"),
            annotation(102, BOB, choice("cat"), lead_time=3),
            annotation(103, CARA, choice("dog")),
            annotation(104, ALICE, [], was_cancelled=True, lead_time=0.4),
        ], predictions=[{"id": 201, "model_version": "resnet-v2", "created_ago": "3 hours", "score": 0.83,
                         "result": choice("dog"), "cluster": None, "neighbors": None, "mislabeling": 0,
                         "created_at": "2024-04-30T09:30:00Z", "updated_at": "2024-04-30T09:30:00Z",
                         "model": None, "model_run": None, "task": 1, "project": 7}]),
        task(2, "img/2.jpg", [
            annotation(105, ALICE, choice("cat")),
            annotation(106, BOB, choice("cat")),
            annotation(107, CARA, choice("dog"), ground_truth=True),
        ]),
        task(3, "img/3.jpg", [annotation(108, ALICE, choice("cat")), annotation(109, BOB, choice("dog"))]),
        task(4, "img/4.jpg", [annotation(110, CARA, [box(50.8, "cat"), box(10.0, "dog")],
                                         reviews=[{"created_by": {"id": 99, "email": "rev@example.org"},
                                                   "accepted": True}])]),
        task(5, "img/5.jpg", [], predictions=[{"id": 202, "model_version": "resnet-v2", "score": 0.5,
                                               "result": choice("cat")}]),
    ]


def write(path: Path, payload: Any) -> Path:
    path.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return path


@pytest.fixture
def export_file(tmp_path: Path) -> Path:
    return write(tmp_path / "export.json", export())


def by_id(table: pa.Table) -> dict[str, dict[str, Any]]:
    return {r["annotation_id"]: r for r in table.to_pylist()}


def test_every_record_field_lands(export_file: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.xml"
    config.write_text(CONFIG, encoding="utf-8")
    batch = read_label_studio(export_file, batch_id="batch-1", guideline_version="g-2.1", config=config,
                              tool_version="1.13.1")
    assert batch.records.schema.equals(RECORD_SCHEMA)
    assert batch.source_format == "label-studio" and batch.key_column == "task_id" and batch.label_column == "label"
    records = by_id(batch.records)
    assert len(records) == 4 + 1 + 3 + 2 + 1 + 1
    sha = hashlib.sha256(CONFIG.encode()).hexdigest()
    assert records["annotation:101"] == {
        "sample_key": "1", "annotation_id": "annotation:101", "annotator_id": "11", "annotator_email": None,
        "annotator_name": None, "source_kind": "human", "model_version": None, "score": None, "value": "cat",
        "value_type": "choices", "created_at": "2024-05-01T10:00:00.000000Z",
        "updated_at": "2024-05-01T10:05:00.000001Z", "lead_time": 12.5, "was_cancelled": False,
        "ground_truth": False, "reviewer": None, "review_state": None, "tool": "label-studio",
        "tool_version": "1.13.1", "project_id": "7", "task_id": "1", "guideline_version": "g-2.1",
        "config_sha256": sha, "import_batch": "batch-1", "extra": None}
    bob = records["annotation:102"]
    assert (bob["annotator_id"], bob["annotator_email"], bob["annotator_name"]) == ("12", "bob@example.org",
                                                                                    "Bob Builder")
    assert bob["lead_time"] == 3.0
    cara = records["annotation:103"]
    assert (cara["annotator_id"], cara["annotator_email"], cara["annotator_name"]) == ("13", "cara@example.org",
                                                                                       "cara")
    cancelled = records["annotation:104"]
    assert cancelled["was_cancelled"] is True and cancelled["value"] is None and cancelled["value_type"] is None
    prediction = records["prediction:201"]
    assert prediction["source_kind"] == "model" and prediction["model_version"] == "resnet-v2"
    assert prediction["score"] == 0.83 and prediction["value"] == "dog" and prediction["annotator_id"] is None
    assert prediction["created_at"] == "2024-04-30T09:30:00.000000Z" and prediction["lead_time"] is None
    assert records["annotation:107"]["ground_truth"] is True
    boxes = records["annotation:110"]
    assert boxes["value_type"] == "rectanglelabels"
    regions = json.loads(boxes["value"])
    assert [r["value"]["x"] for r in regions] == [50.8, 10.0]
    assert {r["from_name"] for r in regions} == {"box"} and {r["to_name"] for r in regions} == {"img"}
    assert boxes["value"] == json.dumps(regions, sort_keys=True, separators=(",", ":"))
    assert (boxes["reviewer"], boxes["review_state"]) == ("rev@example.org", "accepted")
    assert batch.config_text == CONFIG


def test_rows_resolve_labels(export_file: Path) -> None:
    batch = read_label_studio(export_file, batch_id="b")
    rows = {r["task_id"]: r for r in batch.rows.to_pylist()}
    assert batch.rows.column_names == ["task_id", "label", "annotations", "agreement", "disputed", "data"]
    assert rows["1"] | {"data": None} == {"task_id": "1", "label": "cat", "annotations": 3,
                                          "agreement": pytest.approx(2 / 3), "disputed": False, "data": None}
    assert json.loads(rows["1"]["data"]) == {"image": "img/1.jpg", "site": "north"}
    assert (rows["2"]["label"], rows["2"]["agreement"]) == ("dog", pytest.approx(1 / 3))  # ground truth wins
    assert (rows["3"]["label"], rows["3"]["disputed"], rows["3"]["agreement"]) == (None, True, 0.5)
    assert (rows["4"]["label"], rows["4"]["annotations"], rows["4"]["agreement"]) == (None, 1, None)
    assert (rows["5"]["annotations"], rows["5"]["agreement"], rows["5"]["label"]) == (0, None, None)
    resolved = resolve_labels(batch.records)
    assert resolved.column("label").to_pylist() == batch.rows.column("label").to_pylist()
    assert resolved.column("agreement").to_pylist() == batch.rows.column("agreement").to_pylist()
    assert resolved.column("disputed").to_pylist() == batch.rows.column("disputed").to_pylist()


def test_majority_ignores_ground_truth(export_file: Path) -> None:
    rows = {r["task_id"]: r for r in read_label_studio(export_file, batch_id="b", resolve="majority").rows.to_pylist()}
    assert (rows["2"]["label"], rows["2"]["agreement"]) == ("cat", pytest.approx(2 / 3))


def test_unknown_strategy_is_refused(export_file: Path) -> None:
    with pytest.raises(InvalidInput, match="unknown resolve strategy 'vote'"):
        read_label_studio(export_file, batch_id="b", resolve="vote")


def test_key_on_a_data_field(export_file: Path) -> None:
    batch = read_label_studio(export_file, batch_id="b", key="image")
    assert batch.key_column == "image"
    assert batch.rows.column_names[:2] == ["image", "label"] and "task_id" in batch.rows.column_names
    assert batch.rows.column("image").to_pylist() == [f"img/{i}.jpg" for i in range(1, 6)]
    assert set(batch.records.column("sample_key").to_pylist()) == {f"img/{i}.jpg" for i in range(1, 6)}


def test_ids_are_stable_across_reexports(export_file: Path, tmp_path: Path) -> None:
    first = read_label_studio(export_file, batch_id="b1")
    again = read_label_studio(write(tmp_path / "again.json", export()), batch_id="b2")
    assert first.records.column("annotation_id").to_pylist() == again.records.column("annotation_id").to_pylist()
    assert len(set(first.records.column("annotation_id").to_pylist())) == first.records.num_rows


def test_predictions_without_id_get_positional_ids(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [task(9, "x.jpg", [], predictions=[
        {"model_version": "m1", "result": choice("cat")}, {"model_version": "m2", "result": choice("dog")}])])
    ids = read_label_studio(path, batch_id="b").records.column("annotation_id").to_pylist()
    assert ids == ["prediction:task-9:0", "prediction:task-9:1"]


def test_mixed_results_keep_the_classification_label(tmp_path: Path) -> None:
    comment = {"from_name": "note", "to_name": "img", "type": "textarea", "value": {"text": ["blurry"]}}
    path = write(tmp_path / "e.json", [task(1, "x.jpg", [annotation(1, ALICE, choice("cat") + [comment])])])
    batch = read_label_studio(path, batch_id="b")
    record = batch.records.to_pylist()[0]
    assert record["value_type"] == "choices+textarea"
    assert [r["type"] for r in json.loads(record["value"])] == ["choices", "textarea"]
    assert batch.rows.column("label").to_pylist() == ["cat"]


def test_multiple_choices_are_sorted_and_joined(tmp_path: Path) -> None:
    result = [{"from_name": "tags", "to_name": "img", "type": "choices", "value": {"choices": ["outdoor", "blurry"]}}]
    path = write(tmp_path / "e.json", [task(1, "x.jpg", [annotation(1, ALICE, result)])])
    assert read_label_studio(path, batch_id="b").records.column("value").to_pylist() == ["blurry|outdoor"]


def test_empty_export_gives_empty_tables(tmp_path: Path) -> None:
    batch = read_label_studio(write(tmp_path / "e.json", []), batch_id="b")
    assert batch.rows.num_rows == 0 and batch.records.num_rows == 0
    assert batch.records.schema.equals(RECORD_SCHEMA)


def test_cancelled_ground_truth_does_not_win(tmp_path: Path) -> None:
    anns = [annotation(1, ALICE, choice("dog"), ground_truth=True, was_cancelled=True),
            annotation(2, BOB, choice("cat")), annotation(3, CARA, choice("cat"))]
    row = read_label_studio(write(tmp_path / "e.json", [task(1, "x.jpg", anns)]), batch_id="b").rows.to_pylist()[0]
    assert (row["label"], row["annotations"], row["agreement"]) == ("cat", 2, 1.0)


def test_choices_result_without_choices_has_no_label(tmp_path: Path) -> None:
    empty = [{"from_name": "animal", "to_name": "img", "type": "choices", "value": {}}]
    path = write(tmp_path / "e.json", [task(1, "x.jpg", [annotation(1, ALICE, empty)])])
    batch = read_label_studio(path, batch_id="b")
    assert batch.records.to_pylist()[0]["value"] is None
    assert batch.rows.to_pylist()[0] | {"data": None} == {"task_id": "1", "label": None, "annotations": 1,
                                                          "agreement": None, "disputed": False, "data": None}


def test_label_studio_1x_shapes(tmp_path: Path) -> None:
    """Prediction ids resolved from the annotations' ``prediction``, an editor who is the annotator is no
    reviewer, another is; unknown fields are named once each; drafts are counted, not imported."""
    pred = {"id": 40, "model_version": "m1", "score": 0.5, "result": choice("dog"), "task": 1, "project": 7}
    tasks = [
        task(1, "a.jpg", [annotation(1, BOB, choice("cat"), prediction=pred, updated_by=BOB, hologram=1),
                          annotation(2, ALICE, choice("cat"), prediction=pred, updated_by=14, hologram=2)]),
        task(2, "b.jpg", []) | {"predictions": [41], "drafts": [{"id": 3, "user": "bob@example.org"}],
                                "sparkle": True},
    ]
    tasks[0]["predictions"] = [40]
    batch = read_label_studio(write(tmp_path / "e.json", tasks), batch_id="b")
    records = by_id(batch.records)
    assert records["prediction:40"]["value"] == "dog" and records["prediction:40"]["model_version"] == "m1"
    assert "prediction:41" not in records
    assert (records["annotation:1"]["reviewer"], records["annotation:1"]["review_state"]) == (None, None)
    assert (records["annotation:2"]["reviewer"], records["annotation:2"]["review_state"]) == ("14", "updated")
    assert batch.warnings == [
        "1 prediction(s) exported as ids only (no annotation used them): not imported; Label Studio's snapshot "
        "export holds them in full", "1 draft(s) (unsubmitted work) not imported",
        "unknown field 'hologram' in 2 object(s), first in task 1: kept raw in the records' extra",
        "unknown field 'sparkle' in 1 object(s), first in task 2: kept raw in the records' extra"]
    assert records["annotation:1"]["extra"] == '{"annotation":{"hologram":1}}'
    assert records["prediction:40"]["extra"] is None
