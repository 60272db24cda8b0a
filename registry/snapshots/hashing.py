"""Stable, vectorised 64-bit hashes of keys and rows.

Snapshots are compared by key hash (``kh``) and row hash (``rh``) instead of by values, so that a
commit of k rows into an n-row dataset looks up k hashes instead of reading n rows. The hash is
defined here, in numpy, so it never changes with a library upgrade: an index built today must
match one built from the same bytes in five years.

Definition (its version is part of ``layers.INDEX_FORMAT``, which names the cache folder):
every value becomes a 64-bit word (integers as int64, floats as float64 bits with -0.0 and NaN
made canonical, temporal types as their integer count, strings and binary as their bytes folded 8
at a time into a splitmix64 chain that starts from their length); nulls hash to a fixed constant;
each value's word is then mixed (splitmix64). A row hash is the splitmix64 of the sum, over its
columns, of each column's value hash times an odd weight derived from the column name (so column
order does not matter, column names do). A key hash is the same over the key columns, weighted by position.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["column_hash", "hash_table", "is_text", "key_hash"]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_NULL = np.uint64(0x6E756C6C5F76616C)  # "null_val"
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection on uint64 with full avalanche. Modifies ``x``."""
    x ^= x >> _S30
    x *= _M1
    x ^= x >> _S27
    x *= _M2
    x ^= x >> _S31
    return x


def _seed(text: str) -> np.uint64:
    return np.uint64(int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little"))


def _bytes_hash(arr: pa.Array) -> np.ndarray:
    """Per-value hash of a string or binary array (nulls are handled by the caller)."""
    if pa.types.is_string_view(arr.type) or pa.types.is_binary_view(arr.type):
        arr = arr.cast(pa.large_binary())
    large = pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)
    _, offsets_buf, data_buf = arr.buffers()
    n = len(arr)
    offsets = np.frombuffer(offsets_buf, dtype=np.int64 if large else np.int32)[arr.offset : arr.offset + n + 1]
    starts = offsets[:-1].astype(np.int64)
    lengths = offsets[1:].astype(np.int64) - starts
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    if n and lengths.min() == lengths.max():
        return _fixed_width_hash(data[int(starts[0]):int(offsets[-1])], n, int(lengths[0]))
    padded = np.zeros(len(data) + 8, dtype=np.uint8)
    padded[: len(data)] = data
    # Every byte offset viewed as the start of a little-endian uint64 (unaligned reads are fine).
    words = np.ndarray(shape=(len(padded) - 7,), dtype="<u8", buffer=padded, offset=0, strides=(1,))
    h = _mix(lengths.astype(np.uint64) ^ _GOLDEN)
    rounds = int((int(lengths.max()) + 7) // 8) if n else 0
    everyone = np.arange(n)
    active = everyone[lengths > 0]
    for step in range(rounds):
        whole = active.size == n
        rows = everyone if whole else active
        remaining = (lengths if whole else lengths[rows]) - 8 * step
        word = words[np.minimum((starts if whole else starts[rows]) + 8 * step, len(words) - 1)]
        short = remaining < 8
        if short.any():
            bits = (np.clip(remaining[short], 0, 8) * 8).astype(np.uint64)
            word[short] &= (np.uint64(1) << bits) - np.uint64(1)
        mixed = _mix((h if whole else h[rows]) ^ word) + _GOLDEN
        if whole:
            h = mixed
        else:
            h[rows] = mixed
        keep = remaining > 8
        if not keep.all():
            active = rows[keep]
    return h


def _fixed_width_hash(data: np.ndarray, n: int, width: int) -> np.ndarray:
    """``_bytes_hash`` for values that all have ``width`` bytes: the same words, read as a matrix."""
    h = _mix(np.full(n, width, dtype=np.uint64) ^ _GOLDEN)
    if width == 0:
        return h
    words_per_value = (width + 7) // 8
    matrix = np.zeros((n, words_per_value * 8), dtype=np.uint8)
    matrix[:, :width] = data.reshape(n, width)
    words = matrix.view("<u8")
    for step in range(words_per_value):
        h = _mix(h ^ words[:, step]) + _GOLDEN
    return h


def _is_low_cardinality(arr: pa.Array) -> bool:
    """Whether a string column repeats values enough that hashing its dictionary is cheaper."""
    if len(arr) < 1024:
        return False
    sample = arr.slice(0, 4096)
    return len(pc.unique(sample)) <= 256


def _python_hash(arr: pa.Array) -> np.ndarray:
    """Fallback for nested types: canonical JSON of each value, BLAKE2b to 64 bits."""
    out = np.empty(len(arr), dtype=np.uint64)
    for i, value in enumerate(arr.to_pylist()):
        text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
        out[i] = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    return out


def _value_words(arr: pa.Array, low_cardinality: bool | None = None) -> np.ndarray:
    """One uint64 per value before mixing; values under nulls are arbitrary.

    ``low_cardinality`` (strings only) says whether to hash the distinct values once each; None
    decides from a sample of ``arr``. Either way the words are the same.
    """
    t = arr.type
    if pa.types.is_dictionary(t):
        dictionary = _value_words(arr.dictionary)
        indices = arr.indices.fill_null(0).to_numpy(zero_copy_only=False)
        return dictionary[indices] if len(dictionary) else np.zeros(len(arr), np.uint64)
    if pa.types.is_null(t):
        return np.zeros(len(arr), np.uint64)
    if pa.types.is_boolean(t):
        flags: np.ndarray = arr.fill_null(False).to_numpy(zero_copy_only=False).astype(np.uint64)
        return flags
    if pa.types.is_integer(t):
        values = arr.fill_null(0).to_numpy(zero_copy_only=False)
        words: np.ndarray = values.astype(np.int64).view(np.uint64) if values.dtype.kind == "i" \
            else values.astype(np.uint64)
        return words
    if pa.types.is_floating(t):
        values = arr.fill_null(0).to_numpy(zero_copy_only=False).astype(np.float64)
        values = np.where(values == 0.0, 0.0, values)  # -0.0 == 0.0
        values = np.where(np.isnan(values), np.nan, values)  # one NaN
        bits: np.ndarray = values.view(np.uint64).copy()
        return bits
    if pa.types.is_temporal(t):
        width = pa.int32() if t.bit_width == 32 else pa.int64()
        counts: np.ndarray = arr.view(width).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        return counts.view(np.uint64)
    if pa.types.is_decimal(t):
        return _bytes_hash(pc.cast(arr, pa.string()).fill_null(""))
    if pa.types.is_fixed_size_binary(t):
        return _bytes_hash(arr.cast(pa.binary()).fill_null(b""))
    if (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
            or pa.types.is_large_binary(t) or pa.types.is_string_view(t) or pa.types.is_binary_view(t)):
        filled = arr.fill_null("" if "string" in str(t) else b"") if arr.null_count else arr
        if _is_low_cardinality(filled) if low_cardinality is None else low_cardinality:
            return _value_words(pc.dictionary_encode(filled))
        return _bytes_hash(filled)
    return _python_hash(arr)


def column_hash(column: pa.Array | pa.ChunkedArray, low_cardinality: bool | None = None) -> np.ndarray:
    """A uint64 hash per value of ``column``; equal values hash equal across integer/float widths."""
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks == 0:
            return np.zeros(0, np.uint64)
        if low_cardinality is None and column.num_chunks > 1 and is_text(column.type):
            low_cardinality = _is_low_cardinality(column.slice(0, 4096).combine_chunks())
        return np.concatenate([column_hash(chunk, low_cardinality) for chunk in column.chunks])
    h = _mix(_value_words(column, low_cardinality) ^ np.uint64(0x5555555555555555))
    if column.null_count:
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        h[~valid] = _NULL
    return h


def is_text(t: pa.DataType) -> bool:
    """Whether ``t`` is a string or binary type of Parquet's byte-array kind (not a view type)."""
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
                or pa.types.is_large_binary(t))


