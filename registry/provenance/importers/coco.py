"""COCO detection files (``coco``): one row per image with its boxes, one record per annotation.

The file is one JSON object (``images``, ``annotations``, ``categories``), parsed whole, or a zip
holding it (Label Studio's COCO export: ``result.json`` and an ``images/`` folder). Label Studio
writes one ``images`` entry per (task, annotation) with 0-based ids and null sizes for entries
without boxes; ``--key file_name`` makes the entries of one image one sample. Rows:
the key (``image_id``, or the image field named by ``--key`` such as ``file_name``), ``image_id``,
``file_name``, ``width``, ``height``, ``boxes`` (list of ``{annotation_id, category_id, category,
bbox, area, iscrowd}``) and ``annotations`` (the box count). Images without annotations are rows
with no boxes. A record's value is canonical JSON of ``{bbox, category, category_id, area,
iscrowd}`` (plus ``segmentation`` when present), ``value_type`` ``bbox``; an annotation with a
``score`` (detection results) is a ``model`` record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from registry.errors import InvalidInput
from registry.provenance.importers.archive import ExportFiles, is_zip
from registry.provenance.importers.common import (
    ColumnBuilder,
    ImportBatch,
    as_bool,
    as_float,
    as_str,
    canonical_json,
    record_builder,
)
from registry.provenance.importers.jsonio import describe_json_shape, describe_non_json, first_byte, load_json
from registry.snapshots.inputs import check_json_bytes_depth

__all__ = ["read_coco"]

_EXPECTED = "expected a COCO JSON object with 'images', 'annotations' and 'categories'"
_BOX = pa.struct([
    pa.field("annotation_id", pa.string()),
    pa.field("category_id", pa.int64()),
    pa.field("category", pa.string()),
    pa.field("bbox", pa.list_(pa.float64())),
    pa.field("area", pa.float64()),
    pa.field("iscrowd", pa.bool_()),
])


def _row_schema(key_column: str) -> pa.Schema:
    fields = [pa.field(key_column, pa.string()), pa.field("image_id", pa.string()),
              pa.field("file_name", pa.string()), pa.field("width", pa.int64()), pa.field("height", pa.int64()),
              pa.field("boxes", pa.list_(_BOX)), pa.field("annotations", pa.int64())]
    return pa.schema([f for i, f in enumerate(fields) if i == 0 or f.name != key_column])


def _load(path: Path) -> dict[str, Any]:
    if is_zip(path):
        return _check(path, _from_zip(path))
    char, head = first_byte(path)
    if not char or char not in "{[":
        raise InvalidInput(f"{path}: {_EXPECTED}; {describe_non_json(head)}")
    return _check(path, load_json(path))


def _from_zip(path: Path) -> Any:
    """The COCO document inside a zip (Label Studio's COCO export holds ``result.json``)."""
    with ExportFiles(path) as files:
        member = files.find("result.json") or next((n for n in files.names() if n.endswith(".json")), None)
        if member is None:
            raise InvalidInput(f"{path}: {_EXPECTED}; the zip holds no .json file")
        data = files.read(member)
        check_json_bytes_depth(data, f"{path}: {member}")
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"{path}: {member} is not JSON ({exc})") from None


def _check(path: Path, doc: Any) -> dict[str, Any]:
    if isinstance(doc, list):
        raise InvalidInput(f"{path}: {_EXPECTED}; {describe_json_shape(item=doc[0] if doc else None)}")
    if not isinstance(doc, dict) or not {"images", "annotations"} <= doc.keys():
        keys = list(doc) if isinstance(doc, dict) else []
        raise InvalidInput(f"{path}: {_EXPECTED}; {describe_json_shape(keys=keys)}")
    for name in ("images", "annotations", "categories"):
        if not isinstance(doc.get(name, []), list) or not all(isinstance(v, dict) for v in doc.get(name, [])):
            raise InvalidInput(f"{path}: {name!r} must be a list of objects")
    return doc


