"""Resolving one label per sample from its annotation records.

A record's *label* is its value when it is a classification (``value_type`` ``choices`` or
``label``, or no type at all, as table imports give), or the ``choices`` part of a multi-result
value (see :func:`label_of`); boxes, text and other structures carry no label.

Strategies (``--resolve``):

- ``gt-majority`` (default): the labels of non-cancelled ground-truth human annotations win
  (their majority); without any, the majority of all non-cancelled human annotations.
- ``majority``: the majority of non-cancelled human annotations, ground truth ignored.

A tie for the top count leaves the label null and marks the sample ``disputed``. Predictions
and cancelled annotations never vote. ``agreement`` is the share of the sample's non-cancelled
human annotations whose label equals the resolved label (on a tie, the tied top count); it is
null when none of them carries a label.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa

from registry.errors import Hint, InvalidInput

__all__ = [
    "RESOLUTION_SCHEMA",
    "RESOLVE_STRATEGIES",
    "Resolution",
    "check_strategy",
    "label_of",
    "labels_from_choices",
    "resolve_labels",
    "resolve_votes",
]

RESOLVE_STRATEGIES = ("gt-majority", "majority")
PLAIN_LABEL_TYPES = frozenset({"choices", "label"})

RESOLUTION_SCHEMA = pa.schema([
    pa.field("sample_key", pa.string()),
    pa.field("label", pa.string()),
    pa.field("annotations", pa.int64()),
    pa.field("agreement", pa.float64()),
    pa.field("disputed", pa.bool_()),
])


@dataclass(frozen=True)
class Resolution:
    """The resolved label of one sample and how far its annotators agree."""

    label: str | None
    annotations: int
    agreement: float | None
    disputed: bool


def check_strategy(resolve: str) -> None:
    """Raise InvalidInput unless ``resolve`` names a known strategy."""
    if resolve not in RESOLVE_STRATEGIES:
        raise InvalidInput(f"unknown resolve strategy {resolve!r}; use one of {', '.join(RESOLVE_STRATEGIES)}",
                           hint=Hint("value", "resolve", ", ".join(RESOLVE_STRATEGIES)))


def labels_from_choices(parts: list[tuple[str, list[str]]]) -> str | None:
    """One label from the ``(from_name, choices)`` of an annotation's classification results.

    One classification: its choices, sorted and joined with ``|``. Several (several ``Choices``
    tags): ``from_name=choices`` pairs sorted by name, joined with ``;``.
    """
    rendered = [(name, "|".join(sorted(str(c) for c in choices))) for name, choices in parts if choices]
    if not rendered:
        return None
    if len(rendered) == 1:
        return rendered[0][1]
    return ";".join(f"{name}={text}" for name, text in sorted(rendered))


def label_of(value: str | None, value_type: str | None) -> str | None:
    """The classification label a record carries, or ``None``."""
    if value is None or value == "":
        return None
    if value_type is None or value_type in PLAIN_LABEL_TYPES:
        return value
    if "choices" not in value_type.split("+"):
        return None
    try:
        results = json.loads(value)
    except ValueError:
        return None
    if not isinstance(results, list):
        return None
    parts = [(str(r.get("from_name")), list(r["value"].get("choices", [])))
             for r in results
             if isinstance(r, dict) and r.get("type") == "choices" and isinstance(r.get("value"), dict)]
    return labels_from_choices(parts)


def _winner(counts: dict[str, int]) -> tuple[str | None, bool]:
    """The single most frequent label, or ``(None, True)`` on a tie, ``(None, False)`` when empty."""
    if len(counts) <= 1:
        return next(iter(counts), None), False
    top = max(counts.values())
    leaders = [label for label, count in counts.items() if count == top]
    return (leaders[0], False) if len(leaders) == 1 else (None, True)


def resolve_votes(votes: Iterable[tuple[str | None, bool]], resolve: str = "gt-majority") -> Resolution:
    """Resolve the ``(label, ground_truth)`` of a sample's non-cancelled human annotations."""
    votes = votes if isinstance(votes, list) else list(votes)
    counts: dict[str, int] = {}
    gt_counts: dict[str, int] = {}
    for label, gt in votes:
        if label is not None:
            counts[label] = counts.get(label, 0) + 1
            if gt:
                gt_counts[label] = gt_counts.get(label, 0) + 1
    if resolve == "gt-majority" and gt_counts:
        label, disputed = _winner(gt_counts)
    else:
        label, disputed = _winner(counts)
    if not counts:
        agreement = None
    else:
        agreeing = counts[label] if label is not None else max(counts.values())
        agreement = agreeing / len(votes)
    return Resolution(label, len(votes), agreement, disputed)


def resolve_labels(records: pa.Table, resolve: str = "gt-majority") -> pa.Table:
    """Per ``sample_key`` (in order of first appearance): label, annotations, agreement, disputed.

    Every sample with a record gets a row, even one with only predictions or cancelled work.

    Raises:
        InvalidInput: unknown strategy, or ``records`` lacks a record column.
    """
    check_strategy(resolve)
    needed = ("sample_key", "source_kind", "was_cancelled", "ground_truth", "value", "value_type")
    missing = [name for name in needed if name not in records.column_names]
    if missing:
        raise InvalidInput(f"records lack column(s) {', '.join(missing)}")
    columns = {name: records.column(name).to_pylist() for name in needed}
    votes: dict[str, list[tuple[str | None, bool]]] = {}
    for key, kind, cancelled, gt, value, value_type in zip(*columns.values(), strict=True):
        bucket = votes.setdefault(key, [])
        if kind == "human" and not cancelled:
            bucket.append((label_of(value, value_type), bool(gt)))
    resolved = [resolve_votes(v, resolve) for v in votes.values()]
    return pa.table({
        "sample_key": list(votes),
        "label": [r.label for r in resolved],
        "annotations": [r.annotations for r in resolved],
        "agreement": [r.agreement for r in resolved],
        "disputed": [r.disputed for r in resolved],
    }, schema=RESOLUTION_SCHEMA)
