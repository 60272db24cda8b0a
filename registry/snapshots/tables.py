"""Reading commit inputs (Parquet, CSV, JSONL) and checking their keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from registry.errors import BreakingSchemaChange, InvalidInput, TooLarge

__all__ = [
    "MAX_NESTING",
    "SUPPORTED_SUFFIXES",
    "InputLimits",
    "check_columns",
    "check_json_depth",
    "check_keys",
    "check_upsert_types",
    "check_values",
    "first_line",
    "normalize",
    "read_arrow_stream",
    "read_table_file",
    "require_key_columns",
    "write_table_file",
]

SUPPORTED_SUFFIXES = (".parquet", ".pq", ".csv", ".jsonl", ".ndjson", ".json")
MAX_NESTING = 64
"""The deepest nesting (lists and structs in a column, arrays and objects in a JSON line) accepted."""
_BLOCK = 1 << 20
_STEP = np.zeros(256, dtype=np.int32)
_STEP[[ord("["), ord("{")]] = 1
_STEP[[ord("]"), ord("}")]] = -1
_QUOTE, _NEWLINE = ord('"'), ord("\n")
_NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(b'[]{}"\n')))
"""Every byte but brackets, quotes and newlines: dropped (in C) before the nesting is counted."""


@dataclass(frozen=True)
class InputLimits:
    """How large an input may become once decoded: checked before (Parquet metadata, JSON nesting) or
    while (Arrow stream batches) it is read, so a small compressed file cannot expand without bound."""

    max_rows: int = 100_000_000
    max_bytes: int = 32 << 30
    max_depth: int = MAX_NESTING

    @classmethod
    def from_settings(cls) -> InputLimits:
        """The limits of ``REGISTRY_MAX_INPUT_ROWS`` / ``REGISTRY_MAX_INPUT_BYTES``."""
        from registry.config import Settings

        settings = Settings()
        return cls(max_rows=settings.max_input_rows, max_bytes=settings.max_input_bytes)

    def check(self, rows: int, size: int, what: str) -> None:
        """Raises: TooLarge: more than ``max_rows`` rows or ``max_bytes`` decoded bytes."""
        if rows > self.max_rows:
            raise TooLarge(f"{what}: {rows:,} rows, more than the limit of {self.max_rows:,} "
                           "(REGISTRY_MAX_INPUT_ROWS); commit it in parts")
        if size > self.max_bytes:
            raise TooLarge(f"{what}: {size:,} bytes once decoded, more than the limit of {self.max_bytes:,} "
                           "(REGISTRY_MAX_INPUT_BYTES); commit it in parts")


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
    limits = limits or InputLimits.from_settings()
    try:
        if suffix in (".parquet", ".pq"):
            table = _read_parquet(path, limits)
        elif suffix == ".csv":
            import pyarrow.csv as pacsv

            limits.check(0, path.stat().st_size, str(path))
            table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
        else:
            import pyarrow.json as pajson

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


def check_values(table: pa.Table, what: str) -> None:
    """Refuse data that is not what its types promise (invalid UTF-8 in a string column, offsets out of
    bounds in an Arrow stream): read later, it would fail or crash far from its source.

    Raises:
        InvalidInput: the table does not validate (the first problem is named).
    """
    try:
        table.validate(full=True)
    except (pa.ArrowException, ValueError) as exc:
        raise InvalidInput(f"{what}: invalid data: {first_line(exc)}") from exc


def _read_parquet(path: Path, limits: InputLimits) -> pa.Table:
    """The file's rows, after its footer says they fit the limits (a few KB can declare millions of rows)."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as parquet:
        meta = parquet.metadata
        decoded = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        limits.check(meta.num_rows, decoded, str(path))
        check_columns(parquet.schema_arrow, str(path), limits.max_depth)
        return parquet.read()


def read_arrow_stream(path: Path, limits: InputLimits | None = None, what: str = "the body") -> pa.Table:
    """The rows of an Arrow IPC stream file, batch by batch within ``limits``.

    Raises:
        InvalidInput: not an Arrow IPC stream, or a duplicate or unsupported column.
        TooLarge: more rows or decoded bytes than the limits allow.
    """
    limits = limits or InputLimits.from_settings()
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


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its class name if it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_json_depth(path: Path, max_depth: int = MAX_NESTING, per_line: bool = True) -> None:
    """Refuse JSON nesting deeper than ``max_depth`` before any parser sees the file: pyarrow's reader
    crashes the process on very deep nesting, and streaming parsers spend memory quadratic in the depth.
    Brackets inside strings do not count. ``per_line``: JSON lines, each line measured on its own
    (quotes too, so an unbalanced line cannot hide the next one's brackets); otherwise one document.

    Raises:
        InvalidInput: the nesting is deeper than ``max_depth`` (the line is named).
    """
    line_offset = 0
    carried = (0, 0)
    with path.open("rb") as fh:
        while True:
            block = fh.read(_BLOCK)
            if not block:
                return
            if not block.endswith(b"\n"):
                block += fh.readline()
            structure = block.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)
            deepest, line, carried = _deepest(structure, (0, 0) if per_line else carried, per_line)
            if deepest > max_depth:
                raise InvalidInput(f"{path}: line {line_offset + line} nests {deepest} levels deep, more than the "
                                   f"limit of {max_depth}")
            line_offset += block.count(b"\n")


