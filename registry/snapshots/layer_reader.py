"""Reading a snapshot through its manifest: key lookups, the effective index, materialisation.

Layers apply oldest first: a row in a layer hides every row with the same key below it, and a
deleted key hides it too. Lookups go top-down through each layer's sorted key-hash index, so
looking up k keys costs O(k log n) per layer, never a scan of the rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from registry.arrays import arrow_array, union_sorted, unique_sorted
from registry.snapshots.hashing import is_text
from registry.snapshots.layers import IndexCache, LayerIndex, in_sorted
from registry.snapshots.manifest import Manifest
from registry.snapshots.mapped_reads import gather, read_part
from registry.storage import ObjectStore

__all__ = ["Located", "Lookup", "ManifestReader"]

ABSENT = -1
SLICE_LIMIT = 20_000
"""Up to this many hidden rows in a layer, a read cuts them out with slices instead of filtering."""
FETCH_BATCH_ROWS = 64 * 1024
"""Rows decoded at a time when fetching a few rows: a fetch stops at the last row it needs."""
FETCH_BUFFER_BYTES = 64 * 1024
"""A fetch reads a layer's pages through a buffer of this size as it decodes them (measured at 10M rows: the
first rows of a row group in 2.8 ms instead of 4.6-6.3 ms with pyarrow's default whole-chunk reads; 2,000
scattered rows in 0.61 s instead of 0.77 s)."""
COUNT_BATCH_ROWS = 1024 * 1024
"""Rows per batch when counting a column's values (one row group of a layer written by a commit)."""
READ_CHUNK = 1024 * 1024
"""Index entries read at once by a pass over a whole index (24 MiB)."""
MOSTLY_DISTINCT = 4
"""A text column asked for as dictionary codes whose row group holds more than one distinct value per this many
rows is decoded plainly from the next row group on: Parquet stores a column of mostly distinct values (ids,
paths) plainly, and pyarrow then builds a dictionary of every value, about 7x the plain decode (measured:
10M unique ids, 2.5 s against 0.33 s; 10M labels of 20 classes, 0.05 s against 0.24 s)."""


def _hidden_of(hidden: Future[dict[int, np.ndarray]], layer_no: int) -> np.ndarray:
    return hidden.result()[layer_no]


def _visible_row_groups(pool: ThreadPoolExecutor, path: str, columns: list[str] | None,
                        hidden: Callable[[], np.ndarray]) -> list[Future[pa.Table]]:
    """Every row group of ``path``, decoded on ``pool`` (each on one thread: two row groups at once use
    both cores better than one decoded with threads), without the sorted row positions ``hidden()``
    returns. A task asks for them only once its row group is decoded (so they may still be being worked
    out meanwhile) and drops the decoded group as soon as it is cut: memory holds the result, not a
    second copy of the layer."""
    metadata = pq.ParquetFile(path).metadata
    starts = np.cumsum([0] + [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)])

    def one(group: int) -> pa.Table:
        # Each task opens its own file: a ParquetFile must not be shared between threads.
        rows = pq.ParquetFile(path).read_row_group(group, columns=columns, use_threads=False)
        return _without(rows.replace_schema_metadata(None), int(starts[group]), hidden())

    return [pool.submit(one, group) for group in range(metadata.num_row_groups)]


def _without(rows: pa.Table, start: int, hidden: np.ndarray) -> pa.Table:
    """``rows`` (file rows ``start..``) without the file's sorted row positions ``hidden``: cut out with
    zero-copy slices when the layer hides few rows, else filtered."""
    gone = hidden[np.searchsorted(hidden, start):np.searchsorted(hidden, start + rows.num_rows)] - start
    if not len(gone):
        return rows
    if len(hidden) <= SLICE_LIMIT:
        edges = np.concatenate([[-1], gone, [rows.num_rows]])
        return pa.concat_tables([rows.slice(a + 1, b - a - 1)
                                 for a, b in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True)
                                 if b - a > 1] or [rows.slice(0, 0)])
    keep = np.ones(rows.num_rows, bool)
    keep[gone] = False
    return rows.filter(arrow_array(keep))


@dataclass
class Lookup:
    """Where each looked-up key hash lives: layer number (ABSENT if not present), row position in
    that layer's file, row hash."""

    layer: np.ndarray
    position: np.ndarray
    rh: np.ndarray

    @property
    def present(self) -> np.ndarray:
        found: np.ndarray = self.layer != ABSENT
        return found

    def take(self, which: np.ndarray) -> Lookup:
        """The entries at ``which`` (indices or a boolean mask)."""
        return Lookup(self.layer[which], self.position[which], self.rh[which])


