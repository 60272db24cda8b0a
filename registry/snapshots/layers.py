"""Layer objects: Parquet files of rows, and their key-hash indexes.

A layer holds the rows one commit upserted, in the order they were given, and, separately, the
keys it deleted. The index of a rows object holds its key hashes sorted with each one's file row,
and in file order the row hashes and, for tables of up to ``MAX_CELL_COLUMNS`` value columns, one
hash per cell (``cells.npy``: a record per file row, a field per column, so the cells of one row are read
together), so a diff counts changed cells per column without reading rows. The index of a
deletes object is its sorted key hashes. Indexes are derived data: they live in the home's
``cache/`` folder (opened memory-mapped, read with ``pread`` of the few blocks a lookup needs: see
:mod:`registry.snapshots.mapped_reads`) and are rebuilt from the Parquet bytes when missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from registry.arrays import arrow_array
from registry.snapshots.hashing import hash_table, key_hash
from registry.snapshots.id_sort import argsort_ids
from registry.snapshots.mapped_reads import (
    MappedTable,
    blocks_of,
    gather,
    load_mapped,
    open_mapped_table,
    read_part,
    take_by_batch,
    take_mapped,
    with_gaps_filled,
)
from registry.storage import ObjectInfo, ObjectStore
from registry.storage.verified import markers_in, verified_path

__all__ = [
    "CELLS_FILE",
    "INDEX_FORMAT",
    "MAX_CELL_COLUMNS",
    "ROW_GROUP_ROWS",
    "IndexCache",
    "ENTRY_DTYPE",
    "Comparison",
    "LayerIndex",
    "compare_sorted",
    "in_sorted",
    "write_parquet_object",
    "take_rows",
    "ALT_IDS",
    "BELOW_DTYPE",
    "BELOW_FILE",
    "alt_ids_of",
    "alt_metadata",
    "alt_metadata_for",
    "cell_dtype",
    "cell_records",
    "stored_ids",
]

INDEX_FORMAT = 5
"""Bumped whenever the index layout or the hash definition changes; names the cache folder (5: a layer's cell
hashes are one file of row records, ``cells.npy``, instead of one file per column)."""
CELLS_FILE = "cells"
"""The cell hashes' array (``cells.npy``): one record per file row, field ``c{i}`` for ``columns.json``'s i-th
column."""


BELOW_FILE = "below"
"""Where a layer's rows were in the layers beneath it, as the commit that wrote the layer found them
(``below.npy``: a :data:`BELOW_DTYPE` record per file row; ``below.json``: the objects of those layers). A
diff of that commit's parent and child reads it instead of looking every id up again. Only a commit writes
it, so an index rebuilt from the rows object lacks it (the diff then looks the ids up)."""
BELOW_DTYPE = np.dtype([("layer", "<i8"), ("position", "<i8"), ("rh", "<u8")])
"""A :class:`registry.snapshots.layer_reader.Lookup` entry: layer number (-1: absent), file row, row hash."""


def cell_dtype(count: int) -> np.dtype:
    """The record of one row's cell hashes: ``count`` 64-bit fields ``c0``, ``c1``, ..."""
    return np.dtype([(f"c{i}", "<u8") for i in range(count)])


def cell_records(columns: Sequence[np.ndarray]) -> np.ndarray:
    """Per-column cell hashes (equal lengths) as one array of row records (:func:`cell_dtype`)."""
    records = np.empty(len(columns[0]) if columns else 0, cell_dtype(len(columns)))
    for i, hashes in enumerate(columns):
        records[f"c{i}"] = hashes
    return records
MAX_CELL_COLUMNS = 32
"""Wider tables keep only key and row hashes; their diffs read rows to count changed cells."""
ROW_GROUP_ROWS = 1024 * 1024
"""Rows per Parquet row group. Smaller groups would make fetching a few rows cheaper, but on a
10M-row labels table 128k-row groups cost 30% more bytes (dictionaries restart per group)."""


ALT_IDS = b"registry.alt_ids"
"""Parquet key-value metadata naming the rows of an object stored under alternate ids (see
:mod:`registry.snapshots.identity`)."""


