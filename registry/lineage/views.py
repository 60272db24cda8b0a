"""Lineage tables for ``registry query`` (the DuckDB layer registers each returned table as a view)."""

from __future__ import annotations

import pyarrow as pa
from sqlmodel import col, select

from registry.context import Context
from registry.db import transaction
from registry.lineage.models import LineageEdgeRow

__all__ = ["EDGE_SCHEMA", "query_views"]

EDGE_SCHEMA = pa.schema([
    ("id", pa.int64()), ("kind", pa.string()),
    ("src_kind", pa.string()), ("src_namespace", pa.string()), ("src_name", pa.string()), ("src_version", pa.string()),
    ("dst_kind", pa.string()), ("dst_namespace", pa.string()), ("dst_name", pa.string()), ("dst_version", pa.string()),
    ("run_id", pa.string()), ("created_at", pa.string()),
])
"""Columns of ``lineage_edges``; empty versions, namespaces and run ids read as NULL."""


def _or_null(value: str) -> str | None:
    return value or None


def query_views(ctx: Context) -> dict[str, pa.Table]:
    """``{"lineage_edges": table}``: every edge of the lineage graph, in the order recorded."""
    with transaction(ctx.engine, readonly=True) as session:
        rows = session.exec(select(LineageEdgeRow).order_by(col(LineageEdgeRow.id))).all()
    columns: dict[str, list[object]] = {name: [] for name in EDGE_SCHEMA.names}
    for row in rows:
        for name in EDGE_SCHEMA.names:
            value = getattr(row, name)
            columns[name].append(_or_null(value) if isinstance(value, str) and name != "kind" else value)
    return {"lineage_edges": pa.table(columns, schema=EDGE_SCHEMA)}
