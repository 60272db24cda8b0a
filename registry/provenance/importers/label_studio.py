"""Label Studio's JSON export (``label-studio``), streamed task by task; JSON_MIN, CSV and TSV are detected
and delegated.

A file whose first item has ``data``, ``annotations`` or ``predictions`` is the full export; one
whose first item has ``annotation_id`` or ``annotator`` (and no ``data``) is JSON_MIN, read by
:mod:`.label_studio_min` and reported as ``source_format = "label-studio-min"``; a file whose first
line is a header with ``annotation_id`` is the CSV/TSV export (:mod:`.label_studio_csv`,
``label-studio-csv``).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from registry.errors import InvalidInput
from registry.provenance.importers.common import ImportBatch, as_bool, as_float, as_str, canonical_json, iso_utc
from registry.provenance.importers.jsonio import (
    describe_json_shape,
    describe_non_json,
    first_byte,
    iter_array,
    top_level_keys,
)
from registry.provenance.importers.label_studio_csv import csv_items, looks_like_csv
from registry.provenance.importers.label_studio_min import read_min_items
from registry.provenance.importers.ls_context import LSContext
from registry.provenance.importers.ls_results import annotation_value, person_fields, read_config, review_fields
from registry.provenance.importers.resolve import check_strategy, label_of, resolve_votes

__all__ = ["read_label_studio"]

_EXPECTED = "expected a Label Studio JSON export (a list of tasks with 'data')"
TASK_FIELDS = frozenset({
    "id", "data", "annotations", "completions", "predictions", "drafts", "meta", "created_at", "updated_at",
    "inner_id", "total_annotations", "cancelled_annotations", "total_predictions", "comment_count",
    "unresolved_comment_count", "last_comment_updated_at", "project", "updated_by", "comment_authors",
    "file_upload", "is_labeled", "overlap", "allow_skip", "annotators", "agreement", "storage_filename",
    "draft_exists", "precomputed_agreement", "reviews_accepted", "reviews_rejected", "ground_truth",
})
"""Task fields Label Studio's exports carry; others are kept raw in the ``extra`` of the task's records
(with one warning per field name). A reader of another task shape (the REST API's) passes its own list
as ``task_fields``."""
ANNOTATION_FIELDS = frozenset({
    "id", "completed_by", "result", "was_cancelled", "ground_truth", "created_at", "updated_at",
    "draft_created_at", "lead_time", "prediction", "result_count", "unique_id", "import_id", "last_action",
    "bulk_created", "task", "project", "updated_by", "parent_prediction", "parent_annotation",
    "last_created_by", "reviews", "review_result", "created_username", "created_ago", "history", "state",
})
"""Annotation fields the importer knows; others are kept raw in the annotation's record (``extra``)."""


def _unknown(item: dict[str, Any], known: frozenset[str]) -> dict[str, Any]:
    return {} if item.keys() <= known else {k: v for k, v in item.items() if k not in known}


def _extra(task: dict[str, Any], act: dict[str, Any] | None = None) -> str | None:
    """A record's ``extra``: canonical JSON of the unknown fields of its task and of its annotation."""
    parts = {name: fields for name, fields in (("task", task), ("annotation", act)) if fields}
    return canonical_json(parts) if parts else None


def _list_field(task: dict[str, Any], name: str, where: str) -> list[Any]:
    value = task.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InvalidInput(f"{where}: {name!r} must be a list of objects")
    return value


def _predictions(ctx: LSContext, task: dict[str, Any], annotations: list[dict[str, Any]],
                 where: str) -> list[dict[str, Any]]:
    """The task's prediction objects. Label Studio 1.x lists only their ids under ``predictions`` and
    puts each full prediction in the ``prediction`` field of the annotations made from it."""
    listed = task.get("predictions")
    if listed is None:
        return []
    if not isinstance(listed, list) or not all(isinstance(p, dict) or type(p) is int for p in listed):
        raise InvalidInput(f"{where}: 'predictions' must be a list of prediction objects or prediction ids")
    if all(isinstance(item, dict) for item in listed):
        return listed
    inside = {p["id"]: p for p in (a.get("prediction") for a in annotations)
              if isinstance(p, dict) and type(p.get("id")) is int}
    found = []
    for item in listed:
        if isinstance(item, dict):
            found.append(item)
        elif item in inside:
            found.append(inside[item])
        else:
            ctx.id_only_predictions += 1
    return found


def _act_id(kind: str, act: dict[str, Any], task_id: str, position: int) -> str:
    """A stable record id: the Label Studio id, else the task and the position in the task."""
    own = as_str(act.get("id"))
    return f"{kind}:{own}" if own is not None else f"{kind}:task-{task_id}:{position}"


def _flag(act: dict[str, Any], name: str, where: str) -> bool | None:
    value = act.get(name)
    return value if value is None or isinstance(value, bool) else as_bool(value, f"{where}: {name}")


def _number(act: dict[str, Any], name: str, where: str) -> float | None:
    value = act.get(name)
    return value if value is None or type(value) is float else as_float(value, f"{where}: {name}")


def _read_task(ctx: LSContext, task: Any, index: int, task_fields: frozenset[str]) -> None:
    """Append the records and the row of one exported task (fields outside ``task_fields`` kept raw)."""
    if not isinstance(task, dict):
        raise InvalidInput(f"{ctx.path}: item {index} is a {type(task).__name__}, not a task object; {_EXPECTED}")
    task_id = as_str(task.get("id"))
    if task_id is None:
        raise InvalidInput(f"{ctx.path}: item {index} has no task 'id'")
    where = f"{ctx.path}: task {task_id}"
    data = task.get("data") or {}
    if not isinstance(data, dict):
        raise InvalidInput(f"{where}: 'data' must be an object")
    key = ctx.sample_key(task_id, data)
    if not ctx.claim(key, task_id):
        raise InvalidInput(f"{where} appears twice in the export")
    project = as_str(task.get("project"))
    common = {"sample_key": key, "task_id": task_id, "project_id": project}
    votes: list[tuple[str | None, bool]] = []
    annotations = _list_field(task, "annotations" if "annotations" in task else "completions", where)
    ctx.drafts += len(task.get("drafts") or ())
    place = lambda: f"task {task_id}"  # noqa: E731  (built only for a warning)
    ctx.unknown_fields.see_all(task, task_fields, place)
    task_extra = _unknown(task, task_fields)
    for position, ann in enumerate(annotations):
        ctx.unknown_fields.see_all(ann, ANNOTATION_FIELDS, place)
        value, value_type = annotation_value(ann.get("result"), f"task {task_id}", ctx.unknown)
        cancelled, ground_truth = _flag(ann, "was_cancelled", where), _flag(ann, "ground_truth", where)
        annotator_id, email, name = person_fields(ann.get("completed_by"))
        record = {
            **common, "annotator_id": annotator_id, "annotator_email": email, "annotator_name": name,
            "annotation_id": _act_id("annotation", ann, task_id, position),
            "source_kind": "human", "value": value, "value_type": value_type,
            "created_at": iso_utc(ann.get("created_at")), "updated_at": iso_utc(ann.get("updated_at")),
            "lead_time": _number(ann, "lead_time", where), "was_cancelled": cancelled, "ground_truth": ground_truth,
            "extra": _extra(task_extra, _unknown(ann, ANNOTATION_FIELDS)),
        }
        if "reviews" in ann:
            record.update(review_fields(ann))
        elif ann.get("updated_by") is not None:
            editor = person_fields(ann["updated_by"])
            if (editor[0] or editor[1]) not in (annotator_id, email):
                record.update(reviewer=editor[0] or editor[1], review_state="updated")
        if ann.get("project") is not None:
            record["project_id"] = as_str(ann["project"])
        ctx.records.append(record)
        if not cancelled:
            votes.append((label_of(value, value_type), bool(ground_truth)))
    for position, pred in enumerate(_predictions(ctx, task, annotations, where)):
        value, value_type = annotation_value(pred.get("result"), f"task {task_id}", ctx.unknown)
        ctx.records.append({
            **common, "annotation_id": _act_id("prediction", pred, task_id, position), "source_kind": "model",
            "model_version": as_str(pred.get("model_version")), "score": _number(pred, "score", where),
            "value": value, "value_type": value_type,
            "created_at": iso_utc(pred.get("created_at")), "updated_at": iso_utc(pred.get("updated_at")),
            "project_id": as_str(pred.get("project")) or project, "extra": _extra(task_extra),
        })
    ctx.add_row(key, task_id, canonical_json(data), resolve_votes(votes, ctx.resolve))


def _wrong_root(path: Path, char: str, head: bytes) -> InvalidInput:
    if char == "{" and "JSON lines" not in describe_non_json(head):
        return InvalidInput(f"{path}: {_EXPECTED}; {describe_json_shape(keys=top_level_keys(path))}")
    return InvalidInput(f"{path}: {_EXPECTED}; {describe_non_json(head)}")


def read_label_studio(path: Path, *, key: str | None = None, guideline_version: str | None = None,
                      config: Path | None = None, resolve: str = "gt-majority", batch_id: str,
                      tool_version: str | None = None, task_fields: frozenset[str] = TASK_FIELDS) -> ImportBatch:
    """Read a Label Studio JSON (or JSON_MIN) export into rows and annotation records.

    Args:
        path: the export file.
        key: the task data field that identifies a sample (default: the task id).
        guideline_version: stored on every record (Label Studio records none).
        config: the labeling config XML, hashed onto every record and kept as ``config_text``.
        resolve: ``gt-majority`` or ``majority`` (see :mod:`.resolve`).
        batch_id: the import batch id stored on every record.
        tool_version: the Label Studio version, if known.
        task_fields: the task fields this shape of task is known to carry (default: the exports' ones,
            :data:`TASK_FIELDS`); any other field is kept raw in ``extra``, with one warning per name.

    Raises:
        InvalidInput: unknown strategy; missing, malformed or wrong-format file (with where and why);
            a task without the key field; two tasks with the same key; a bad config file.
    """
    check_strategy(resolve)
    path = Path(path)
    ctx = LSContext(path, key, resolve, batch_id, guideline_version, tool_version, read_config(config))
    char, head = first_byte(path)
    if char != "[" and looks_like_csv(head):
        return read_min_items(ctx, csv_items(path), "label-studio-csv", "row")
    if char != "[":
        raise _wrong_root(path, char, head)
    items = iter_array(path)
    first = next(items, None)
    if first is None:
        return ctx.finish("label-studio")
    if isinstance(first, dict) and not {"data", "annotations", "predictions", "completions"} & first.keys():
        if {"annotation_id", "annotator"} & first.keys() and not {"image_id", "bbox"} <= first.keys():
            return read_min_items(ctx, itertools.chain([first], items))
        raise InvalidInput(f"{path}: {_EXPECTED}; {describe_json_shape(item=first)}")
    for index, task in enumerate(itertools.chain([first], items)):
        _read_task(ctx, task, index, task_fields)
    if ctx.id_only_predictions:
        ctx.warnings.append(f"{ctx.id_only_predictions} prediction(s) exported as ids only (no annotation used "
                            "them): not imported; Label Studio's snapshot export holds them in full")
    if ctx.drafts:
        ctx.warnings.append(f"{ctx.drafts} draft(s) (unsubmitted work) not imported")
    return ctx.finish("label-studio")
