"""Label Studio's JSON_MIN export: one flat item per non-cancelled annotation.

An item holds the task's data fields at top level, ``id`` (the task id), ``annotator`` (id or
email), ``annotation_id``, ``created_at``, ``updated_at``, ``lead_time`` and, per control tag, its
answer: a string (one choice, one line of text), ``{"choices": [...]}``, or a list of regions.

With ``--config`` the control tag names (and their types) come from the labeling config, so
every answer is found. Without it, answers are told from data by shape (an object or a list of
objects with a label key such as ``choices`` or ``rectanglelabels``); plain-string answers then
count as data, and a warning says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from registry.errors import InvalidInput
from registry.provenance.importers.common import ImportBatch, as_float, as_str, canonical_json, iso_utc
from registry.provenance.importers.ls_context import LSContext
from registry.provenance.importers.ls_results import annotation_value, annotator_fields
from registry.provenance.importers.resolve import label_of, resolve_votes

__all__ = ["read_min_items"]

META_FIELDS = frozenset({"id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time", "agreement"})
_VALUE_KEYS = {
    "choices": "choices", "labels": "labels", "rectanglelabels": "rectanglelabels", "polygonlabels": "polygonlabels",
    "keypointlabels": "keypointlabels", "ellipselabels": "ellipselabels", "brushlabels": "brushlabels",
    "text": "textarea", "rating": "rating", "number": "number", "datetime": "datetime", "taxonomy": "taxonomy",
    "timeserieslabels": "timeserieslabels", "hypertextlabels": "hypertextlabels",
    "paragraphlabels": "paragraphlabels", "ranker": "ranker",
}
_NO_CONFIG = ("label-studio-min export read without --config: answers were told from task data by shape, "
              "so plain-string answers (one choice, one line of text) count as data; pass --config to name them")


def _shape_type(value: Any) -> str | None:
    """The result type an answer's shape shows, or ``None`` when it looks like data."""
    regions = value if isinstance(value, list) and value and all(isinstance(v, dict) for v in value) else [value]
    for region in regions:
        if isinstance(region, dict):
            for name, kind in _VALUE_KEYS.items():
                if name in region:
                    return kind
    return None


def _as_results(name: str, kind: str, answer: Any, to_name: str | None) -> list[dict[str, Any]]:
    """An answer in the full export's ``result`` shape (one result per region)."""
    if isinstance(answer, str):
        field = {"choices": "choices", "textarea": "text"}.get(kind)
        answer = {field: [answer]} if field else answer
    regions = answer if isinstance(answer, list) and all(isinstance(v, dict) for v in answer) else [answer]
    return [{"from_name": name, "to_name": to_name, "type": kind, "value": region} for region in regions]


def _split(ctx: LSContext, item: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The item's task data and its answers as results."""
    data: dict[str, Any] = {}
    results: list[dict[str, Any]] = []
    controls = ctx.config.controls if ctx.config else {}
    targets = ctx.config.targets if ctx.config else {}
    for name, value in item.items():
        if name in META_FIELDS:
            continue
        kind = controls.get(name) if ctx.config else _shape_type(value)
        if kind is None:
            data[name] = value
        else:
            results.extend(_as_results(name, kind, value, targets.get(name)))
    return data, results


def read_min_items(ctx: LSContext, items: Iterable[Any]) -> ImportBatch:
    """Read JSON_MIN items into the batch of ``ctx`` (rows resolved per sample at the end)."""
    samples: dict[str, tuple[str, str, list[tuple[str | None, bool]]]] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidInput(f"{ctx.path}: item {index} is a {type(item).__name__}, not a JSON_MIN object")
        task_id = as_str(item.get("id"))
        if task_id is None:
            raise InvalidInput(f"{ctx.path}: item {index} has no task 'id'")
        data, results = _split(ctx, item)
        key = ctx.sample_key(task_id, data)
        if ctx.claim(key, task_id):
            samples[key] = (task_id, canonical_json(data), [])
        value, value_type = annotation_value(results, f"task {task_id}", ctx.unknown)
        own_id = as_str(item.get("annotation_id"))
        ctx.records.append(annotator_fields(item.get("annotator")) | {
            "sample_key": key, "task_id": task_id,
            "annotation_id": f"annotation:{own_id}" if own_id is not None else f"annotation:task-{task_id}:{index}",
            "source_kind": "human", "value": value, "value_type": value_type,
            "created_at": iso_utc(item.get("created_at")), "updated_at": iso_utc(item.get("updated_at")),
            "lead_time": as_float(item.get("lead_time"), f"{ctx.path}: task {task_id}: lead_time"),
            "was_cancelled": False,
        })
        samples[key][2].append((label_of(value, value_type), False))
    if ctx.config is None and samples:
        ctx.warnings.append(_NO_CONFIG)
    for key, (task_id, data_json, votes) in samples.items():
        ctx.add_row(key, task_id, data_json, resolve_votes(votes, ctx.resolve))
    return ctx.finish("label-studio-min")
