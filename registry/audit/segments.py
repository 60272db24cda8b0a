"""Reading events as Arrow columns: sealed Parquet segments and the unsealed rows in the catalog."""

from __future__ import annotations

import pyarrow as pa
from sqlmodel import Session, col, select

from registry.audit.chain import FIELDS
from registry.audit.models import AuditEventRow
from registry.rows import rows_to_table

__all__ = ["EVENT_SCHEMA", "unsealed_events"]

EVENT_SCHEMA = pa.schema([pa.field("seq", pa.int64(), nullable=False),
                          *(pa.field(name, pa.string(), nullable=name in ("dataset", "snapshot"))
                            for name in FIELDS[1:])])
"""Columns of a segment, of the unsealed events and of the ``audit_log`` view (before typing ``time``)."""


def unsealed_events(session: Session, after_seq: int = 0) -> pa.Table:
    """The catalog's events with ``seq > after_seq``, in sequence order, as a table of :data:`EVENT_SCHEMA`."""
    columns = [getattr(AuditEventRow, name) for name in FIELDS]
    rows = session.execute(select(*columns).where(col(AuditEventRow.seq) > after_seq)
                           .order_by(col(AuditEventRow.seq))).all()
    return rows_to_table(rows, EVENT_SCHEMA)