def _bbox(ann: dict[str, Any], where: str) -> list[float] | None:
    box = ann.get("bbox")
    if box is None:
        return None
    if not isinstance(box, list) or len(box) != 4:
        raise InvalidInput(f"{where}: 'bbox' must be [x, y, width, height]")
    return [float(v) for v in box]


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _image_keys(path: Path, images: list[dict[str, Any]], key: str | None) -> dict[str, str]:
    """image id -> sample key, checking both are present and image ids unique. Images sharing a ``--key``
    value (Label Studio writes one images entry per annotation of a task) are one sample."""
    keys: dict[str, str] = {}
    seen: dict[str, str] = {}
    for index, image in enumerate(images):
        image_id = as_str(image.get("id"))
        if image_id is None:
            raise InvalidInput(f"{path}: image at position {index} has no 'id'")
        value = image_id if key is None else image.get(key)
        if value is None or value == "" or isinstance(value, dict | list):
            raise InvalidInput(f"{path}: image {image_id} has no usable key field {key!r}")
        sample = as_str(value)
        assert sample is not None
        if image_id in keys or (key is None and sample in seen):
            raise InvalidInput(f"{path}: images {seen.get(sample, image_id)} and {image_id} share "
                               f"{key or 'image_id'} {sample!r}; the sample key must be unique")
        keys[image_id] = sample
        seen[sample] = image_id
    return keys


def read_coco(path: Path, *, key: str | None = None, guideline_version: str | None = None,
              batch_id: str) -> ImportBatch:
    """Read a COCO detection file into per-image rows and per-annotation records.

    Raises:
        InvalidInput: missing, malformed or wrong-format file; an image without the key field or
            sharing its key; an annotation naming an unknown image or category, or a bad bbox.
    """
    path = Path(path)
    doc = _load(path)
    categories = {as_str(c.get("id")): as_str(c.get("name")) for c in doc.get("categories", [])}
    images = doc["images"]
    keys = _image_keys(path, images, key)
    boxes: dict[str, list[dict[str, Any]]] = {image_id: [] for image_id in keys}
    records = record_builder({"tool": "coco", "guideline_version": guideline_version, "import_batch": batch_id})
    for index, ann in enumerate(doc["annotations"]):
        ann_id = as_str(ann.get("id"))
        where = f"{path}: annotation {ann_id if ann_id is not None else f'at position {index}'}"
        image_id, category_id = as_str(ann.get("image_id")), as_str(ann.get("category_id"))
        if image_id not in keys:
            raise InvalidInput(f"{where}: unknown image_id {ann.get('image_id')!r}")
        if category_id not in categories:
            raise InvalidInput(f"{where}: unknown category_id {ann.get('category_id')!r}")
        box = {"annotation_id": ann_id, "category_id": _int(ann.get("category_id")),
               "category": categories[category_id],
               "bbox": _bbox(ann, where), "area": as_float(ann.get("area"), f"{where}: area"),
               "iscrowd": as_bool(ann.get("iscrowd"), f"{where}: iscrowd")}
        boxes[image_id].append(box)
        value = {k: v for k, v in box.items() if k != "annotation_id"}
        if ann.get("segmentation"):
            value["segmentation"] = ann["segmentation"]
        score = as_float(ann.get("score"), f"{where}: score")
        records.append({
            "sample_key": keys[image_id], "task_id": image_id,
            "annotation_id": f"coco:{ann_id}" if ann_id is not None else f"coco:image-{image_id}:{index}",
            "source_kind": "human" if score is None else "model", "score": score,
            "value": canonical_json(value), "value_type": "bbox",
        })
    key_column = key or "image_id"
    rows = ColumnBuilder(_row_schema(key_column))
    merged: dict[str, list[dict[str, Any]]] = {}
    for image_id, sample in keys.items():
        merged.setdefault(sample, []).extend(boxes[image_id])
    for image in images:
        image_id = as_str(image.get("id"))
        assert image_id is not None
        sample = keys[image_id]
        if sample not in merged:
            continue  # a later entry of a sample already written
        sample_boxes = merged.pop(sample)
        rows.append({key_column: sample, "image_id": image_id, "file_name": as_str(image.get("file_name")),
                     "width": _int(image.get("width")), "height": _int(image.get("height")), "boxes": sample_boxes,
                     "annotations": len(sample_boxes)})
    return ImportBatch(rows=rows.finish(), records=records.finish(), key_column=key_column, label_column=None,
                       warnings=[], source_format="coco")
