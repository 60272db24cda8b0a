"""YOLO exports (``yolo``): a zip (as Label Studio downloads it) or a folder of ``labels/*.txt``.

Class names come from ``classes.txt`` (one per line, line number = class id), else ``data.yaml``
(``names``, a list or an id -> name mapping); without either the import stops, since class ids alone
name nothing. ``notes.json`` (Label Studio's category list) is checked against them when present.
Each label file is one sample, keyed by its file name without ``.txt`` (``image``): a row with its
``boxes`` (class id, category, normalised centre ``x``/``y``, ``width``/``height``; an oriented box or
polygon line keeps its corner ``points`` instead) and the box count. Every box is an annotation
record (``value_type`` ``yolo_bbox`` or ``yolo_polygon``, value canonical JSON of the box); YOLO names
no annotator, time or task. Label Studio's YOLO export holds only the oldest annotation of each
task and an empty file for an image without boxes (a row with no boxes).
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa
import yaml

from registry.errors import InvalidInput
from registry.provenance.importers.archive import ExportFiles
from registry.provenance.importers.common import ColumnBuilder, ImportBatch, canonical_json, record_builder
from registry.snapshots.inputs import check_json_bytes_depth

__all__ = ["read_yolo"]

KEY_COLUMN = "image"
_BOX = pa.struct([
    pa.field("class_id", pa.int64()),
    pa.field("category", pa.string()),
    pa.field("x", pa.float64()),
    pa.field("y", pa.float64()),
    pa.field("width", pa.float64()),
    pa.field("height", pa.float64()),
    pa.field("points", pa.list_(pa.float64())),
])
ROW_SCHEMA = pa.schema([pa.field(KEY_COLUMN, pa.string()), pa.field("label_file", pa.string()),
                        pa.field("boxes", pa.list_(_BOX)), pa.field("annotations", pa.int64())])


def _classes(files: ExportFiles) -> list[str]:
    """Class names by id, from ``classes.txt`` or ``data.yaml``."""
    listed = files.find("classes.txt")
    if listed is not None:
        names = [line.strip() for line in files.text(listed).splitlines()]
        while names and not names[-1]:
            names.pop()
        if names and all(names):
            return names
        raise InvalidInput(f"{files.path}: {listed} names no classes (one name per line expected)")
    described = files.find("data.yaml")
    if described is not None:
        try:
            doc = yaml.safe_load(files.text(described))
        except yaml.YAMLError as exc:
            raise InvalidInput(f"{files.path}: {described} is not YAML ({exc})") from None
        given = doc.get("names") if isinstance(doc, dict) else None
        if isinstance(given, dict) and given and all(isinstance(k, int) and 0 <= k < 100_000 for k in given):
            given = [str(given[i]) if i in given else "" for i in range(max(given) + 1)]
        if isinstance(given, list) and given:
            return [str(n) for n in given]
        raise InvalidInput(f"{files.path}: {described} has no 'names' list")
    raise InvalidInput(f"{files.path}: a YOLO export needs classes.txt (or data.yaml with names) to name its "
                       "class ids; none found")


def _check_notes(files: ExportFiles, classes: list[str]) -> None:
    notes = files.find("notes.json")
    if notes is None:
        return
    data = files.read(notes)
    check_json_bytes_depth(data, f"{files.path}: {notes}")
    try:
        doc = json.loads(data)
        named = {int(c["id"]): str(c["name"]) for c in doc.get("categories", [])}
    except (ValueError, TypeError, KeyError, AttributeError):
        raise InvalidInput(f"{files.path}: {notes} is not Label Studio's notes (categories with id and name)") \
            from None
    clash = [i for i, name in named.items() if i < len(classes) and classes[i] != name]
    if clash:
        raise InvalidInput(f"{files.path}: {notes} names class {clash[0]} {named[clash[0]]!r} but classes.txt "
                           f"says {classes[clash[0]]!r}")


def _box(line: str, classes: list[str], where: str) -> dict[str, Any]:
    parts = line.split()
    try:
        class_id, numbers = int(parts[0]), [float(v) for v in parts[1:]]
    except ValueError:
        raise InvalidInput(f"{where}: expected 'class x y width height' numbers, got {line.strip()[:80]!r}") from None
    if not 0 <= class_id < len(classes):
        raise InvalidInput(f"{where}: class id {class_id} is not in classes.txt ({len(classes)} classes)")
    box: dict[str, Any] = {"class_id": class_id, "category": classes[class_id]}
    if len(numbers) == 4:
        box.update(zip(("x", "y", "width", "height"), numbers, strict=True))
        box["points"] = None
    elif len(numbers) >= 6 and len(numbers) % 2 == 0:
        box.update(x=None, y=None, width=None, height=None, points=numbers)
    else:
        raise InvalidInput(f"{where}: expected 'class x y width height' (or a polygon of x y pairs), got "
                           f"{len(parts)} values")
    return box


def read_yolo(path: Path, *, guideline_version: str | None = None, batch_id: str) -> ImportBatch:
    """Read a YOLO export (zip or folder) into per-image rows and per-box records.

    Raises:
        InvalidInput: not a zip or folder; no classes; no label files; a malformed line or unknown class.
    """
    path = Path(path)
    with ExportFiles(path) as files:
        classes = _classes(files)
        _check_notes(files, classes)
        labels = [n for n in files.names() if n.endswith(".txt") and PurePosixPath(n).name != "classes.txt"
                  and (n.startswith("labels/") or "/labels/" in n)]
        if not labels:
            raise InvalidInput(f"{path}: no label files (labels/*.txt) in this YOLO export")
        rows = ColumnBuilder(ROW_SCHEMA)
        records = record_builder({"tool": "yolo", "guideline_version": guideline_version, "import_batch": batch_id,
                                  "source_kind": "human"})
        seen: dict[str, str] = {}
        for name in labels:
            key = PurePosixPath(name).stem
            if key in seen:
                raise InvalidInput(f"{path}: {seen[key]} and {name} are both labels of image {key!r}")
            seen[key] = name
            boxes = [_box(line, classes, f"{path}: {name} line {number}")
                     for number, line in enumerate(files.text(name).splitlines(), start=1) if line.strip()]
            for number, box in enumerate(boxes, start=1):
                value = {k: v for k, v in box.items() if v is not None}
                kind = "yolo_bbox" if box["points"] is None else "yolo_polygon"
                records.append({"sample_key": key, "annotation_id": f"yolo:{key}:{number}",
                                "value": canonical_json(value), "value_type": kind})
            rows.append({KEY_COLUMN: key, "label_file": name, "boxes": boxes, "annotations": len(boxes)})
    return ImportBatch(rows=rows.finish(), records=records.finish(), key_column=KEY_COLUMN, label_column=None,
                       warnings=[], source_format="yolo")
