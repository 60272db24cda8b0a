"""Reading commit inputs (Parquet, CSV, JSONL) and checking their keys."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from registry.errors import InvalidInput

__all__ = [
    "EXPORT_FORMATS",
    "SUPPORTED_SUFFIXES",
    "check_keys",
    "normalize",
    "read_table_file",
    "require_key_columns",
    "write_table_file",
    "write_table_to",
]

SUPPORTED_SUFFIXES = (".parquet", ".pq", ".csv", ".jsonl", ".ndjson", ".json")


def read_table_file(path: str | Path) -> pa.Table:
    """Read a Parquet, CSV or JSON-lines file into Arrow.

    Raises:
        InvalidInput: the file is missing, of an unknown kind, or cannot be parsed.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    if suffix not in SUPPORTED_SUFFIXES:
        raise InvalidInput(f"{path}: unknown file kind {suffix or '(none)'}; use .parquet, .csv or .jsonl")
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if suffix == ".csv":
            import pyarrow.csv as pacsv

            return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
        import pyarrow.json as pajson

        return pajson.read_json(path)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInput(f"{path}: cannot read as {suffix[1:]}: {first_line}") from exc


EXPORT_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
"""File suffix -> export format."""


def write_table_file(table: pa.Table, path: str | Path) -> None:
    """Write ``table`` as Parquet, CSV or JSON lines, chosen by the suffix of ``path``.

    Raises:
        InvalidInput: the suffix names no supported kind.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise InvalidInput(f"{path}: cannot export to {suffix or '(no suffix)'}; use .parquet, .csv or .jsonl")
    with open(path, "wb") as sink:
        write_table_to(table, EXPORT_FORMATS[suffix], sink)


def write_table_to(table: pa.Table, fmt: str, sink: BinaryIO) -> None:
    """Write ``table`` to an open binary ``sink`` (a file, or stdout's buffer) as ``fmt``: parquet, csv or
    jsonl. Parquet is written front to back, so ``sink`` need not be seekable (a pipe is fine)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, sink, compression="zstd")
    elif fmt == "csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, sink)
    elif fmt == "jsonl":
        import json

        for batch in table.to_batches(max_chunksize=65536):
            sink.write("".join(json.dumps(row, default=str, ensure_ascii=False) + "\n"
                               for row in batch.to_pylist()).encode())
    else:
        raise InvalidInput(f"cannot export as {fmt!r}; use parquet, csv or jsonl")


def write_table_atomically(table: pa.Table, out: Path) -> None:
    """Write ``table`` to ``out`` by way of a partial file renamed into place, so a failed write leaves
    nothing behind.

    Raises:
        InvalidInput: the file cannot be written (no such folder, no space, no permission).
    """
    partial = out.with_name(f".{out.name}.partial{out.suffix}")
    try:
        write_table_file(table, partial)
        partial.replace(out)
    except OSError as exc:
        raise InvalidInput(f"cannot write {out}: {exc.strerror or exc}") from exc
    finally:
        partial.unlink(missing_ok=True)


def normalize(table: pa.Table) -> pa.Table:
    """One canonical in-memory form: dictionaries decoded, dates as date32, second-resolution times as
    milliseconds (as Parquet stores them), no schema metadata.

    The stored bytes are read back in this form, so hashes computed before writing equal hashes
    recomputed from the object.
    """
    fields = []
    for field in table.schema:
        t = field.type
        if pa.types.is_dictionary(t):
            t = t.value_type
        if pa.types.is_date64(t):
            t = pa.date32()
        if pa.types.is_timestamp(t) and t.unit == "s":  # Parquet has no seconds unit: it reads back as ms
            t = pa.timestamp("ms", t.tz)
        if pa.types.is_time32(t) and t.unit == "s":
            t = pa.time32("ms")
        fields.append(pa.field(field.name, t, nullable=True))
    schema = pa.schema(fields)
    if schema != table.schema:
        table = table.cast(schema)
    return table.replace_schema_metadata(None)


def require_key_columns(table: pa.Table, key_columns: Sequence[str], what: str) -> None:
    """Raise InvalidInput unless ``table`` has every key column."""
    missing = [c for c in key_columns if c not in table.column_names]
    if missing:
        raise InvalidInput(f"{what}: missing key column(s) {', '.join(missing)} "
                           f"(columns are: {', '.join(table.column_names) or 'none'})")


def check_keys(table: pa.Table, key_columns: Sequence[str], kh: np.ndarray, what: str) -> np.ndarray:
    """Validate the key values of ``table``; return the order that sorts it by key hash.

    Raises:
        InvalidInput: a key column is missing, or a key is null, empty or duplicated.
    """
    require_key_columns(table, key_columns, what)
    for name in key_columns:
        column = table.column(name)
        if column.null_count:
            first = pc.index(pc.is_null(column), True).as_py()
            raise InvalidInput(f"{what}: key column {name!r} has {column.null_count} null value(s), "
                               f"first at row {first + 1}")
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            empty = pc.equal(pc.utf8_length(column), 0)
            if pc.any(empty).as_py():
                first = pc.index(empty, True).as_py()
                raise InvalidInput(f"{what}: key column {name!r} has an empty value at row {first + 1}")
    order = np.argsort(kh, kind="stable")
    sorted_kh = kh[order]
    dup = np.flatnonzero(sorted_kh[1:] == sorted_kh[:-1])
    if dup.size:
        rows = order[dup[:5]]
        keys = table.select(list(key_columns)).take(pa.array(rows)).to_pylist()
        shown = ", ".join(str(tuple(k.values())) if len(k) > 1 else repr(next(iter(k.values()))) for k in keys)
        raise InvalidInput(f"{what}: {dup.size} duplicate key(s), e.g. {shown}; keys must be unique")
    return order