def _deepest(block: bytes, carried: tuple[int, int], per_line: bool) -> tuple[int, int, tuple[int, int]]:
    """The deepest nesting in ``block`` (escapes removed, only brackets, quotes and newlines kept), the
    1-based line it occurs on, and the (depth, quotes seen) at its end; ``carried`` is the (depth, quotes
    seen) it starts with."""
    data = np.frombuffer(block, dtype=np.uint8)
    if data.size == 0:
        return carried[0], 1, carried
    quotes = np.cumsum(data == _QUOTE, dtype=np.int32) + np.int32(carried[1] & 1)
    step = _STEP[data]
    newline = data == _NEWLINE
    if per_line:  # quotes and depth counted from the start of each line
        last = np.where(newline, np.arange(data.size, dtype=np.int32), np.int32(-1))
        np.maximum.accumulate(last, out=last)
        starts = last >= 0
        quotes -= np.where(starts, quotes[np.maximum(last, 0)], 0)
    step[(quotes & 1) == 1] = 0  # inside a string (an opening quote counts as inside, its closing one not)
    depth = np.cumsum(step, dtype=np.int32) + np.int32(carried[0])
    if per_line:
        depth -= np.where(starts, depth[np.maximum(last, 0)], 0)
    at = int(np.argmax(depth))
    return int(depth[at]), int(np.count_nonzero(newline[:at])) + 1, (int(depth[-1]), int(quotes[-1]))


def check_columns(schema: pa.Schema, what: str, max_depth: int = MAX_NESTING) -> None:
    """Refuse column names given twice and types the registry cannot store or hash.

    Raises:
        InvalidInput: a duplicate column (or struct field) name, a union, run-end-encoded or
            interval column, an extension type, or nesting deeper than ``max_depth``; the column is named.
    """
    _check_fields(list(schema), what, "column", max_depth, max_depth)


def _check_fields(fields: list[pa.Field], what: str, kind: str, depth: int, limit: int) -> None:
    seen: set[str] = set()
    for field in fields:
        if field.name in seen:
            raise InvalidInput(f"{what}: {kind} {field.name!r} appears more than once; column names must be unique")
        seen.add(field.name)
        _check_type(field.type, field.name, what, depth, limit)


def _check_type(t: pa.DataType, name: str, what: str, depth: int, limit: int) -> None:
    if depth <= 0:
        raise InvalidInput(f"{what}: column {name!r} nests deeper than the limit of {limit} levels")
    for refused, label in _REFUSED:
        if refused(t):
            raise InvalidInput(f"{what}: column {name!r} has type {t}, which the registry cannot store "
                               f"({label}); cast it to a supported type first")
    if pa.types.is_struct(t):
        _check_fields([t.field(i) for i in range(t.num_fields)], what, f"field of {name!r}", depth - 1, limit)
    elif pa.types.is_dictionary(t):
        _check_type(t.value_type, name, what, depth, limit)
    elif pa.types.is_map(t):
        _check_type(t.key_type, name, what, depth - 1, limit)
        _check_type(t.item_type, name, what, depth - 1, limit)
    elif hasattr(t, "value_type"):  # list, large list, fixed-size list, list views
        _check_type(t.value_type, name, what, depth - 1, limit)


def _is_extension(t: pa.DataType) -> bool:
    return isinstance(t, pa.ExtensionType)


def _is_run_end_encoded(t: pa.DataType) -> bool:
    return bool(getattr(pa.types, "is_run_end_encoded", lambda _t: False)(t))


_REFUSED = (
    (pa.types.is_union, "unions are not supported"),
    (_is_run_end_encoded, "run-end encoding is not supported; decode it"),
    (pa.types.is_interval, "intervals are not supported"),
    (_is_extension, "extension types are not supported"),
)


def write_table_file(table: pa.Table, path: str | Path) -> None:
    """Write ``table`` as Parquet, CSV or JSON lines, chosen by the suffix of ``path``.

    Raises:
        InvalidInput: the suffix names no supported kind.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        pq.write_table(table, path, compression="zstd")
    elif suffix == ".csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, path)
    elif suffix in (".jsonl", ".ndjson"):
        import json

        with open(path, "w", encoding="utf-8") as fh:
            for batch in table.to_batches(max_chunksize=65536):
                for row in batch.to_pylist():
                    fh.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
    else:
        raise InvalidInput(f"{path}: cannot export to {suffix or '(no suffix)'}; use .parquet, .csv or .jsonl")


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
    Integers into a floating column pass (the cast fails on any value it cannot hold exactly), and so
    does a column of nulls.

    Raises:
        BreakingSchemaChange: a column's type differs that way (each is named).
    """
    from registry.snapshots.schema import compare_schemas, schema_to_json

    given = schema_to_json(table.schema)
    nulls = {c["name"] for c in given if c["type"] == "null"}
    breaking = [c for c in compare_schemas(given, columns) if c.kind == "type_changed" and c.breaking
                and c.column not in nulls and not _int_into_float(table.schema.field(c.column).type, c.after)]
    if breaking and not allow_breaking:
        listed = "; ".join(f"{c.column!r} is {c.before} in the upsert but {c.after} in the dataset" for c in breaking)
        raise BreakingSchemaChange(f"{name}: the upsert changes column types ({listed}); cast the column, or pass "
                                   "--allow-breaking to convert the values to the dataset's types")


def _int_into_float(given: pa.DataType, target: str | None) -> bool:
    return pa.types.is_integer(given) and target in ("float", "double", "halffloat")


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
