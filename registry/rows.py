"""Database result rows to Arrow, column by column, keeping the schema when there are no rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

__all__ = ["rows_to_table"]


def rows_to_table(rows: Sequence[Sequence[Any]], schema: pa.Schema) -> pa.Table:
    """A table of ``schema`` from row tuples in the schema's column order."""
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
    return pa.table([pa.array(values, type=field.type) for values, field in zip(columns, schema, strict=True)],
                    schema=schema)
