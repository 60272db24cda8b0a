"""Column metrics for the ``dataQualityMetrics`` facets: null and distinct counts per column.

Null counts come with every Arrow array; distinct counts cost a pass over the column, so they are
computed only for tables of at most ``max_rows`` rows (commits must cost what they change,
design invariant 4).
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import pyarrow as pa

__all__ = ["ColumnMetrics", "column_metrics"]


class ColumnMetrics:
    """:func:`column_metrics` of a table seen a part at a time (a streamed commit): null counts add up,
    distinct counts come from each part's distinct values, kept only when the whole table (``rows``, known
    before the first part) has at most ``max_rows`` rows."""

    def __init__(self, names: list[str], rows: int, max_rows: int) -> None:
        self._with_distinct = 0 < rows <= max_rows
        self._nulls = dict.fromkeys(names, 0)
        self._count = 0
        self._distinct: dict[str, list[pa.Array] | None] = {name: [] for name in names}

    def add(self, table: pa.Table) -> ColumnMetrics:
        """Count the next part (its columns as named at construction)."""
        import pyarrow.compute as pc  # lazy: pyarrow.compute only when a facet counts rows

        self._count += table.num_rows
        for name in self._nulls:
            column = table.column(name)
            self._nulls[name] += int(column.null_count)
            seen = self._distinct[name]
            if self._with_distinct and seen is not None:
                try:
                    seen.append(pc.unique(column))
                except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
                    self._distinct[name] = None  # nested types have no hash kernel: no distinct count
        return self

    def result(self) -> dict[str, dict[str, Any]]:
        """``{column: {"nullCount", "count", "distinctCount"?}}``."""
        import pyarrow.compute as pc  # lazy: see add

        out: dict[str, dict[str, Any]] = {}
        for name, nulls in self._nulls.items():
            metrics: dict[str, Any] = {"nullCount": nulls, "count": float(self._count)}
            seen = self._distinct[name]
            if self._with_distinct and seen is not None and seen:
                with suppress(pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
                    values = pa.chunked_array(seen) if len(seen) > 1 else seen[0]
                    metrics["distinctCount"] = int(pc.count_distinct(values, mode="only_valid").as_py())
            out[name] = metrics
        return out


def column_metrics(table: pa.Table, max_rows: int) -> dict[str, dict[str, Any]]:
    """``{column: {"nullCount", "count", "distinctCount"?}}`` for ``table``."""
    return ColumnMetrics(table.column_names, table.num_rows, max_rows).add(table).result()