@dataclass
class Located:
    """Every visible row of a snapshot, sorted by id, with where it is stored."""

    kh: np.ndarray
    where: Lookup

    @property
    def rh(self) -> np.ndarray:
        return self.where.rh


class ManifestReader:
    """Reads one manifest's rows and indexes."""

    def __init__(self, store: ObjectStore, cache: IndexCache, manifest: Manifest) -> None:
        self.store = store
        self.cache = cache
        self.manifest = manifest
        self.keys = manifest.key_columns

    def rows_index(self, layer_no: int) -> LayerIndex:
        sha = self.manifest.layers[layer_no].rows
        return self.cache.rows_index(sha, self.keys) if sha else LayerIndex.empty()

    def deletes_index(self, layer_no: int) -> np.ndarray:
        sha = self.manifest.layers[layer_no].deletes
        return self.cache.deletes_index(sha, self.keys) if sha else np.zeros(0, np.uint64)

    def lookup(self, kh: np.ndarray) -> Lookup:
        """Resolve each key hash to the layer and row holding its current value."""
        n = len(kh)
        result = Lookup(np.full(n, ABSENT, np.int64), np.zeros(n, np.int64), np.zeros(n, np.uint64))
        pending = np.arange(n)
        for layer_no in range(len(self.manifest.layers) - 1, -1, -1):
            if not pending.size:
                break
            wanted = kh[pending]
            deleted, _ = in_sorted(wanted, self.deletes_index(layer_no))
            index = self.rows_index(layer_no)
            found, _, records = index.find(wanted)
            hit = pending[found]
            entries = records[found]
            result.layer[hit] = layer_no
            result.position[hit] = entries["row"]
            result.rh[hit] = entries["rh"]
            pending = pending[~(found | deleted)]
        return result

    def has_alt_ids(self) -> bool:
        """Whether any layer stores rows under alternate ids (see :mod:`registry.snapshots.identity`)."""
        return any(len(self.rows_index(n).alt) for n in range(len(self.manifest.layers)))

    def cell_hashes(self, found: Lookup, columns: Sequence[str]) -> dict[str, np.ndarray] | None:
        """Per-column value hashes of looked-up rows, or None if an index lacks a column."""
        out = {c: np.zeros(len(found.layer), np.uint64) for c in columns}
        for layer_no in unique_sorted(found.layer[found.present]):
            index = self.rows_index(int(layer_no))
            if not set(columns) <= index.cells.keys():
                return None
            which = np.flatnonzero(found.layer == layer_no)
            for column, hashes in index.cells_at(found.position[which], columns).items():
                out[column][which] = hashes
        return out

    def hidden_entries(self) -> list[np.ndarray]:
        """Per layer, the index entries hidden by a layer above (by an upsert or a delete).

        The keys of the layers above are few, so each is looked up in the layer below: the cost
        follows the size of the upper layers, not of the base.
        """
        layers = self.manifest.layers
        hidden_by_layer: list[np.ndarray] = [np.zeros(0, np.int64)] * len(layers)
        hidden = np.zeros(0, np.uint64)
        for layer_no in range(len(layers) - 1, -1, -1):
            index = self.rows_index(layer_no)
            if hidden.size:
                found, entry = index.search(hidden)
                hidden_by_layer[layer_no] = entry[found]
            if layer_no:
                hidden = union_sorted(hidden, index.kh, self.deletes_index(layer_no))
        return hidden_by_layer

    def read_order_index(self) -> tuple[np.ndarray, np.ndarray]:
        """The ids and row hashes of every visible row, in :meth:`read` order (each layer's visible rows in
        file order, oldest layer first): aligns a full read with ids without sorting it."""
        layers = self.manifest.layers
        hidden_by_layer = self.hidden_entries() if len(layers) > 1 else [np.zeros(0, np.int64)]
        ids, rhs = [], []
        for n, hidden in enumerate(hidden_by_layer):
            if not layers[n].rows:
                continue
            index = self.rows_index(n)
            file_ids = np.empty(len(index), np.uint64)
            file_rh = np.empty(len(index), np.uint64)
            for start in range(0, len(index), READ_CHUNK):  # plain reads: the entries file stays out of RSS
                part = read_part(index.entries, start, start + READ_CHUNK)
                file_ids[part["row"]] = part["kh"]
                file_rh[part["row"]] = part["rh"]
            if len(hidden):
                keep = np.ones(len(index), bool)
                keep[self.hidden_rows(n, hidden)] = False
                file_ids, file_rh = file_ids[keep], file_rh[keep]
            ids.append(file_ids)
            rhs.append(file_rh)
        if not ids:
            return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
        return np.concatenate(ids), np.concatenate(rhs)

    def visible_masks(self) -> list[np.ndarray]:
        """Per layer, which of its index entries are visible (not hidden by a layer above)."""
        masks = []
        for layer_no, hidden in enumerate(self.hidden_entries()):
            mask = np.ones(len(self.rows_index(layer_no)), bool)
            mask[hidden] = False
            masks.append(mask)
        return masks

    def effective_index(self) -> tuple[np.ndarray, np.ndarray]:
        """``(kh, rh)`` of every visible row, sorted by ``kh``.

        The base's visible entries are already sorted; the (small) upper layers are sorted among
        themselves and inserted, so no n-sized sort is needed.
        """
        layers = self.manifest.layers
        base = self.rows_index(0)
        if len(layers) == 1:
            return np.asarray(base.kh), base.rh_by_key()
        located = self.effective_entries()
        return located.kh, located.rh

    def effective_entries(self) -> Located:
        """Every visible row's id, row hash, layer and file position, sorted by id: a lookup of every id at
        once, at the cost of one pass over the indexes (no binary search per id)."""
        layers = self.manifest.layers
        masks = self.visible_masks() if len(layers) > 1 else [np.ones(len(self.rows_index(0)), bool)]
        parts = []
        for layer_no, mask in enumerate(masks):
            index = self.rows_index(layer_no)
            parts.append((np.asarray(index.kh)[mask], index.rh_by_key()[mask],
                          np.full(int(mask.sum()), layer_no, np.int64), np.asarray(index.rows, np.int64)[mask]))
        base_kh, base_rh, base_layer, base_position = parts[0]
        if len(parts) == 1:
            return Located(base_kh, Lookup(base_layer, base_position, base_rh))
        upper = [np.concatenate([part[i] for part in parts[1:]]) for i in range(4)]
        order = np.argsort(upper[0], kind="stable")
        kh_up, rh_up, layer_up, position_up = (array[order] for array in upper)
        at = np.searchsorted(base_kh, kh_up)
        return Located(np.insert(base_kh, at, kh_up), Lookup(np.insert(base_layer, at, layer_up),
                                                              np.insert(base_position, at, position_up),
                                                              np.insert(base_rh, at, rh_up)))

    def schema(self) -> pa.Schema:
        """The Arrow schema of the rows (from the base layer's Parquet footer)."""
        return pq.read_schema(self.layer_path(0)).remove_metadata()

    def layer_path(self, layer_no: int) -> str:
        sha = self.manifest.layers[layer_no].rows
        assert sha is not None
        return str(self.cache.object_path(sha, f"rows of layer {layer_no}"))

    def read(self, columns: Sequence[str] | None = None) -> pa.Table:
        """Every visible row: each layer's visible rows in file order, oldest layer first.

        The layers' row groups decode on two threads while this thread works out which rows the upper
        layers hide, so finding them adds little to the read itself.
        """
        layers = self.manifest.layers
        cols = list(columns) if columns is not None else None
        if len(layers) == 1 and layers[0].rows:
            return pq.read_table(self.layer_path(0), columns=cols).replace_schema_metadata(None)
        numbers = [n for n, layer in enumerate(layers) if layer.rows]
        paths = {n: self.layer_path(n) for n in numbers}  # every object verified before any decoding
        hidden: Future[dict[int, np.ndarray]] = Future()
        with ThreadPoolExecutor(max_workers=2) as pool:
            groups = [future for n in numbers
                      for future in _visible_row_groups(pool, paths[n], cols, partial(_hidden_of, hidden, n))]
            try:
                entries = self.hidden_entries()
                hidden.set_result({n: self.hidden_rows(n, entries[n]) for n in numbers})
            except BaseException as exc:
                hidden.set_exception(exc)
                raise
            parts = [future.result() for future in groups]
        return pa.concat_tables(parts) if parts else pa.table({})

    def count_values(self, column: str, as_type: pa.DataType | None = None) -> dict[Any, int]:
        """How many visible rows hold each value of ``column`` (cast to ``as_type``; None for null), counted
        a batch at a time (:meth:`iter_rows`): memory is one row group, whatever the table's size."""
        counts: dict[Any, int] = {}
        # Text is read as Parquet stores it (dictionary codes, where the writer encoded them so), not as one
        # string per row: a label column of 10M rows counts in 0.15 s instead of 0.5-0.8 s.
        as_codes = [column] if is_text(self.schema().field(column).type) else []
        for batch in self.iter_rows([column], COUNT_BATCH_ROWS, read_dictionary=as_codes):
            _count_into(counts, batch.column(0), as_type)
        return counts

    def hidden_rows(self, layer_no: int, hidden_entries: np.ndarray) -> np.ndarray:
        """Index entries as sorted row positions in the layer's file."""
        return np.sort(gather(self.rows_index(layer_no).rows, hidden_entries).astype(np.int64))

    def iter_rows(self, columns: list[str] | None, batch_rows: int,
                  hidden_by_layer: list[np.ndarray] | None = None,
                  read_dictionary: Sequence[str] = ()) -> Iterator[pa.RecordBatch]:
        """Every visible row, in :meth:`read` order, as batches of at most ``batch_rows``: memory is one row
        group whatever the snapshot's size. ``hidden_by_layer``: :meth:`hidden_entries`, if already known;
        ``read_dictionary``: text columns to give as dictionary arrays (see :meth:`visible_row_groups`)."""
        for rows in self.iter_row_groups(columns, hidden_by_layer, read_dictionary):
            if rows.num_columns and rows.column(0).num_chunks > 1:
                # Hidden rows cut out by slices: one batch per slice otherwise (2,000 hidden rows, 2,000
                # batches), each costing its consumer a call; one copy of the row group is cheaper.
                rows = rows.combine_chunks()
            yield from rows.to_batches(max_chunksize=batch_rows)

    def iter_row_groups(self, columns: list[str] | None = None,
                        hidden_by_layer: list[np.ndarray] | None = None,
                        read_dictionary: Sequence[str] = ()) -> Iterator[pa.Table]:
        """Every visible row, in :meth:`read` order, one layer's row group (less its hidden rows) at a time.
        ``hidden_by_layer``: :meth:`hidden_entries`, if already known; ``read_dictionary``: as for
        :meth:`visible_row_groups`."""
        layers = self.manifest.layers
        if hidden_by_layer is None and len(layers) > 1:
            hidden_by_layer = self.hidden_entries()
        for n, layer in enumerate(layers):
            if layer.rows:
                hidden = self.hidden_rows(n, hidden_by_layer[n]) if hidden_by_layer else np.zeros(0, np.int64)
                yield from self.visible_row_groups(n, hidden, columns, read_dictionary)

    def visible_row_groups(self, layer_no: int, hidden: np.ndarray, columns: list[str] | None,
                           read_dictionary: Sequence[str] = ()) -> Iterator[pa.Table]:
        """Each row group of one layer's file without the sorted row positions ``hidden``, in file order:
        one row group is decoded at a time, so memory is one row group. (``ParquetFile.iter_batches`` over a
        whole file keeps allocating as it goes, about 13 bytes per row of the benchmark table with
        pyarrow 26, so it is not used for whole files.) The text columns ``read_dictionary`` names come as
        dictionary arrays, undecoded (each row group's own dictionary), until a row group shows one to hold
        mostly distinct values (see :data:`MOSTLY_DISTINCT`): that column comes as plain text from the next
        row group on, so a consumer must take both forms."""
        path = self.layer_path(layer_no)
        as_codes = list(read_dictionary)
        parquet = pq.ParquetFile(path, read_dictionary=as_codes or None)
        start = 0
        for group in range(parquet.num_row_groups):
            rows = parquet.read_row_group(group, columns=columns).replace_schema_metadata(None)
            distinct = [c for c in as_codes if _mostly_distinct(rows.column(c))]
            if distinct:
                as_codes = [c for c in as_codes if c not in distinct]
                parquet = pq.ParquetFile(path, read_dictionary=as_codes or None)
            yield _without(rows, start, hidden)
            start += rows.num_rows

    def fetch_keys(self, kh: np.ndarray, found: Lookup | None = None) -> pa.Table:
        """The key columns of the current rows of ``kh`` (absent keys skipped), in ``kh`` order: from the
        indexes' memory-mapped key columns (O(k) pages), else from the layers' Parquet row groups."""
        found = found if found is not None else self.lookup(kh)
        layers = unique_sorted(found.layer[found.present])
        indexes = {int(n): self.rows_index(int(n)) for n in layers}
        if any(index.keys is None for index in indexes.values()):
            return self.fetch(kh, columns=list(self.keys), found=found)
        parts: list[tuple[np.ndarray, pa.Table]] = []
        for n, index in indexes.items():
            which = np.flatnonzero(found.layer == n)
            parts.append((which, index.take_keys(found.position[which])))
        if not parts:
            return self.fetch(kh[:0], columns=list(self.keys))
        order_in = np.concatenate([which for which, _ in parts])
        table = pa.concat_tables([t for _, t in parts], promote_options="permissive")
        return table.take(arrow_array(np.argsort(order_in, kind="stable")))

    def fetch(self, kh: np.ndarray, columns: Sequence[str] | None = None, found: Lookup | None = None
              ) -> pa.Table:
        """The current rows of the given key hashes (absent keys are skipped), in ``kh`` order.

        Only the row groups that hold a wanted row are read. ``found`` is ``lookup(kh)`` if the
        caller has it already.
        """
        found = found if found is not None else self.lookup(kh)
        parts: list[tuple[np.ndarray, pa.Table]] = []
        for layer_no in unique_sorted(found.layer[found.present]):
            which = np.flatnonzero(found.layer == layer_no)
            positions = found.position[which]
            parts.append((which, self._take(int(layer_no), positions, columns)))
        if not parts:
            empty = self.schema().empty_table()
            return empty.select(list(columns)) if columns is not None else empty
        order_in = np.concatenate([which for which, _ in parts])
        table = pa.concat_tables([t for _, t in parts])
        return table.take(arrow_array(np.argsort(order_in, kind="stable")))

    def _take(self, layer_no: int, positions: np.ndarray, columns: Sequence[str] | None) -> pa.Table:
        """Rows at ``positions`` (in that order), decoding each needed row group only as far as the
        last wanted row in it, and keeping only the wanted rows of one group before decoding the next:
        memory is one row group and the rows taken, however scattered they are."""
        # Read as decoded, not each column chunk whole first: a fetch usually stops early in a row group.
        parquet = pq.ParquetFile(self.layer_path(layer_no), buffer_size=FETCH_BUFFER_BYTES, pre_buffer=False)
        cols = list(columns) if columns is not None else None
        bounds = np.cumsum([0] + [parquet.metadata.row_group(i).num_rows
                                  for i in range(parquet.metadata.num_row_groups)])
        group_of = np.searchsorted(bounds, positions, side="right") - 1
        pieces: list[pa.Table] = []
        taken_from: list[np.ndarray] = []
        for group in unique_sorted(group_of):
            here = np.flatnonzero(group_of == group)
            wanted = positions[here] - bounds[group]
            needed = int(wanted.max()) + 1
            batches = []
            for batch in parquet.iter_batches(batch_size=FETCH_BATCH_ROWS, row_groups=[int(group)], columns=cols):
                batches.append(batch)
                needed -= batch.num_rows
                if needed <= 0:
                    break
            pieces.append(pa.Table.from_batches(batches, schema=batches[0].schema).take(arrow_array(wanted)))
            taken_from.append(here)
        table = pa.concat_tables(pieces)
        order = np.argsort(np.concatenate(taken_from), kind="stable")
        return table.take(arrow_array(order)).replace_schema_metadata(None)


def _mostly_distinct(column: pa.ChunkedArray) -> bool:
    """Whether ``column``, read as dictionary codes, holds more than one distinct value per
    :data:`MOSTLY_DISTINCT` rows."""
    if not pa.types.is_dictionary(column.type):
        return False
    return sum(len(chunk.dictionary) for chunk in column.chunks) * MOSTLY_DISTINCT > len(column)


def _count_into(counts: dict[Any, int], values: pa.Array | pa.ChunkedArray, as_type: pa.DataType | None) -> None:
    """Add how often each of ``values`` occurs to ``counts`` (a dictionary array: counted by its codes, then the
    few distinct values decoded; casting after counting adds up values that cast alike, as before it would)."""
    found = pc.value_counts(values)
    distinct = found.field("values")
    if pa.types.is_dictionary(distinct.type):
        distinct = distinct.dictionary_decode()
    if as_type is not None and distinct.type != as_type:
        distinct = distinct.cast(as_type)
    for value, count in zip(distinct.to_pylist(), found.field("counts").to_pylist(), strict=True):
        counts[value] = counts.get(value, 0) + count
