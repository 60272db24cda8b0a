"""Reading events as Arrow columns: sealed Parquet segments and the unsealed rows in the catalog."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
from sqlmodel import Session, col, select

from registry.audit.chain import FIELDS
from registry.audit.models import AuditEventRow
from registry.rows import rows_to_table
from registry.storage import ObjectInfo, ObjectStore

__all__ = ["EVENT_SCHEMA", "SEGMENT_ROW_GROUP", "unsealed_events", "write_segment"]

EVENT_SCHEMA = pa.schema([pa.field("seq", pa.int64(), nullable=False),
                          *(pa.field(name, pa.string(), nullable=name in ("dataset", "snapshot"))
                            for name in FIELDS[1:])])
"""Columns of a segment, of the unsealed events and of the ``audit_log`` view (before typing ``time``)."""


SEGMENT_ROW_GROUP = 8192
"""Rows per row group of a segment: small enough that DuckDB skips most of a segment by its statistics."""


def write_segment(store: ObjectStore, events: pa.Table) -> ObjectInfo:
    """Write events as a segment object, sorted by (actor, seq) in small row groups: a query for one
    actor's events then reads a sliver of each segment (row-group statistics), not all of it. The chain
    order is ``seq``; verify sorts by it."""
    ordered = events.sort_by([("actor", "ascending"), ("seq", "ascending")])
    # Its own small writer (the same zstd Parquet and staged put as a snapshot layer's), so the audit
    # log does not depend on the snapshots package it records.
    with store.staging_file(".parquet") as staged:
        pq.write_table(ordered, staged, compression="zstd", row_group_size=SEGMENT_ROW_GROUP)
        return store.put(staged)


def unsealed_events(session: Session, after_seq: int = 0) -> pa.Table:
    """The catalog's events with ``seq > after_seq``, in sequence order, as a table of :data:`EVENT_SCHEMA`."""
    columns = [getattr(AuditEventRow, name) for name in FIELDS]
    rows = session.execute(select(*columns).where(col(AuditEventRow.seq) > after_seq)
                           .order_by(col(AuditEventRow.seq))).all()
    return rows_to_table(rows, EVENT_SCHEMA)
