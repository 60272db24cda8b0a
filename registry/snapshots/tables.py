"""Reading commit inputs (Parquet, CSV, JSONL) and checking their keys."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from registry.errors import BreakingSchemaChange, Hint, InvalidInput
from registry.snapshots.inputs import InputLimits, check_columns, check_json_depth, check_values, first_line
from registry.snapshots.schema import compare_schemas, schema_to_json

__all__ = [
    "EXPORT_FORMATS",
    "SUPPORTED_SUFFIXES",
    "check_key_values",
    "check_upsert_types",
    "empty_key_message",
    "first_empty",
    "first_null",
    "is_parquet_path",
    "normalize",
    "null_keys_message",
    "open_parquet_input",
    "read_arrow_stream",
    "read_table_file",
    "require_key_columns",
    "write_batches_atomically",
    "write_batches_file",
    "write_batches_to",
    "write_table_atomically",
    "write_table_file",
    "write_table_to",
]

SUPPORTED_SUFFIXES = (".parquet", ".pq", ".csv", ".jsonl", ".ndjson", ".json")


def read_table_file(path: str | Path, limits: InputLimits | None = None) -> pa.Table:
    """Read a Parquet, CSV or JSON-lines file into Arrow, within ``limits`` (default: the settings').

    Raises:
        InvalidInput: the file is missing, of an unknown kind, cannot be parsed, nests deeper than
            the limit, or has a duplicate or unsupported column.
        TooLarge: it decodes to more rows or bytes than the limits allow.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    if suffix not in SUPPORTED_SUFFIXES:
        raise InvalidInput(f"{path}: unknown file kind {suffix or '(none)'}; use .parquet, .csv or .jsonl")
    limits = limits or InputLimits()
    try:
        if suffix in (".parquet", ".pq"):
            table = _read_parquet(path, limits)
        elif suffix == ".csv":
            import pyarrow.csv as pacsv  # lazy: pyarrow.csv only for CSV files

            limits.check(0, path.stat().st_size, str(path))
            table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
        else:
            import pyarrow.json as pajson  # lazy: pyarrow.json only for JSON files

            limits.check(0, path.stat().st_size, str(path))
            check_json_depth(path, limits.max_depth)
            table = pajson.read_json(path)
    except (pa.ArrowException, OSError, ValueError, TypeError, RecursionError, MemoryError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(f"{path}: cannot read as {suffix[1:]}: {first_line(exc)}") from exc
    limits.check(table.num_rows, table.nbytes, str(path))
    check_columns(table.schema, str(path), limits.max_depth)
    check_values(table, str(path))
    return table


def _read_parquet(path: Path, limits: InputLimits) -> pa.Table:
    """The file's rows, after its footer says they fit the limits (a few KB can declare millions of rows)."""
    with _checked_parquet(path, limits) as parquet:
        return parquet.read()


def _checked_parquet(path: Path, limits: InputLimits, streamed: bool = False) -> pq.ParquetFile:
    """The open Parquet file, once its footer says it fits ``limits`` and its columns can be stored.
    ``streamed``: read for a row group (or batch) at a time, each column chunk in 1 MiB pieces instead of
    whole (measured: less memory, and faster, on a 10M-row file)."""
    parquet = pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False) if streamed else pq.ParquetFile(path)
    try:
        meta = parquet.metadata
        decoded = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        limits.check(meta.num_rows, decoded, str(path))
        check_columns(parquet.schema_arrow, str(path), limits.max_depth)
    except BaseException:
        parquet.close()
        raise
    return parquet


def is_parquet_path(source: object) -> bool:
    """Whether ``source`` names a file the commit input readers take as Parquet (by its suffix)."""
    return isinstance(source, (str, Path)) and Path(source).suffix.lower() in (".parquet", ".pq")


def open_parquet_input(path: str | Path, limits: InputLimits) -> pq.ParquetFile:
    """A Parquet commit input opened for reading a row group at a time, checked as :func:`read_table_file`
    checks it before reading (the caller validates the values of each part it reads).

    Raises:
        InvalidInput: the file is missing, not Parquet, or has a duplicate or unsupported column.
        TooLarge: its footer declares more rows or bytes than the limits allow.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    try:
        return _checked_parquet(path, limits, streamed=True)
    except (pa.ArrowException, OSError, ValueError, TypeError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(f"{path}: cannot read as parquet: {first_line(exc)}") from exc


def read_arrow_stream(path: Path, limits: InputLimits | None = None, what: str = "the body") -> pa.Table:
    """The rows of an Arrow IPC stream file, batch by batch within ``limits``.

    Raises:
        InvalidInput: not an Arrow IPC stream, or a duplicate or unsupported column.
        TooLarge: more rows or decoded bytes than the limits allow.
    """
    limits = limits or InputLimits()
    batches: list[pa.RecordBatch] = []
    rows = size = 0
    try:
        with pa.OSFile(str(path)) as source:
            reader = pa.ipc.open_stream(source)
            check_columns(reader.schema, what, limits.max_depth)
            for batch in reader:
                rows, size = rows + batch.num_rows, size + batch.nbytes
                limits.check(rows, size, what)
                batches.append(batch)
            table = pa.Table.from_batches(batches, reader.schema)
    except (pa.ArrowException, OSError, ValueError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(f"{what} is not a readable Arrow IPC stream: {first_line(exc)}") from exc
    check_values(table, what)
    return table


EXPORT_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
"""File suffix -> export format."""
EXPORT_ROW_GROUP_ROWS = 1024 * 1024
"""Rows per row group of an exported Parquet file (pyarrow's default), and what an export holds at most."""


def write_table_file(table: pa.Table, path: str | Path) -> None:
    """Write ``table`` as Parquet, CSV or JSON lines, chosen by the suffix of ``path``.

    Raises:
        InvalidInput: the suffix names no supported kind.
    """
    write_batches_file(table.schema, table.to_batches(), path)


def write_batches_file(schema: pa.Schema, batches: Iterable[pa.RecordBatch], path: str | Path) -> int:
    """Write record ``batches`` as Parquet, CSV or JSON lines, chosen by the suffix of ``path``; the row count.

    Raises:
        InvalidInput: the suffix names no supported kind.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise InvalidInput(f"{path}: cannot export to {suffix or '(no suffix)'}; use .parquet, .csv or .jsonl")
    with open(path, "wb") as sink:
        return write_batches_to(schema, batches, EXPORT_FORMATS[suffix], sink)


def write_table_to(table: pa.Table, fmt: str, sink: BinaryIO) -> None:
    """Write ``table`` to an open binary ``sink`` (a file, or stdout's buffer) as ``fmt``: parquet, csv or
    jsonl. Parquet is written front to back, so ``sink`` need not be seekable (a pipe is fine)."""
    write_batches_to(table.schema, table.to_batches(), fmt, sink)


def write_batches_to(schema: pa.Schema, batches: Iterable[pa.RecordBatch], fmt: str, sink: BinaryIO) -> int:
    """Write record ``batches`` to ``sink`` as ``fmt`` (see :func:`write_table_to`) as they come, holding at
    most one Parquet row group (``EXPORT_ROW_GROUP_ROWS`` rows); the row count."""
    rows = 0
    if fmt == "parquet":
        with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
            pending: list[pa.RecordBatch] = []
            for batch in batches:
                pending.append(batch)
                rows += batch.num_rows
                if sum(b.num_rows for b in pending) >= EXPORT_ROW_GROUP_ROWS:
                    writer.write_table(pa.Table.from_batches(pending, schema), row_group_size=EXPORT_ROW_GROUP_ROWS)
                    pending = []
            if pending:
                writer.write_table(pa.Table.from_batches(pending, schema), row_group_size=EXPORT_ROW_GROUP_ROWS)
    elif fmt == "csv":
        import pyarrow.csv as pacsv  # lazy: pyarrow.csv only for CSV files

        with pacsv.CSVWriter(sink, schema) as csv_writer:
            for batch in batches:
                csv_writer.write_batch(batch)
                rows += batch.num_rows
    elif fmt == "jsonl":
        for batch in batches:
            for part in pa.Table.from_batches([batch], schema).to_batches(max_chunksize=65536):
                sink.write("".join(json.dumps(row, default=str, ensure_ascii=False) + "\n"
                                   for row in part.to_pylist()).encode())
            rows += batch.num_rows
    else:
        raise InvalidInput(f"cannot export as {fmt!r}; use parquet, csv or jsonl")
    return rows


def write_table_atomically(table: pa.Table, out: Path) -> None:
    """Write ``table`` to ``out`` by way of a partial file renamed into place, so a failed write leaves
    nothing behind.

    Raises:
        InvalidInput: the file cannot be written (no such folder, no space, no permission).
    """
    write_batches_atomically(table.schema, table.to_batches(), out)


def write_batches_atomically(schema: pa.Schema, batches: Iterable[pa.RecordBatch], out: Path) -> int:
    """:func:`write_table_atomically` for record batches as they come (memory: one batch, or one Parquet
    row group); the row count."""
    partial = out.with_name(f".{out.name}.partial{out.suffix}")
    try:
        rows = write_batches_file(schema, batches, partial)
        partial.replace(out)
    except OSError as exc:
        raise InvalidInput(f"cannot write {out}: {exc.strerror or exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return rows


def normalize(table: pa.Table) -> pa.Table:
    """One canonical in-memory form: dictionaries decoded, dates as date32, second-resolution times as
    milliseconds (as Parquet stores them), no schema metadata.

    The stored bytes are read back in this form, so hashes computed before writing equal hashes
    recomputed from the object.
    """
    check_columns(table.schema, "input")
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


def check_upsert_types(table: pa.Table, columns: list[dict[str, Any]], name: str, allow_breaking: bool) -> None:
    """Refuse an upsert whose column types would change the dataset's by more than a widening, unless
    ``allow_breaking``: upserted values are cast to the dataset's types, and casting a string column into
    an int column (or back) changes what the values mean, which the schema rules call breaking.
    Integers into a floating column pass (the cast fails on any value it cannot hold exactly), and so do
    types of one family (integers of another width, ``double`` into ``float`` as CSV always reads
    decimals, timestamps of another unit: the cast refuses a value that overflows or loses precision) and
    a column of nulls.

    Raises:
        BreakingSchemaChange: a column's type differs that way (each is named).
    """
    given = schema_to_json(table.schema)
    nulls = {c["name"] for c in given if c["type"] == "null"}
    breaking = [c for c in compare_schemas(given, columns) if c.kind == "type_changed" and c.breaking
                and c.column not in nulls and not _int_into_float(table.schema.field(c.column).type, c.after)
                and not _same_family(c.before, c.after)]
    if breaking and not allow_breaking:
        listed = "; ".join(f"{c.column!r} is {c.before} in the upsert but {c.after} in the dataset" for c in breaking)
        raise BreakingSchemaChange(f"{name}: the upsert changes column types ({listed}); cast the column, or allow "
                                   "breaking changes to convert the values to the dataset's types",
                                   hint=Hint("option", "allow_breaking"))


def _int_into_float(given: pa.DataType, target: str | None) -> bool:
    return pa.types.is_integer(given) and target in ("float", "double", "halffloat")


_FAMILIES = (
    {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"},
    {"halffloat", "float", "double"},
    {"string", "large_string"},
)


def _same_family(given: str | None, target: str | None) -> bool:
    """Both types are integers, floating point, strings, or timestamps of any unit (by their names)."""
    if given is None or target is None:
        return False
    if given.startswith("timestamp[") and target.startswith("timestamp["):
        return given.partition(",")[2] == target.partition(",")[2]  # the same time zone (or none)
    return any(given in family and target in family for family in _FAMILIES)


def require_key_columns(table: pa.Table, key_columns: Sequence[str], what: str) -> None:
    """Raise InvalidInput unless ``table`` has every key column."""
    missing = [c for c in key_columns if c not in table.column_names]
    if missing:
        raise InvalidInput(f"{what}: missing key column(s) {', '.join(missing)} "
                           f"(columns are: {', '.join(table.column_names) or 'none'})")


def check_key_values(table: pa.Table, key_columns: Sequence[str], what: str) -> None:
    """Validate the key values of ``table``: present, not null, not empty. Duplicates are found by
    :func:`registry.snapshots.identity.assign_ids`, by their values (distinct keys may share a hash).

    Raises:
        InvalidInput: a key column is missing, or a key is null or empty.
    """
    require_key_columns(table, key_columns, what)
    for name in key_columns:
        column = table.column(name)
        if column.null_count:
            raise InvalidInput(null_keys_message(what, name, column.null_count, first_null(column)))
        empty = first_empty(column)
        if empty is not None:
            raise InvalidInput(empty_key_message(what, name, empty))


def first_null(column: pa.ChunkedArray | pa.Array) -> int:
    """The position of the first null of a column that has one."""
    return int(pc.index(pc.is_null(column), True).as_py())


def first_empty(column: pa.ChunkedArray | pa.Array) -> int | None:
    """The position of the first empty string of a string column, else None."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return None
    empty = pc.equal(pc.utf8_length(column), 0)
    return int(pc.index(empty, True).as_py()) if pc.any(empty).as_py() else None


def null_keys_message(what: str, name: str, count: int, first: int) -> str:
    """The error for ``count`` null keys in key column ``name``, the first at 0-based position ``first``."""
    return f"{what}: key column {name!r} has {count} null value(s), first at row {first + 1}"


def empty_key_message(what: str, name: str, first: int) -> str:
    """The error for an empty key in key column ``name`` at 0-based position ``first``."""
    return f"{what}: key column {name!r} has an empty value at row {first + 1}"