"""Bounds and checks on what comes in, before and after a parser sees it (design invariant 12).

Limits on decoded rows and bytes, JSON nesting measured before pyarrow or ijson gets the bytes, Arrow
types and column names the registry can store, and full validation of the values. The readers in
:mod:`registry.snapshots.tables` apply them; importers reading JSON call :func:`check_json_depth`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from registry.config import Settings
from registry.errors import InvalidInput, TooLarge

__all__ = ["MAX_NESTING", "InputLimits", "check_columns", "check_json_bytes_depth", "check_json_depth", "check_values",
           "first_line"]

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
            deepest, line, carried = _deepest(_structure(block), (0, 0) if per_line else carried, per_line)
            if deepest > max_depth:
                raise InvalidInput(f"{path}: line {line_offset + line} nests {deepest} levels deep, more than the "
                                   f"limit of {max_depth}")
            line_offset += block.count(b"\n")


def check_json_bytes_depth(data: bytes, where: str, max_depth: int = MAX_NESTING) -> None:
    """:func:`check_json_depth` for one JSON document already in memory (a zip member, say).

    Raises:
        InvalidInput: the nesting is deeper than ``max_depth`` (``where`` names the document).
    """
    deepest, line, _ = _deepest(_structure(data), (0, 0), per_line=False)
    if deepest > max_depth:
        raise InvalidInput(f"{where}: line {line} nests {deepest} levels deep, more than the limit of {max_depth}")


def _structure(block: bytes) -> bytes:
    """Only what decides nesting: brackets, quotes and newlines, with escaped quotes and backslashes removed."""
    return block.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)


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
