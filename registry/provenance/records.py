"""The annotation record: one labeling act, as importers produce it and snapshots store it.

Records are stored per snapshot as a Parquet object holding only what that snapshot changed
(records new or updated since the parent, keyed by ``annotation_id``, and tombstones of removed
ones, ``change = 'removed'``); a snapshot's full set is its ancestors' changes applied in order.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = ["RECORD_FIELDS", "RECORD_SCHEMA", "empty_records"]

RECORD_SCHEMA = pa.schema([
    pa.field("sample_key", pa.string(), nullable=False),
    pa.field("annotation_id", pa.string(), nullable=False),
    pa.field("annotator_id", pa.string()),
    pa.field("annotator_email", pa.string()),
    pa.field("annotator_name", pa.string()),
    pa.field("source_kind", pa.string(), nullable=False),  # "human" or "model"
    pa.field("model_version", pa.string()),
    pa.field("score", pa.float64()),
    pa.field("value", pa.string()),  # the label, or canonical JSON of a structured value (boxes, text, ...)
    pa.field("value_type", pa.string()),  # the tool's result type: choices, rectanglelabels, bbox, ...
    pa.field("created_at", pa.string()),  # ISO-8601 as the source gave it (UTC where known)
    pa.field("updated_at", pa.string()),
    pa.field("lead_time", pa.float64()),  # seconds
    pa.field("was_cancelled", pa.bool_()),
    pa.field("ground_truth", pa.bool_()),
    pa.field("reviewer", pa.string()),
    pa.field("review_state", pa.string()),
    pa.field("tool", pa.string()),
    pa.field("tool_version", pa.string()),
    pa.field("project_id", pa.string()),
    pa.field("task_id", pa.string()),
    pa.field("guideline_version", pa.string()),
    pa.field("config_sha256", pa.string()),
    pa.field("import_batch", pa.string()),
])
"""Columns of an annotation record (null where the source does not say)."""

RECORD_FIELDS = tuple(RECORD_SCHEMA.names)


def empty_records() -> pa.Table:
    return RECORD_SCHEMA.empty_table()
