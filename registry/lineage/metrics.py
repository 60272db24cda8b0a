"""Column metrics for the ``dataQualityMetrics`` facets: null and distinct counts per column.

Null counts come with every Arrow array; distinct counts cost a pass over the column, so they are
computed only for tables of at most ``max_rows`` rows (commits must cost what they change,
design invariant 4).
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import pyarrow as pa

__all__ = ["column_metrics"]


def column_metrics(table: pa.Table, max_rows: int) -> dict[str, dict[str, Any]]:
    """``{column: {"nullCount", "distinctCount"?}}`` for ``table``."""
    import pyarrow.compute as pc  # lazy: pyarrow.compute only when a facet counts rows

    with_distinct = 0 < table.num_rows <= max_rows
    result: dict[str, dict[str, Any]] = {}
    for name in table.column_names:
        column = table.column(name)
        metrics: dict[str, Any] = {"nullCount": int(column.null_count), "count": float(len(column))}
        if with_distinct:
            # nested types have no hash kernel: they go without a distinct count
            with suppress(pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
                metrics["distinctCount"] = int(pc.count_distinct(column, mode="only_valid").as_py())
        result[name] = metrics
    return result