def alt_metadata(ids: np.ndarray, kh: np.ndarray) -> dict[bytes, bytes] | None:
    """The ``registry.alt_ids`` metadata of an object whose rows (file order) have ``ids`` and key hashes
    ``kh``; None when every row's id is its key hash."""
    rows = np.flatnonzero(np.asarray(ids) != np.asarray(kh))
    if not rows.size:
        return None
    return alt_metadata_for(rows, np.asarray(ids)[rows])


def alt_metadata_for(rows: np.ndarray, ids: np.ndarray) -> dict[bytes, bytes]:
    """``registry.alt_ids`` metadata naming file ``rows`` and their alternate ``ids``."""
    return {ALT_IDS: json.dumps({"rows": [int(r) for r in rows], "ids": [str(int(v)) for v in ids]}).encode()}


def alt_ids_of(metadata: dict[bytes, bytes] | None) -> tuple[np.ndarray, np.ndarray]:
    """The (file rows, ids) an object's metadata names as stored under alternate ids."""
    raw = (metadata or {}).get(ALT_IDS)
    if not raw:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    doc = json.loads(raw)
    return np.asarray(doc["rows"], np.int64), np.asarray([int(v) for v in doc["ids"]], np.uint64)


def stored_ids(table: pa.Table, key_columns: Sequence[str]) -> np.ndarray:
    """The ids of a stored object's rows (file order): key hashes, except where its metadata names
    alternate ids."""
    kh = key_hash(table, key_columns)
    rows, ids = alt_ids_of(table.schema.metadata)
    kh[rows] = ids
    return kh


def write_parquet_object(store: ObjectStore, table: pa.Table, row_group_size: int = ROW_GROUP_ROWS,
                         metadata: dict[bytes, bytes] | None = None) -> ObjectInfo:
    """Write ``table`` as one zstd Parquet object (temp file, fsync, atomic rename), with ``metadata``
    (such as :func:`alt_metadata`) as the file's key-value metadata."""
    if metadata:
        table = table.replace_schema_metadata(metadata)
    with store.staging_file(".parquet") as staged:
        pq.write_table(table, staged, compression="zstd", row_group_size=row_group_size)
        return store.put(staged)


