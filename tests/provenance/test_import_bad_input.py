"""Every bad input an import can meet: a clear InvalidInput (CLI exit 2) saying what and where."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from registry.errors import InvalidInput, exit_code_for
from registry.provenance.importers import parse_mapping, read_annotation_table, read_coco, read_label_studio

COCO = {"images": [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 3}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "area": 1, "iscrowd": 0}],
        "categories": [{"id": 1, "name": "cat"}]}
TASK = {"id": 1, "data": {"image": "a.jpg"}, "annotations": []}


def write(path: Path, payload: Any) -> Path:
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload), encoding="utf-8")
    return path


def refused(call: Any, match: str) -> InvalidInput:
    with pytest.raises(InvalidInput, match=match) as info:
        call()
    assert exit_code_for(info.value) == 2
    return info.value


def test_malformed_json_names_the_position(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.json", '[\n  {"id": 1, "data": {"image": "a"}},\n  {"id" 2}\n]')
    error = refused(lambda: read_label_studio(path, batch_id="b"), "malformed JSON")
    assert "line 3, column 9" in error.message and str(path) in error.message


def test_truncated_json_is_malformed(tmp_path: Path) -> None:
    path = write(tmp_path / "cut.json", json.dumps([TASK, TASK])[:-10])
    refused(lambda: read_label_studio(path, batch_id="b"), r"malformed JSON at line 1, column \d+")


def test_malformed_coco_names_the_position(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.json", '{"images": [\n{"id": 1,}]}')
    refused(lambda: read_coco(path, batch_id="b"), "malformed JSON at line 2, column 10 \\(byte 22\\)")


def test_unknown_result_type_is_kept_raw_with_one_warning(tmp_path: Path) -> None:
    odd = {"from_name": "x", "to_name": "img", "type": "hologram", "value": {"depth": 3}}
    tasks = [{"id": i, "data": {}, "annotations": [{"id": i, "completed_by": 1, "result": [odd]}]} for i in (1, 2)]
    batch = read_label_studio(write(tmp_path / "e.json", tasks), batch_id="b")
    assert batch.warnings == ["unknown result type 'hologram' in 2 result(s), first in task 1: kept raw"]
    record = batch.records.to_pylist()[0]
    assert (record["value_type"], record["value"]) == ("hologram", '{"depth":3}')


def test_task_without_the_key_field(tmp_path: Path) -> None:
    tasks = [TASK, {"id": 42, "data": {"text": "hello"}, "annotations": []}]
    error = refused(lambda: read_label_studio(write(tmp_path / "e.json", tasks), batch_id="b", key="image"),
                    "task 42 has no key field 'image'")
    assert "text" in error.message


def test_two_tasks_with_one_key(tmp_path: Path) -> None:
    tasks = [TASK, TASK | {"id": 2}]
    refused(lambda: read_label_studio(write(tmp_path / "e.json", tasks), batch_id="b", key="image"),
            "tasks 1 and 2 share image 'a.jpg'")


def test_coco_file_as_label_studio(tmp_path: Path) -> None:
    refused(lambda: read_label_studio(write(tmp_path / "coco.json", COCO), batch_id="b"),
            r"expected a Label Studio JSON export .*looks like COCO \(has 'images' and 'annotations'\)")


def test_single_task_object_as_label_studio(tmp_path: Path) -> None:
    refused(lambda: read_label_studio(write(tmp_path / "task.json", TASK), batch_id="b"),
            "single Label Studio task, not a list of tasks")


def test_csv_as_label_studio(tmp_path: Path) -> None:
    refused(lambda: read_label_studio(write(tmp_path / "x.json", "item,answer\n1,cat\n"), batch_id="b"),
            "expected a Label Studio JSON export.*looks like CSV")


def test_parquet_as_label_studio(tmp_path: Path) -> None:
    pq.write_table(pa.table({"a": [1]}), tmp_path / "x.parquet")
    refused(lambda: read_label_studio(tmp_path / "x.parquet", batch_id="b"), "looks like Parquet")


def test_json_lines_as_label_studio(tmp_path: Path) -> None:
    lines = "".join(json.dumps(TASK) + "\n" for _ in range(3))
    refused(lambda: read_label_studio(write(tmp_path / "tasks.json", lines), batch_id="b"),
            "expected a Label Studio JSON export.*looks like JSON lines")


def test_coco_annotation_list_as_label_studio(tmp_path: Path) -> None:
    refused(lambda: read_label_studio(write(tmp_path / "a.json", COCO["annotations"]), batch_id="b"),
            "looks like a list of COCO annotations")


def test_label_studio_as_coco(tmp_path: Path) -> None:
    refused(lambda: read_coco(write(tmp_path / "ls.json", [TASK]), batch_id="b"),
            "expected a COCO JSON object.*looks like a Label Studio JSON export")


def test_csv_as_coco(tmp_path: Path) -> None:
    refused(lambda: read_coco(write(tmp_path / "x.csv", "image_id,bbox\n1,2\n"), batch_id="b"),
            "expected a COCO JSON object.*looks like CSV")


def test_object_without_images_as_coco(tmp_path: Path) -> None:
    refused(lambda: read_coco(write(tmp_path / "x.json", {"info": {}, "licenses": []}), batch_id="b"),
            "JSON object with keys 'info', 'licenses'")


def test_label_studio_export_as_table(tmp_path: Path) -> None:
    refused(lambda: read_annotation_table(write(tmp_path / "ls.json", [TASK]), mapping={"key": "id", "value": "x"},
                                          batch_id="b"), "JSON array")


def test_missing_file(tmp_path: Path) -> None:
    refused(lambda: read_label_studio(tmp_path / "nope.json", batch_id="b"), "no such file")
    refused(lambda: read_coco(tmp_path / "nope.json", batch_id="b"), "no such file")


def test_bad_config_is_refused(tmp_path: Path) -> None:
    config = write(tmp_path / "c.xml", "<View><Choices name='a'")
    refused(lambda: read_label_studio(write(tmp_path / "e.json", [TASK]), batch_id="b", config=config),
            "well-formed XML")


def test_non_object_task(tmp_path: Path) -> None:
    refused(lambda: read_label_studio(write(tmp_path / "e.json", [TASK, 3]), batch_id="b"),
            "item 1 is a int, not a task object")


@pytest.mark.parametrize(("text", "match"), [
    ("annotator", "not target=column"),
    ("annotator=", "not target=column"),
    ("colour=c", "unknown target 'colour'"),
    ("key=a,sample_key=b", "target 'key' given twice"),
])
def test_bad_mapping(text: str, match: str) -> None:
    refused(lambda: parse_mapping(text), match)


def test_mapping_naming_missing_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "log.csv", "item,answer\n1,cat\n")
    refused(lambda: read_annotation_table(path, mapping=parse_mapping("key=item,value=label_text"), batch_id="b"),
            r"missing column\(s\) value=label_text \(columns are: item, answer\)")
    refused(lambda: read_annotation_table(path, mapping=parse_mapping("key=item"), batch_id="b"),
            "must name the value column")


def test_unknown_coco_category(tmp_path: Path) -> None:
    doc = COCO | {"categories": [{"id": 2, "name": "dog"}]}
    refused(lambda: read_coco(write(tmp_path / "c.json", doc), batch_id="b"), "annotation 1: unknown category_id 1")
