"""Resolving merge conflicts one by one (a resolutions file) or wholesale (a strategy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from registry.errors import Hint, InvalidInput
from registry.snapshots.inputs import InputLimits
from registry.snapshots.merge import ROW, Conflict
from registry.snapshots.tables import read_table_file

__all__ = ["MAX_RESOLUTIONS", "SIDES", "STRATEGIES", "apply_resolutions", "apply_strategy"]

SIDES = ("ours", "theirs")
STRATEGIES = ("fail", "ours", "theirs")
MAX_RESOLUTIONS = 1_000_000
"""Rows a resolutions file may hold (bounded before it is used)."""


def _key_text(key: dict[str, Any], keys: list[str]) -> tuple[str, ...]:
    return tuple(str(key[k]) for k in keys)


def _cast(value: Any, column: str, schema: pa.Schema) -> Any:
    try:
        return pa.array([value]).cast(schema.field(column).type)[0].as_py()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise InvalidInput(f"resolutions: value {value!r} does not fit column {column} "
                           f"({schema.field(column).type}): {exc}") from exc


def apply_resolutions(conflicts: list[Conflict], path: str | Path, keys: list[str], schema: pa.Schema,
                      limits: InputLimits | None = None) -> int:
    """Resolve conflicts from a Parquet/CSV/JSONL file of ``KEY..., column, value`` rows; ``value`` is
    ``ours``, ``theirs`` or the value to set. Returns how many were resolved.

    Raises:
        InvalidInput: unreadable file, missing columns, too many rows, a row naming no conflict, the
            same conflict twice, a value that does not fit the column, or a value for a whole row
            (row conflicts take ``ours`` or ``theirs``).
    """
    table = read_table_file(path, limits)
    missing = [c for c in (*keys, "column", "value") if c not in table.column_names]
    if missing:
        raise InvalidInput(f"resolutions {path}: missing column(s) {', '.join(missing)}; "
                           f"expected {', '.join(keys)}, column, value")
    if table.num_rows > MAX_RESOLUTIONS:
        raise InvalidInput(f"resolutions {path}: {table.num_rows:,} rows; at most {MAX_RESOLUTIONS:,}")
    by_cell = {(_key_text(c.key, keys), c.column): c for c in conflicts}
    seen: set[tuple[tuple[str, ...], str]] = set()
    for number, row in enumerate(table.select([*keys, "column", "value"]).to_pylist(), start=1):
        cell = (tuple(str(row[k]) for k in keys), str(row["column"]))
        conflict = by_cell.get(cell)
        if conflict is None:
            at = dict(zip(keys, cell[0], strict=True))
            raise InvalidInput(f"resolutions {path} row {number}: no conflict at key {at} "
                               f"column {cell[1]!r} (a dry run of the merge lists them)",
                               hint=Hint("option", "dry_run"))
        if cell in seen:
            raise InvalidInput(f"resolutions {path} row {number}: key {cell[0]} column {cell[1]!r} is resolved twice")
        seen.add(cell)
        value = row["value"]
        if value in SIDES:
            conflict.resolve(str(value), "resolutions file")
        elif conflict.column == ROW:
            raise InvalidInput(f"resolutions {path} row {number}: a deleted-vs-changed row takes 'ours' or "
                               f"'theirs', not a value")
        else:
            conflict.resolve("value", "resolutions file", _cast(value, conflict.column, schema))
    return len(seen)


def apply_strategy(conflicts: list[Conflict], strategy: str) -> int:
    """Take one side for every conflict still unresolved (``fail`` takes none). Returns how many.

    Raises:
        InvalidInput: an unknown strategy.
    """
    if strategy not in STRATEGIES:
        raise InvalidInput(f"unknown merge strategy {strategy!r}; use one of {', '.join(STRATEGIES)}",
                           hint=Hint("value", "strategy", ", ".join(STRATEGIES)))
    if strategy == "fail":
        return 0
    left = [c for c in conflicts if c.take is None]
    for conflict in left:
        conflict.resolve(strategy, f"strategy {strategy}")
    return len(left)
