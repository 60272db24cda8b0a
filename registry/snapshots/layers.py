"""Layer objects: Parquet files of rows, and their key-hash indexes.

A layer holds the rows one commit upserted, in the order they were given, and, separately, the
keys it deleted. The index of a rows object is a structured numpy array sorted by key hash with
``(kh, rh, pos)`` per row (``pos``: the row's position in the file) plus, for tables of up to
``MAX_CELL_COLUMNS`` value columns, one ``cell:<column>`` hash per value column, so a diff counts
changed cells per column without reading rows. The index of a deletes object is its sorted
``kh``. Indexes are derived data: they live in the home's ``cache/index`` folder (memory-mapped,
so a lookup touches O(k log n) pages) and are rebuilt from the Parquet bytes when missing.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from registry.snapshots.hashing import hash_table, key_hash
from registry.storage import ObjectInfo, ObjectStore

__all__ = [
    "CELL_PREFIX",
    "INDEX_DTYPE",
    "INDEX_FORMAT",
    "MAX_CELL_COLUMNS",
    "ROW_GROUP_ROWS",
    "IndexCache",
    "build_index",
    "cell_columns",
    "in_sorted",
    "write_parquet_object",
]

INDEX_FORMAT = 2
"""Bumped whenever the index layout or the hash definition changes; names the cache folder."""
INDEX_DTYPE = np.dtype([("kh", "<u8"), ("rh", "<u8"), ("pos", "<u8")])
CELL_PREFIX = "cell:"
MAX_CELL_COLUMNS = 32
"""Wider tables keep only key and row hashes; their diffs read rows to count changed cells."""
ROW_GROUP_ROWS = 1024 * 1024
"""Rows per Parquet row group. Smaller groups would make fetching a few rows cheaper, but on a
10M-row labels table 128k-row groups cost 30% more bytes (dictionaries restart per group)."""


def write_parquet_object(store: ObjectStore, table: pa.Table) -> ObjectInfo:
    """Write ``table`` as one zstd Parquet object (temp file, fsync, atomic rename)."""
    with store.staging_file(".parquet") as staged:
        pq.write_table(table, staged, compression="zstd", row_group_size=ROW_GROUP_ROWS)
        return store.put(staged)


def build_index(kh: np.ndarray, rh: np.ndarray, pos: np.ndarray, cells: dict[str, np.ndarray],
                key_columns: Sequence[str]) -> np.ndarray:
    """The structured index array of one rows object (entries in the given order: sort by ``kh``)."""
    value_columns = [c for c in cells if c not in key_columns]
    if len(value_columns) > MAX_CELL_COLUMNS:
        value_columns = []
    dtype = np.dtype([*INDEX_DTYPE.descr, *((CELL_PREFIX + c, "<u8") for c in value_columns)])
    index = np.empty(len(kh), dtype)
    index["kh"] = kh
    index["rh"] = rh
    index["pos"] = pos
    for column in value_columns:
        index[CELL_PREFIX + column] = cells[column]
    return index


def cell_columns(index: np.ndarray) -> list[str]:
    """The value columns an index holds cell hashes for."""
    return [n[len(CELL_PREFIX):] for n in (index.dtype.names or ()) if n.startswith(CELL_PREFIX)]


def in_sorted(values: np.ndarray, sorted_array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``values``: whether it is in ``sorted_array``, and where."""
    if len(sorted_array) == 0:
        return np.zeros(len(values), bool), np.zeros(len(values), np.int64)
    positions = np.searchsorted(sorted_array, values)
    clipped = np.minimum(positions, len(sorted_array) - 1)
    return sorted_array[clipped] == values, clipped


class IndexCache:
    """Loads (and when missing, rebuilds) the key-hash index of a layer object."""

    def __init__(self, store: ObjectStore, folder: Path) -> None:
        self.store = store
        self.folder = folder
        self._memo: dict[str, np.ndarray] = {}

    def _path(self, sha256: str) -> Path:
        return self.folder / f"{sha256}.npy"

    def save(self, sha256: str, index: np.ndarray) -> None:
        """Keep ``index`` for ``sha256`` (atomically; a reader never sees half a file)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{uuid.uuid4().hex}.tmp"
        try:
            with open(tmp, "wb") as fh:
                np.save(fh, np.ascontiguousarray(index))
            os.replace(tmp, self._path(sha256))
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        self._memo[sha256] = index

    def rows_index(self, sha256: str, key_columns: Sequence[str]) -> np.ndarray:
        """The ``(kh, rh)`` array of a rows object, sorted by ``kh``."""
        return self._load(sha256, key_columns, deletes=False)

    def deletes_index(self, sha256: str, key_columns: Sequence[str]) -> np.ndarray:
        """The sorted ``kh`` array of a deletes object."""
        return self._load(sha256, key_columns, deletes=True)

    def _load(self, sha256: str, key_columns: Sequence[str], deletes: bool) -> np.ndarray:
        if sha256 in self._memo:
            return self._memo[sha256]
        path = self._path(sha256)
        index: np.ndarray
        try:
            index = np.load(path, mmap_mode="r")
            if not deletes and not {"kh", "rh", "pos"} <= set(index.dtype.names or ()):
                raise ValueError("index without the fields this version needs")
        except (FileNotFoundError, ValueError, OSError):
            index = self.rebuild(sha256, key_columns, deletes)
        self._memo[sha256] = index
        return index

    def rebuild(self, sha256: str, key_columns: Sequence[str], deletes: bool) -> np.ndarray:
        """Recompute an index from the object's Parquet bytes and keep it."""
        table = pq.read_table(self.store.local_path(sha256))
        if deletes:
            index: np.ndarray = key_hash(table, key_columns)
        else:
            kh, rh, cells = hash_table(table, key_columns)
            order = np.argsort(kh, kind="stable")
            index = build_index(kh[order], rh[order], order, {c: h[order] for c, h in cells.items()}, key_columns)
        self.save(sha256, index)
        return index