def in_sorted(values: np.ndarray, sorted_array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``values``: whether it is in ``sorted_array``, and where."""
    if len(sorted_array) == 0:
        return np.zeros(len(values), bool), np.zeros(len(values), np.int64)
    positions = np.searchsorted(sorted_array, values)
    clipped = np.minimum(positions, len(sorted_array) - 1)
    return sorted_array[clipped] == values, clipped


@dataclass(frozen=True)
class Comparison:
    """New rows against old ones, both given as key hashes sorted with their row hashes."""

    present: np.ndarray  # per new row: its key was there before
    same: np.ndarray  # per new row: present with an equal row hash
    removed_kh: np.ndarray  # old key hashes no new row has (sorted)
    position: np.ndarray  # per new row: where its key is among the old ones (meaningful where present)


def compare_sorted(new_kh: np.ndarray, new_rh: np.ndarray, old_kh: np.ndarray, old_rh: np.ndarray) -> Comparison:
    """Which new rows are added, unchanged or changed, and which old keys are gone."""
    present, position = in_sorted(new_kh, old_kh)
    same = present.copy()
    same[present] = old_rh[position[present]] == new_rh[present]
    hit = np.zeros(len(old_kh), bool)
    hit[position[present]] = True
    return Comparison(present, same, np.asarray(old_kh[~hit]), position)


KEYS_FILE = "keys.arrow"


def write_keys(path: Path, keys: pa.Table) -> None:
    """Write key columns as an uncompressed Arrow IPC file (memory-mapped by :func:`read_keys`)."""
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, keys.schema) as writer:
        writer.write_table(keys, max_chunksize=1 << 20)


def read_keys(path: Path) -> pa.Table | None:
    """The key columns of an index, memory-mapped (pages are read only when touched); None if absent."""
    opened = open_keys(path)
    return opened.table if opened is not None else None


def open_keys(path: Path) -> MappedTable | None:
    """:func:`read_keys`, with where the file is mapped (for :func:`registry.snapshots.mapped_reads.take_mapped`)."""
    try:
        return open_mapped_table(str(path))
    except (OSError, pa.ArrowInvalid):
        return None


def take_rows(table: pa.Table, positions: np.ndarray) -> pa.Table:
    """``table.take(positions)`` one record batch at a time, touching only the rows taken (a chunked
    take would first concatenate every chunk: the whole memory-mapped column)."""
    batches = table.to_batches()
    if len(batches) <= 1:
        return pa.Table.from_batches([batches[0].take(arrow_array(positions))] if batches else [], table.schema)
    return take_by_batch(table, np.asarray(positions, np.int64), lambda batch, at: batch.take(arrow_array(at)))


ENTRY_DTYPE = np.dtype([("kh", "<u8"), ("row", "<u8"), ("rh", "<u8")])
FENCE = 512
"""Entries per fence: a lookup binary-searches the small fence array, then one 12 KiB window."""


@dataclass(frozen=True)
class LayerIndex:
    """The index of one rows object.

    ``entries`` holds ``(kh, row, rh)`` sorted by key hash (``row``: the file position of that
    key's row), so a lookup reads its row number and row hash from the page where it found the
    key. ``fences`` is every ``FENCE``-th key hash: looking up k keys touches about k pages, not
    the whole array. Each ``cells`` array (one hash per cell of a value column) is in file order.
    """

    entries: np.ndarray
    fences: np.ndarray
    cells: dict[str, np.ndarray] = field(default_factory=dict)
    alt: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    """The ids in ``entries`` that are alternate ids (sorted; almost always empty)."""
    keys: pa.Table | None = None
    """The key columns in file order (memory-mapped Arrow), so a commit confirms a hash match by the key
    values without decoding Parquet row groups; None in indexes written before it existed."""
    keys_file: MappedTable | None = None
    """``keys`` with the file it is mapped from, when it is: :meth:`take_keys` then reads by ``pread``."""
    cell_rows: np.ndarray | None = None
    """The cell hashes as row records (:func:`cell_dtype`) when read from ``cells.npy``; ``cells`` are then
    its fields. :meth:`cells_at` reads a row's cells in one piece."""

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def kh(self) -> np.ndarray:
        return self.entries["kh"]

    @property
    def rows(self) -> np.ndarray:
        return self.entries["row"]

    def rh_by_key(self) -> np.ndarray:
        """Row hashes aligned with ``kh``."""
        return np.asarray(self.entries["rh"])

    def rh_in_file_order(self) -> np.ndarray:
        out = np.empty(len(self), np.uint64)
        out[self.rows] = self.entries["rh"]
        return out

    @classmethod
    def empty(cls) -> LayerIndex:
        return cls(np.zeros(0, ENTRY_DTYPE), np.zeros(0, np.uint64))

    @classmethod
    def build(cls, kh: np.ndarray, rows: np.ndarray, rh: np.ndarray, cells: dict[str, np.ndarray],
              key_columns: Sequence[str], alt: np.ndarray | None = None, keys: pa.Table | None = None
              ) -> LayerIndex:
        """An index from sorted ``kh`` with their file ``rows``, and file-order row and cell hashes."""
        entries = np.empty(len(kh), ENTRY_DTYPE)
        entries["kh"] = kh
        entries["row"] = rows
        entries["rh"] = rh[rows]
        value_columns = [c for c in cells if c not in key_columns]
        kept = {c: cells[c] for c in value_columns} if len(value_columns) <= MAX_CELL_COLUMNS else {}
        alt_ids = np.sort(np.asarray(alt, np.uint64)) if alt is not None else np.zeros(0, np.uint64)
        return cls(entries, np.ascontiguousarray(kh[::FENCE]), kept, alt_ids,
                   keys.select(list(key_columns)) if keys is not None else None)

    @classmethod
    def from_file_order(cls, kh: np.ndarray, rh: np.ndarray, cells: dict[str, np.ndarray],
                        key_columns: Sequence[str], alt: np.ndarray | None = None, keys: pa.Table | None = None
                        ) -> LayerIndex:
        order = argsort_ids(np.asarray(kh, np.uint64))
        return cls.build(kh[order], order, rh, cells, key_columns, alt, keys)

    def cells_at(self, positions: np.ndarray, columns: Sequence[str]) -> dict[str, np.ndarray]:
        """The cell hashes of ``columns`` (each in ``cells``) of the rows at file ``positions``: from a file
        of row records, one read per block of rows for all columns together."""
        if self.cell_rows is None:
            return {c: gather(self.cells[c], positions) for c in columns}
        return self._fields(gather(self.cell_rows, positions), columns)

    def cells_between(self, start: int, stop: int, columns: Sequence[str]) -> dict[str, np.ndarray]:
        """The cell hashes of ``columns`` of file rows ``[start, stop)``: from a file of row records, one
        sequential read for all columns together."""
        if self.cell_rows is None:
            return {c: read_part(self.cells[c], start, stop) for c in columns}
        return self._fields(read_part(self.cell_rows, start, stop), columns)

    def _fields(self, records: np.ndarray, columns: Sequence[str]) -> dict[str, np.ndarray]:
        """``columns`` of row records read from ``cell_rows``, each as a contiguous array."""
        field_of = {c: f"c{i}" for i, c in enumerate(self.cells)}
        return {c: np.ascontiguousarray(records[field_of[c]]) for c in columns}

    def take_keys(self, positions: np.ndarray) -> pa.Table:
        """The key columns of the rows at file ``positions`` (the index must have them)."""
        if self.keys_file is not None:
            return take_mapped(self.keys_file, positions)
        assert self.keys is not None
        return take_rows(self.keys, positions)

    def search(self, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each of ``wanted``: whether it is here, and its entry number (meaningful where found)."""
        found, entry, _ = self.find(wanted)
        return found, entry

    def find(self, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each of ``wanted``: whether it is here, its entry number and its entry (meaningful where found).

        Each id's fence window (``FENCE`` entries, 12 KiB) is read from the file, nearby windows in one read
        and at most a few MiB at a time (:mod:`registry.snapshots.mapped_reads`): looking up k ids reads
        about k windows whatever the index's size, and maps none of it into the reader's memory.
        """
        m, n = len(wanted), len(self)
        found, entry, records = np.zeros(m, bool), np.zeros(m, np.int64), np.zeros(m, ENTRY_DTYPE)
        if not n or not m:
            return found, entry, records
        window = np.maximum(np.searchsorted(self.fences, wanted, side="right") - 1, 0)
        order = np.argsort(window, kind="stable")  # linear when ``wanted`` is sorted
        in_order = window[order]
        numbers = with_gaps_filled(in_order[np.concatenate([[0], np.flatnonzero(np.diff(in_order)) + 1])],
                                   FENCE * ENTRY_DTYPE.itemsize)
        for batch, flat in blocks_of(self.entries, numbers, FENCE):
            low = np.searchsorted(in_order, numbers[batch.start])
            which = order[low:np.searchsorted(in_order, numbers[batch.stop - 1], side="right")]
            ids = flat["kh"]  # sorted: consecutive windows of sorted entries
            at = np.minimum(np.searchsorted(ids, wanted[which]), len(flat) - 1)
            found[which] = ids[at] == wanted[which]
            entry[which] = numbers[batch.start + at // FENCE] * FENCE + at % FENCE
            records[which] = flat[at]
        return found, entry, records


class IndexCache:
    """Loads (and when missing, rebuilds) the key-hash indexes of layer objects.

    Each index is a folder of ``.npy`` arrays named after its object, opened memory-mapped.
    """

    def __init__(self, store: ObjectStore, folder: Path) -> None:
        self.store = store
        self.folder = folder
        self._rows: dict[str, LayerIndex] = {}
        self._deletes: dict[str, np.ndarray] = {}

    def object_path(self, sha256: str, role: str = "layer") -> Path:
        """A local path of a stored object whose bytes were checked against its name (once per process
        and file; see :mod:`registry.storage.verified`).

        Raises:
            VerifyFailed: the object's bytes do not hash to its name.
        """
        return verified_path(self.store, sha256, role, markers_in(self.folder.parent))

    def new_staging_folder(self) -> Path:
        """A fresh temporary folder to write an index into, for :meth:`adopt_folder` (or :meth:`discard`)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{uuid.uuid4().hex}.tmp"
        tmp.mkdir()
        return tmp

    def iter_staging(self) -> Iterator[tuple[Path, float]]:
        """Staging folders left by writers (a killed commit's scratch files), each with the newest mtime of
        anything in it: a folder still being written has a recent one."""
        if not self.folder.is_dir():
            return
        for tmp in sorted(self.folder.glob(".*.tmp")):
            with contextlib.suppress(OSError):
                yield tmp, max([tmp.stat().st_mtime] + [p.stat().st_mtime for p in tmp.rglob("*")])

    def adopt_folder(self, staged: Path, sha256: str) -> None:
        """Keep a folder from :meth:`new_staging_folder`, laid out as :meth:`save_rows` lays an index out, as
        the index of rows object ``sha256`` (atomically)."""
        self._adopt(staged, sha256)
        self._rows.pop(sha256, None)

    def _stage(self, arrays: dict[str, np.ndarray], columns: list[str], keys: pa.Table | None = None) -> Path:
        """Write an index's files into a fresh temporary folder (see :meth:`_adopt`)."""
        tmp = self.new_staging_folder()
        try:
            for name, array in arrays.items():
                np.save(tmp / f"{name}.npy", np.ascontiguousarray(array))
            if keys is not None:
                write_keys(tmp / KEYS_FILE, keys)
            (tmp / "columns.json").write_text(json.dumps(columns))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return tmp

    def _adopt(self, tmp: Path, sha256: str) -> None:
        """Make a staged folder the index of ``sha256``, atomically (readers never see half an index)."""
        try:
            with contextlib.suppress(OSError):  # another process kept the same index first
                os.replace(tmp, self.folder / sha256)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _write(self, sha256: str, arrays: dict[str, np.ndarray], columns: list[str],
               keys: pa.Table | None = None) -> None:
        self._adopt(self._stage(arrays, columns, keys), sha256)

    @contextlib.contextmanager
    def staged_index(self, sha256: str) -> Iterator[Path]:
        """A fresh folder to write the index of rows object ``sha256`` into (as ``save_rows`` lays it out);
        it becomes the index on leaving without an error, atomically."""
        tmp = self.new_staging_folder()
        try:
            yield tmp
            with contextlib.suppress(OSError):  # another process kept the same index first
                os.replace(tmp, self.folder / sha256)
            self._rows.pop(sha256, None)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def drop(self, sha256: str) -> None:
        """Forget the index of an object (garbage collection deleted it)."""
        self._rows.pop(sha256, None)
        self._deletes.pop(sha256, None)
        shutil.rmtree(self.folder / sha256, ignore_errors=True)

    def save_rows(self, sha256: str, index: LayerIndex) -> None:
        """Keep the index of a rows object (atomically: readers never see half an index)."""
        self.adopt_rows(self.stage_rows(index), sha256, index)

    def stage_rows(self, index: LayerIndex) -> Path:
        """Write the index of a rows object not yet named (its object is still being written), for
        :meth:`adopt_rows` to keep under the object's name; :meth:`discard` drops it on failure."""
        columns = list(index.cells)
        arrays = {"entries": index.entries, "fences": index.fences}
        if len(index.alt):
            arrays["alt"] = index.alt
        if columns:
            arrays[CELLS_FILE] = cell_records([index.cells[c] for c in columns])
        return self._stage(arrays, columns, index.keys)

    def adopt_rows(self, staged: Path, sha256: str, index: LayerIndex) -> None:
        """Keep a folder from :meth:`stage_rows` as the index of rows object ``sha256``."""
        self._adopt(staged, sha256)
        self._rows[sha256] = index

    @staticmethod
    def discard(staged: Path) -> None:
        """Drop a folder from :meth:`stage_rows` that will not be kept."""
        shutil.rmtree(staged, ignore_errors=True)

    @staticmethod
    def stage_below(staged: Path, below: list[list[str | None]], layer: np.ndarray, position: np.ndarray,
                    rh: np.ndarray) -> None:
        """Keep, in a folder from :meth:`stage_rows`, where each file row's id was in the layers ``below``
        (their objects, as :func:`registry.snapshots.manifest.layer_names` names them): see :data:`BELOW_FILE`."""
        records = np.empty(len(layer), BELOW_DTYPE)
        records["layer"], records["position"], records["rh"] = layer, position, rh
        np.save(staged / f"{BELOW_FILE}.npy", records)
        (staged / f"{BELOW_FILE}.json").write_text(json.dumps(below))

    def below(self, sha256: str, below: list[list[str | None]]) -> np.ndarray | None:
        """The :data:`BELOW_FILE` records kept with the index of ``sha256``, if they were made for exactly the
        layers ``below``; else None."""
        folder = self.folder / sha256
        try:
            if json.loads((folder / f"{BELOW_FILE}.json").read_text()) != below:
                return None
            records = np.load(folder / f"{BELOW_FILE}.npy")
        except (OSError, ValueError):
            return None
        return records if records.dtype == BELOW_DTYPE else None

    def save_deletes(self, sha256: str, kh: np.ndarray) -> None:
        """Keep the sorted key hashes of a deletes object."""
        self._write(sha256, {"kh": kh}, [])
        self._deletes[sha256] = kh

    def _open(self, sha256: str) -> tuple[dict[str, np.ndarray], list[str]] | None:
        folder = self.folder / sha256
        try:
            columns: list[str] = json.loads((folder / "columns.json").read_text())
            arrays = {p.stem: load_mapped(p) for p in folder.glob("*.npy") if p.stem != BELOW_FILE}
        except (OSError, ValueError):
            return None
        return arrays, columns

    def rows_index(self, sha256: str, key_columns: Sequence[str]) -> LayerIndex:
        """The index of a rows object (rebuilt from its Parquet bytes if missing)."""
        if sha256 not in self._rows:
            opened = self._open(sha256)
            if opened is None or not {"entries", "fences"} <= opened[0].keys():
                self._rows[sha256] = self.rebuild_rows(sha256, key_columns)
            else:
                arrays, columns = opened
                cell_rows = arrays.get(CELLS_FILE)
                cells = {c: cell_rows[f"c{i}"] for i, c in enumerate(columns)} if cell_rows is not None else {}
                alt = arrays.get("alt", np.zeros(0, np.uint64))
                keys = open_keys(self.folder / sha256 / KEYS_FILE)
                self._rows[sha256] = LayerIndex(arrays["entries"], arrays["fences"], cells, alt,
                                                keys.table if keys is not None else None, keys, cell_rows)
        return self._rows[sha256]

    def deletes_index(self, sha256: str, key_columns: Sequence[str]) -> np.ndarray:
        """The sorted key hashes of a deletes object (rebuilt if missing)."""
        if sha256 not in self._deletes:
            opened = self._open(sha256)
            if opened is None or "kh" not in opened[0]:
                table = pq.read_table(self.object_path(sha256, "deleted keys"))
                kh = np.sort(stored_ids(table, key_columns))
                self.save_deletes(sha256, kh)
            else:
                self._deletes[sha256] = opened[0]["kh"]
        return self._deletes[sha256]

    def rebuild_rows(self, sha256: str, key_columns: Sequence[str]) -> LayerIndex:
        """Recompute a rows object's index from its Parquet bytes and keep it."""
        path = self.object_path(sha256, "layer rows")
        table = pq.read_table(path)
        kh, rh, cells = hash_table(table, key_columns)
        # From the footer: a streamed writer adds the alternate ids there once they are known (after the rows).
        rows, alt = alt_ids_of(pq.ParquetFile(path).metadata.metadata)
        kh[rows] = alt
        index = LayerIndex.from_file_order(kh, rh, cells, key_columns, alt,
                                           table.select(list(key_columns)).replace_schema_metadata(None))
        self.save_rows(sha256, index)
        return index
