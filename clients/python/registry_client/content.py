"""The content hash of a pinned snapshot's rows, recomputed on the client.

The client distribution cannot import ``registry``, so this module restates the server's definition
(``registry.quality.content`` over ``registry.snapshots.hashing``): per value a 64-bit word (integers
as int64, floats as float64 bits with -0.0 and NaN canonical, temporal types as their count, strings
and binary folded 8 bytes at a time through a splitmix64 chain started from their length, nested
values as BLAKE2b-64 of canonical JSON), mixed; nulls a fixed constant; key and row hashes the
splitmix64 of weighted sums; then SHA-256 over a header and the (key hash, row hash) pairs in key-hash
order. ``tests/training/test_training_plan.py`` checks both definitions agree on every column type.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["content_hash"]

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_NULL = np.uint64(0x6E756C6C5F76616C)
_VALUE_SALT = np.uint64(0x5555555555555555)
_PREFIX = b"registry-content/1\n"


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    mixed: np.ndarray = x ^ (x >> np.uint64(31))
    return mixed


def _blake64(text: str) -> np.uint64:
    return np.uint64(int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little"))


def _text_words(values: list[bytes]) -> np.ndarray:
    out = np.empty(len(values), np.uint64)
    for i, data in enumerate(values):
        h = _splitmix(np.array([len(data)], np.uint64) ^ _GOLDEN)
        padded = data + b"\0" * (-len(data) % 8)
        for start in range(0, len(padded), 8):
            h = _splitmix(h ^ np.frombuffer(padded[start:start + 8], "<u8")) + _GOLDEN
        out[i] = h[0]
    return out


def _words(arr: pa.Array) -> np.ndarray:
    """One uint64 per value before mixing (values under nulls are arbitrary)."""
    t = arr.type
    if pa.types.is_dictionary(t):
        words = _words(arr.dictionary)
        indices = arr.indices.fill_null(0).to_numpy(zero_copy_only=False)
        return words[indices] if len(words) else np.zeros(len(arr), np.uint64)
    if pa.types.is_null(t):
        return np.zeros(len(arr), np.uint64)
    if pa.types.is_boolean(t):
        return np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), np.uint64)
    if pa.types.is_integer(t):
        values = arr.fill_null(0).to_numpy(zero_copy_only=False)
        ints: np.ndarray = values.astype(np.int64).view(np.uint64) if values.dtype.kind == "i" \
            else values.astype(np.uint64)
        return ints
    if pa.types.is_floating(t):
        floats = arr.fill_null(0).to_numpy(zero_copy_only=False).astype(np.float64)
        floats = np.where(np.isnan(floats), np.nan, np.where(floats == 0.0, 0.0, floats))
        return floats.view(np.uint64).copy()
    if pa.types.is_temporal(t):
        width = pa.int32() if t.bit_width == 32 else pa.int64()
        return np.asarray(arr.view(width).fill_null(0).to_numpy(zero_copy_only=False), np.int64).view(np.uint64)
    if pa.types.is_decimal(t):
        return _text_words([v.encode() for v in pc.cast(arr, pa.string()).fill_null("").to_pylist()])
    if pa.types.is_fixed_size_binary(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t) \
            or pa.types.is_binary_view(t):
        return _text_words([bytes(v) for v in arr.cast(pa.large_binary()).fill_null(b"").to_pylist()])
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return _text_words([v.encode() for v in arr.cast(pa.large_string()).fill_null("").to_pylist()])
    return np.array([_blake64(json.dumps(v, sort_keys=True, default=str, separators=(",", ":")))
                     for v in arr.to_pylist()], np.uint64)


def _column(column: pa.ChunkedArray) -> np.ndarray:
    arr = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    h = _splitmix(_words(arr) ^ _VALUE_SALT)
    if arr.null_count:
        h[~np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), bool)] = _NULL
    return h


def _weighted(hashes: dict[str, np.ndarray], names: Sequence[str], weights: Sequence[str], rows: int) -> np.ndarray:
    total = np.zeros(rows, np.uint64)
    for name, weight in zip(names, weights, strict=True):
        total += hashes[name] * (_blake64(weight) | np.uint64(1))
    return _splitmix(total)


def _fingerprint(schema: pa.Schema) -> str:
    columns = [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]
    return hashlib.sha256(_canonical(columns)).hexdigest()


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(table: pa.Table, key_columns: Sequence[str]) -> str:
    """``sha256:...`` of ``table``'s rows as a pin records it (row order and layout do not matter)."""
    keys = list(key_columns)
    with np.errstate(over="ignore"):
        hashes = {name: _column(table.column(name)) for name in dict.fromkeys([*keys, *table.column_names])}
        kh = _weighted(hashes, keys, [f"key:{n}" for n in range(len(keys))], table.num_rows)
        rh = _weighted(hashes, table.column_names, table.column_names, table.num_rows)
    order = np.argsort(kh, kind="stable")
    digest = hashlib.sha256(_PREFIX)
    digest.update(_canonical({"keys": keys, "rows": table.num_rows, "schema": _fingerprint(table.schema)}))
    digest.update(b"\n")
    digest.update(np.stack([kh[order], rh[order]], axis=1).astype("<u8").tobytes())
    return "sha256:" + digest.hexdigest()
