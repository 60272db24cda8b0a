"""Exporting a snapshot in training formats: COCO, YOLO and a Hugging Face dataset folder.

- ``coco``: one COCO detection JSON file, from rows shaped as the COCO importer makes them
  (``image_id``, ``file_name``, ``width``, ``height``, ``boxes``); ``registry import coco`` reads it
  back into the same rows.
- ``yolo``: a folder with ``labels/<image stem>.txt`` (one ``class x_center y_center width height``
  line per box, normalised by the image size) and ``data.yaml`` naming the classes in id order, from
  the same rows (every image needs its width and height).
- ``hf``: ``datasets.Dataset.save_to_disk`` of any snapshot (needs the ``[hf]`` extra);
  ``datasets.load_from_disk`` reads it back.

Every object is verified before its bytes are read, and every output is written next to its target
and renamed into place, so a failed export leaves nothing behind.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from registry.arrow_setup import unhide_pandas
from registry.context import Context
from registry.errors import AlreadyExists, Hint, InvalidInput
from registry.refs import Ref
from registry.snapshots.plan import ScanPlan, build_plan, read_task
from registry.training.admission import VerifiedObjects, local_objects

__all__ = ["FORMATS", "ExportResult", "export_training"]

FORMATS = ("coco", "yolo", "hf")
_DETECTION_COLUMNS = ("image_id", "file_name", "width", "height", "boxes")


def _verified_rows(ctx: Context, plan: ScanPlan) -> pa.Table:
    objects = VerifiedObjects(local_objects(ctx, plan))
    parts = [read_task(objects.path(task.object), task) for task in plan.tasks]
    return pa.concat_tables(parts) if parts else plan.schema.empty_table()


def _detections(ref: Ref | str, table: pa.Table, fmt: str) -> list[dict[str, Any]]:
    missing = [c for c in _DETECTION_COLUMNS if c not in table.column_names]
    if missing:
        raise InvalidInput(f"{ref} has no {', '.join(missing)} column(s); {fmt} needs rows with image_id, file_name, "
                           "width, height and boxes, as a COCO import makes them", hint=Hint("command", "import coco"))
    rows: list[dict[str, Any]] = table.select(list(_DETECTION_COLUMNS)).to_pylist()
    return sorted(rows, key=lambda r: (_as_id(r["image_id"]), str(r["image_id"])))


def _as_id(value: Any) -> Any:
    """A COCO id as an int when it is one (COCO files use integers), else as written."""
    text = str(value)
    return int(text) if text.lstrip("-").isdigit() else text


def _categories(rows: list[dict[str, Any]]) -> dict[int, str]:
    found: dict[int, str] = {}
    for row in rows:
        for box in row["boxes"] or []:
            if box["category_id"] is None:
                raise InvalidInput(f"image {row['image_id']}: a box has no category_id")
            found.setdefault(int(box["category_id"]), str(box["category"]))
    return dict(sorted(found.items()))


def _coco(rows: list[dict[str, Any]]) -> dict[str, Any]:
    images, annotations = [], []
    for row in rows:
        images.append({"id": _as_id(row["image_id"]), "file_name": row["file_name"], "width": row["width"],
                       "height": row["height"]})
        for number, box in enumerate(row["boxes"] or []):
            ann_id = box["annotation_id"] if box["annotation_id"] is not None else f"{row['image_id']}-{number}"
            annotation: dict[str, Any] = {"id": _as_id(ann_id), "image_id": _as_id(row["image_id"]),
                                          "category_id": box["category_id"], "iscrowd": int(bool(box["iscrowd"]))}
            if box["bbox"] is not None:
                annotation["bbox"] = box["bbox"]
            if box["area"] is not None:
                annotation["area"] = box["area"]
            annotations.append(annotation)
    categories = [{"id": cid, "name": name} for cid, name in _categories(rows).items()]
    return {"images": images, "annotations": annotations, "categories": categories}


def _yolo_lines(row: dict[str, Any], classes: dict[int, int]) -> list[str]:
    width, height = row["width"], row["height"]
    if not width or not height:
        raise InvalidInput(f"image {row['image_id']}: yolo needs the image's width and height")
    lines = []
    for box in row["boxes"] or []:
        if box["bbox"] is None:
            continue
        x, y, w, h = box["bbox"]
        lines.append(f"{classes[int(box['category_id'])]} {(x + w / 2) / width:.6f} {(y + h / 2) / height:.6f} "
                     f"{w / width:.6f} {h / height:.6f}")
    return lines


def _write_yolo(rows: list[dict[str, Any]], folder: Path) -> int:
    categories = _categories(rows)
    classes = {cid: n for n, cid in enumerate(categories)}
    (folder / "labels").mkdir(parents=True)
    stems: set[str] = set()
    for row in rows:
        stem = Path(str(row["file_name"] or row["image_id"])).stem
        if stem in stems:
            raise InvalidInput(f"two images are named {stem!r}; yolo label files are named by image file stem")
        stems.add(stem)
        lines = _yolo_lines(row, classes)
        (folder / "labels" / f"{stem}.txt").write_text("".join(line + "\n" for line in lines))
    names = {n: categories[cid] for cid, n in classes.items()}
    (folder / "data.yaml").write_text(yaml.safe_dump({"path": ".", "train": "images", "val": "images",
                                                      "names": names, "category_ids": list(categories)},
                                                     sort_keys=False))
    return len(rows)


class ExportResult(dict[str, Any]):
    """What was written: ``ref``, ``snapshot_id``, ``format``, ``out``, ``rows``."""


def export_training(ctx: Context, ref: Ref | str, out: str | Path, fmt: str) -> ExportResult:
    """Export ``ref`` to ``out`` in ``fmt`` (``coco``: a JSON file; ``yolo`` and ``hf``: a new folder).

    Raises:
        InvalidInput: an unknown format, or rows that do not fit it (the message says what is missing).
        AlreadyExists: ``out`` exists.
        NotFound: no such dataset or ref.
        VerifyFailed: an object's bytes do not hash to its name.
    """
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    out = Path(out)
    if out.exists():
        raise AlreadyExists(f"{out} exists; export writes a new file or folder")
    plan = build_plan(ctx, ref)
    table = _verified_rows(ctx, plan)
    partial = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        if fmt == "coco":
            rows = _detections(ref, table, fmt)
            partial.write_text(json.dumps(_coco(rows), ensure_ascii=False))
            count = len(rows)
        elif fmt == "yolo":
            count = _write_yolo(_detections(ref, table, fmt), partial)
        else:
            unhide_pandas()  # `datasets` is built on pandas, which the registry command hides from pyarrow
            from registry.training.hf import (
                to_arrow_dataset,  # lazy: the hf extra (datasets) loads only for this format
            )

            to_arrow_dataset(table, plan).save_to_disk(str(partial))
            count = table.num_rows
        partial.rename(out)
    except OSError as exc:
        raise InvalidInput(f"cannot write {out}: {exc.strerror or exc}") from exc
    finally:
        if partial.is_dir():
            shutil.rmtree(partial, ignore_errors=True)
        else:
            partial.unlink(missing_ok=True)
    return ExportResult(ref=str(ref), snapshot_id=plan.snapshot_id, format=fmt, out=str(out), rows=count)
