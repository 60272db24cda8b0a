"""Label Studio's JSON_MIN export: one flat item per non-cancelled annotation.

An item holds the task's data fields at top level, ``id`` (the task id), ``annotator`` (id or
email), ``annotation_id``, ``created_at``, ``updated_at``, ``lead_time`` and, per control tag, its
answer: a string (one choice, one line of text), ``{"choices": [...]}``, or a list of regions.

With ``--config`` the control tag names (and their types) come from the labeling config. Without
it, a field is an answer when its shape shows one (an object or list of objects with a label key such
as ``choices`` or ``rectanglelabels``), or when it is a plain answer: a text (or list of texts) that
differs between two annotations of one task, or is missing from some items (Label Studio leaves an
empty answer out and gives nulls for a task nobody annotated; task data is always written). Plain
answers are classifications (``choices``). When no field can be told to be the answer, or more than
one plain field is, the import stops (exit 2) naming the fields and ``--config``: a dataset whose
labels are all null is never committed on a guess. An item with neither ``annotation_id`` nor
``annotator`` (a task without annotations) is a sample without records.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from registry.errors import Hint, InvalidInput
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


def _is_plain(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def derive_controls(path: object, items: list[dict[str, Any]]) -> tuple[dict[str, str], str]:
    """Without a config: ``{field: result type}`` of the answers, and a warning naming them.

    Raises:
        InvalidInput: no field is an answer, or several plain fields are (ambiguous).
    """
    shaped: dict[str, str] = {}
    seen: dict[str, int] = {}
    other: set[str] = set()  # fields with a value that is neither an answer's shape nor plain text
    per_task: dict[tuple[str, Any], set[str]] = {}
    for item in items:
        for name, value in item.items():
            if name in META_FIELDS or value is None:
                continue
            seen[name] = seen.get(name, 0) + 1
            kind = _shape_type(value)
            if kind is not None:
                shaped.setdefault(name, kind)
            elif _is_plain(value):
                per_task.setdefault((name, item.get("id")), set()).add(canonical_json(value))
            else:
                other.add(name)
    plain = {name for name in seen if name not in shaped and name not in other}
    varying = {name for (name, _task), values in per_task.items() if len(values) > 1}
    missing = {name for name in plain if seen[name] < len(items)}
    answers = sorted((varying | missing) & plain)
    if len(answers) > 1:
        raise InvalidInput(f"{path}: cannot tell which field holds the label: {', '.join(answers)} all look like "
                           "answers; give the project's labeling config", hint=Hint("option", "config"))
    if not answers and not shaped:
        raise InvalidInput(f"{path}: cannot tell which field holds the label (fields: "
                           f"{', '.join(sorted(seen)) or 'none'}); give the project's labeling config",
                           hint=Hint("option", "config"))
    controls = {**shaped, **{name: "choices" for name in answers}}
    named = ", ".join(f"{name} ({kind})" for name, kind in sorted(controls.items()))
    return controls, f"no --config: answers told from the data: {named}"


def _split(controls: dict[str, str], targets: dict[str, str], item: dict[str, Any]
           ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The item's task data and its answers as results."""
    data: dict[str, Any] = {}
    results: list[dict[str, Any]] = []
    for name, value in item.items():
        if name in META_FIELDS:
            continue
        kind = controls.get(name)
        if kind is None:
            data[name] = value
        elif value is not None:
            results.extend(_as_results(name, kind, value, targets.get(name)))
    return data, results


def read_min_items(ctx: LSContext, items: Iterable[Any], source_format: str = "label-studio-min",
                   what: str = "item") -> ImportBatch:
    """Read JSON_MIN items (or CSV rows in the same shape) into the batch of ``ctx``."""
    listed = list(items)
    for index, item in enumerate(listed):
        if not isinstance(item, dict):
            raise InvalidInput(f"{ctx.path}: {what} {index + 1} is a {type(item).__name__}, not a JSON_MIN object")
        if as_str(item.get("id")) is None:
            raise InvalidInput(f"{ctx.path}: {what} {index + 1} has no task 'id'")
    if ctx.config is not None:
        controls, targets = ctx.config.controls, ctx.config.targets
    else:
        controls, note = derive_controls(ctx.path, listed)
        targets = {}
        ctx.warnings.append(note)
    samples: dict[str, tuple[str, str, list[tuple[str | None, bool]]]] = {}
    for index, item in enumerate(listed):
        task_id = as_str(item.get("id"))
        assert task_id is not None
        data, results = _split(controls, targets, item)
        key = ctx.sample_key(task_id, data)
        if ctx.claim(key, task_id):
            samples[key] = (task_id, canonical_json(data), [])
        if item.get("annotation_id") is None and item.get("annotator") is None:
            continue  # a task nobody annotated: a sample, no labeling act
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
    for key, (task_id, data_json, votes) in samples.items():
        ctx.add_row(key, task_id, data_json, resolve_votes(votes, ctx.resolve))
    return ctx.finish(source_format)
