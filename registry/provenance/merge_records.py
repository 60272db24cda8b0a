"""Annotation records at a merge: the union of both sides' acts, who set each side of a label
conflict, and resolving label conflicts from the acts (``--prefer``).

A conflict on a label column is attributed from each side's records of that sample: the newest act
whose value is that side's label (annotator, time, guideline version). Columns no record speaks
for are left unattributed.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlmodel import Session

from registry.context import Context
from registry.errors import Hint, InvalidInput
from registry.models import SnapshotRow
from registry.provenance.store import RecordDelta, diff_records, records_at
from registry.snapshots.merge import ROW, Conflict, display, sample_key

__all__ = ["PREFERENCES", "attribute", "prefer", "records_of", "union_delta"]

PREFERENCES = ("ground-truth", "reviewer", "majority")
_REJECTED = {"rejected"}

Acts = dict[str, list[dict[str, Any]]]
"""Annotation records of some samples, by sample key."""


def records_of(ctx: Context, session: Session, snapshot: SnapshotRow) -> pa.Table:
    """The full record set of ``snapshot``."""
    return records_at(ctx, session, snapshot)


def union_delta(ours: pa.Table, theirs: pa.Table) -> RecordDelta | None:
    """The records object a merge snapshot stores on top of ``ours``: every act of ``theirs`` whose
    annotation id ``ours`` lacks (the union, deduplicated by annotation id; ours wins a shared id)."""
    if not theirs.num_rows:
        return None
    new = theirs.filter(pc.invert(pc.is_in(theirs.column("annotation_id"), ours.column("annotation_id"))))
    if not new.num_rows:
        return None
    return diff_records(ours, new, replace=False)


def _acts(records: pa.Table, conflicts: list[Conflict]) -> Acts:
    wanted = sorted({sample_key(c.key) for c in conflicts if c.column != ROW})
    by_sample: Acts = defaultdict(list)
    if not wanted or not records.num_rows:
        return by_sample
    for row in records.filter(pc.is_in(records.column("sample_key"), pa.array(wanted, pa.string()))).to_pylist():
        by_sample[row["sample_key"]].append(row)
    return by_sample


def _newest_setting(acts: list[dict[str, Any]], value: Any) -> dict[str, Any] | None:
    text = display(value)
    matching = [a for a in acts if a["value"] == text]
    return max(matching, key=lambda a: a["updated_at"] or a["created_at"] or "", default=None)


def attribute(conflicts: list[Conflict], ours: pa.Table, theirs: pa.Table) -> tuple[Acts, Acts]:
    """Fill ``ours_by`` / ``theirs_by`` of label conflicts; returns both sides' acts by sample."""
    acts_ours, acts_theirs = _acts(ours, conflicts), _acts(theirs, conflicts)
    for conflict in conflicts:
        if conflict.column == ROW:
            continue
        key = sample_key(conflict.key)
        for side, acts, value in (("ours", acts_ours, conflict.ours), ("theirs", acts_theirs, conflict.theirs)):
            act = _newest_setting(acts.get(key, []), value)
            if act is not None:
                setattr(conflict, f"{side}_by", {
                    "annotator": act["annotator_id"] or act["annotator_email"] or act["annotator_name"],
                    "labeled_at": act["updated_at"] or act["created_at"], "guideline": act["guideline_version"],
                    "annotation_id": act["annotation_id"]})
    return acts_ours, acts_theirs


def _votes(acts: list[dict[str, Any]], value: Any, how: str) -> int:
    text = display(value)
    if how == "ground-truth":
        return sum(1 for a in acts if a["value"] == text and a["ground_truth"])
    if how == "reviewer":
        return sum(1 for a in acts if a["value"] == text and a["reviewer"] and a["review_state"] not in _REJECTED)
    latest: dict[str, dict[str, Any]] = {}  # majority: each annotator's newest act counts once
    for act in sorted(acts, key=lambda a: a["updated_at"] or a["created_at"] or ""):
        if not act["was_cancelled"]:
            latest[act["annotator_id"] or act["annotation_id"]] = act
    return sum(1 for a in latest.values() if a["value"] == text)


def prefer(conflicts: list[Conflict], how: str, acts_ours: Acts, acts_theirs: Acts) -> int:
    """Resolve unresolved label conflicts from both sides' acts (deduplicated by annotation id):
    ``ground-truth`` (the side a ground-truth act set wins), ``reviewer`` (the side a reviewed act
    set wins), ``majority`` (the side more annotators chose wins). Ties stay conflicts. Returns how
    many were resolved.

    Raises:
        InvalidInput: an unknown preference.
    """
    if how not in PREFERENCES:
        raise InvalidInput(f"unknown preference {how!r}; use one of {', '.join(PREFERENCES)}",
                           hint=Hint("value", "prefer", ", ".join(PREFERENCES)))
    resolved = 0
    for conflict in conflicts:
        if conflict.take is not None or conflict.column == ROW:
            continue
        key = sample_key(conflict.key)
        union = {a["annotation_id"]: a for a in [*acts_ours.get(key, []), *acts_theirs.get(key, [])]}
        acts = list(union.values())
        ours, theirs = _votes(acts, conflict.ours, how), _votes(acts, conflict.theirs, how)
        if ours != theirs and (how == "majority" or min(ours, theirs) == 0):
            conflict.resolve("ours" if ours > theirs else "theirs", f"prefer {how}")
            resolved += 1
    return resolved
