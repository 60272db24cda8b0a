"""The annotation record: one labeling act, as importers produce it and snapshots store it.

Records are stored per snapshot as a Parquet object holding only what that snapshot changed
(records new or updated since the parent, keyed by ``annotation_id``, and tombstones of removed
ones, ``change = 'removed'``); a snapshot's full set is its ancestors' changes applied in order.

Columns are only ever added, nullable: records objects written before a column existed lack it, and
every reader goes through :func:`unify_records` (``registry.provenance.store`` does), which gives them
the column as nulls.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = ["RECORD_FIELDS", "RECORD_SCHEMA", "empty_records", "unify_records"]

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
    pa.field("extra", pa.string()),  # canonical JSON of what the source said that no column holds (or null)
])
"""Columns of an annotation record (null where the source does not say)."""

RECORD_FIELDS = tuple(RECORD_SCHEMA.names)


def empty_records() -> pa.Table:
    return RECORD_SCHEMA.empty_table()


def unify_records(table: pa.Table, schema: pa.Schema = RECORD_SCHEMA) -> pa.Table:
    """``table`` (records as some version of ``schema`` wrote them) with ``schema``'s columns in its order:
    a nullable column it lacks (added to the schema later) is all nulls; columns ``schema`` lacks are kept last."""
    if table.schema.names[:len(schema)] == schema.names:
        return table
    columns, fields = [], []
    for field in schema:
        if field.name in table.column_names:
            columns.append(table.column(field.name))
            fields.append(table.schema.field(field.name))
        elif field.nullable:
            columns.append(pa.nulls(table.num_rows, field.type))
            fields.append(field)
    rest = [f for f in table.schema if f.name not in schema.names]
    return pa.Table.from_arrays(columns + [table.column(f.name) for f in rest], schema=pa.schema(fields + rest))