PARALLEL_ROWS = 256 * 1024
"""From this many rows, columns are hashed on parallel threads (numpy and Arrow release the GIL)."""


def _column_hashes(table: pa.Table, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """``column_hash`` of each named column, each computed once."""
    names = list(dict.fromkeys(columns))
    workers = min(len(names), os.cpu_count() or 1)
    if table.num_rows < PARALLEL_ROWS or workers < 2:
        return {name: column_hash(table.column(name)) for name in names}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(names, pool.map(lambda name: column_hash(table.column(name)), names), strict=True))


def _weight(text: str) -> np.uint64:
    """An odd multiplier derived from ``text``: distinct columns weigh their hashes differently."""
    return _seed(text) | np.uint64(1)


def _key_from(hashes: dict[str, np.ndarray], key_columns: Sequence[str], rows: int) -> np.ndarray:
    total = np.zeros(rows, dtype=np.uint64)
    for position, name in enumerate(key_columns):
        total += hashes[name] * _weight(f"key:{position}")
    return _mix(total)


def _row_from(hashes: dict[str, np.ndarray], columns: Sequence[str], rows: int) -> np.ndarray:
    total = np.zeros(rows, dtype=np.uint64)
    for name in columns:
        total += hashes[name] * _weight(name)
    return _mix(total)


def key_hash(table: pa.Table, key_columns: Sequence[str]) -> np.ndarray:
    """The hash of each row's key (the declared key columns, in declared order)."""
    return _key_from(_column_hashes(table, key_columns), key_columns, table.num_rows)


def hash_table(table: pa.Table, key_columns: Sequence[str]
               ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``(key_hash, row_hash, {column: value hash})``, hashing each column once."""
    hashes = _column_hashes(table, [*key_columns, *table.column_names])
    rows = table.num_rows
    return _key_from(hashes, key_columns, rows), _row_from(hashes, table.column_names, rows), hashes
