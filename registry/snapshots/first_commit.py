"""A dataset's first commit of a Parquet file, streamed: memory is a row group and a sort bucket, not the table.

The general commit path (:mod:`registry.snapshots.commit`) holds the input, its hashes and the sort of its
ids in memory, about 170 bytes a row. A first commit compares with nothing, so it needs none of that:

1. Each ``ROW_GROUP_ROWS`` rows of the input are read, normalized, validated and hashed, then written as
   one row group of the rows object (on a second thread, while the next part is read and hashed), with
   their key columns and cell hashes appended to the index's files.
2. Each row's ``(id, row, row hash)`` entry goes to one of ``BUCKETS`` scratch files, chosen by the id's
   top bits.
3. The buckets are sorted one at a time and written in order: that is the index's sorted entries.
   Equal ids always meet in one bucket, where the key values decide (invariant 11): equal values are
   duplicate keys (refused, as the general path refuses them), distinct ones a hash collision, whose
   later keys take alternate ids exactly as :func:`registry.snapshots.identity.assign_ids` gives them.

When the input is already what a rows object is (zstd, the normalized schema, row groups of at most
``ROW_GROUP_ROWS`` rows: :func:`adoptable`), its bytes are copied into the store as they are, and the
rows are read back from that copy for the passes above: no row group is encoded again, and what was
hashed and checked is, byte for byte, what is stored, whatever happens to the input meanwhile.

The rows object is named (``put``) only after every check passed, so a refused input leaves nothing in
the store; the commit's crash points are those of :func:`registry.snapshots.layer_write.write_layer`.
"""

from __future__ import annotations

import bisect
import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from registry.context import Context
from registry.errors import InvalidInput
from registry.lineage.metrics import ColumnMetrics
from registry.prefetch import prefetched
from registry.snapshots.hashing import hash_table
from registry.snapshots.id_sort import argsort_ids
from registry.snapshots.identity import assign_alternate_ids, duplicates_message, rows_equal, settle_group
from registry.snapshots.index_files import EntriesWriter, NpyWriter, merge_entries
from registry.snapshots.inputs import InputLimits, check_values, first_line
from registry.snapshots.layer_write import StagedLayer, stack_manifest
from registry.snapshots.layers import (
    CELLS_FILE,
    ENTRY_DTYPE,
    KEYS_FILE,
    MAX_CELL_COLUMNS,
    ROW_GROUP_ROWS,
    alt_metadata_for,
    cell_dtype,
    cell_records,
    read_keys,
    take_rows,
)
from registry.snapshots.manifest import Layer
from registry.snapshots.tables import (
    check_key_values,
    empty_key_message,
    first_empty,
    first_null,
    is_parquet_path,
    normalize,
    null_keys_message,
    open_parquet_input,
    require_key_columns,
)
from registry.storage.base import HashingFile, ObjectInfo

__all__ = ["BUCKET_BITS", "FirstLayer", "adoptable", "input_schema", "streams", "write_first_layer"]

BUCKET_BITS = 6
"""The sort buckets are the ids' top 6 bits: 64 buckets, each about 1/64 of the entries (37 MiB at 100M rows)."""
BUCKETS = 1 << BUCKET_BITS
_SHIFT = np.uint64(64 - BUCKET_BITS)


def streams(source: object, has_parent: bool) -> bool:
    """Whether a commit of ``source`` takes this path: a Parquet file, and no parent to compare with."""
    return not has_parent and is_parquet_path(source)


def _stored_schema(parquet: pq.ParquetFile) -> pa.Schema:
    """The schema the file's rows have once normalized (as a rows object stores them)."""
    return normalize(parquet.schema_arrow.empty_table()).schema


def input_schema(path: Path, limits: InputLimits) -> pa.Schema:
    """The schema the input's rows will have once normalized, read from its footer.

    Raises:
        InvalidInput: the file is missing, not Parquet, or has a duplicate or unsupported column.
        TooLarge: its footer declares more rows or bytes than ``limits`` allow.
    """
    parquet = open_parquet_input(path, limits)
    try:
        return _stored_schema(parquet)
    finally:
        parquet.close()


@dataclass(frozen=True)
class FirstLayer:
    """What the streamed commit wrote, and what it counted on the way."""

    staged: StagedLayer
    rows: int
    column_metrics: dict[str, dict[str, Any]]


def write_first_layer(ctx: Context, path: Path, keys: list[str], *, schema_fingerprint: str, limits: InputLimits,
                      metrics: bool, point: Callable[[str], None], note: Callable[[str], None]) -> FirstLayer:
    """Write the Parquet file ``path`` as a dataset's base layer, its index and its manifest, a row group
    at a time. ``metrics``: count the lineage column metrics on the way.

    Raises:
        InvalidInput: the file cannot be read, a key column is missing, a key is null, empty or given twice,
            or the values do not validate.
        TooLarge: the rows decode to more than ``limits`` allow.
    """
    parquet = open_parquet_input(path, limits)
    try:
        stored: tuple[ObjectInfo, _Written, Path] | None = None
        if adoptable(parquet, _stored_schema(parquet)):
            try:
                stored = _to_store(ctx, lambda staged, scratch: _adopt(ctx, parquet, path, keys, scratch, staged,
                                                                       limits, metrics, note))
            except _FooterNeeded:
                note("colliding key hashes: the rows object is written anew, to name the alternate ids in its footer")
        if stored is None:
            stored = _to_store(ctx, lambda staged, scratch: _Writer(ctx, parquet, path, keys, scratch, limits,
                                                                    metrics, note).run(staged))
    finally:
        parquet.close()
    info, written, scratch = stored
    ctx.cache.adopt_folder(scratch, info.sha256)
    point("after-change-object")
    layer = Layer(rows=info.sha256, rows_count=written.rows, deletes=None, deletes_count=0)
    staged_layer = stack_manifest(ctx, layer, (), keys=keys, schema_fingerprint=schema_fingerprint,
                                  total_rows=written.rows, bytes_written=info.size, point=point)
    return FirstLayer(staged_layer, written.rows, written.metrics)


ADOPT_MIN_GROUP_ROWS = ROW_GROUP_ROWS // 16
"""A file whose row groups (all but its last) hold fewer rows than this is written anew: reading many
small groups costs more than the copy saves."""


def adoptable(parquet: pq.ParquetFile, schema: pa.Schema) -> bool:
    """Whether the Parquet file's bytes can be the rows object as they are: every column chunk zstd (as
    the registry writes objects), the Arrow schema stored in its footer and equal to ``schema`` (the
    normalized one: no metadata, every column nullable, no dictionaries), and row groups of at most
    ``ROW_GROUP_ROWS`` rows (reads and fetches decode a row group at a time) and, but for the last, at
    least ``ADOPT_MIN_GROUP_ROWS``."""
    meta = parquet.metadata
    if b"ARROW:schema" not in (meta.metadata or {}) or not parquet.schema_arrow.equals(schema, check_metadata=True):
        return False
    groups = [meta.row_group(g) for g in range(meta.num_row_groups)]
    if any(g.num_rows > ROW_GROUP_ROWS for g in groups) or any(g.num_rows < ADOPT_MIN_GROUP_ROWS for g in groups[:-1]):
        return False
    return all(g.column(c).compression == "ZSTD" for g in groups for c in range(g.num_columns))


class _FooterNeeded(Exception):
    """Colliding key hashes: the alternate ids go into the rows object's footer, so the input's bytes cannot
    be stored as they are."""


def _to_store(ctx: Context, fill: Callable[[HashingFile, Path], _Written]) -> tuple[ObjectInfo, _Written, Path]:
    """Run ``fill`` on a staged rows object and a scratch index folder, then put the object in the store;
    on any error neither is left behind."""
    scratch = ctx.cache.new_staging_folder()
    try:
        with ctx.store.staging_file(".parquet") as staged:
            written = fill(staged, scratch)
            info = ctx.store.put(staged)
    except BaseException:
        ctx.cache.discard(scratch)
        raise
    return info, written, scratch


_COPY_CHUNK = 8 << 20


def _adopt(ctx: Context, parquet: pq.ParquetFile, path: Path, keys: list[str], scratch: Path, staged: HashingFile,
           limits: InputLimits, metrics: bool, note: Callable[[str], None]) -> _Written:
    """Copy the input's bytes into ``staged``, then index the copy (never the input again: the rows hashed
    and checked are the bytes stored).

    Raises:
        InvalidInput: the file changed while it was copied, or as :class:`_Writer` raises.
        _FooterNeeded: key hashes collide.
    """
    note(f"storing {path.name}'s bytes as they are (zstd Parquet in row groups the registry reads)")
    with open(path, "rb") as source:
        shutil.copyfileobj(source, staged, _COPY_CHUNK)
    staged.flush()
    changed = InvalidInput(f"{path}: the file changed while it was read; commit it again once it is written")
    try:
        copy = pq.ParquetFile(staged.path, buffer_size=1 << 20, pre_buffer=False)
    except (pa.ArrowException, OSError) as exc:
        raise changed from exc
    try:
        if not copy.metadata.equals(parquet.metadata):
            raise changed
        return _Writer(ctx, copy, path, keys, scratch, limits, metrics, note, read_from=staged.path).run(None)
    finally:
        copy.close()


@dataclass(frozen=True)
class _Written:
    rows: int
    metrics: dict[str, dict[str, Any]]


class _Writer:
    """One streamed first commit: the passes over the input and over the sort buckets."""

    def __init__(self, ctx: Context, parquet: pq.ParquetFile, path: Path, keys: list[str], folder: Path,
                 limits: InputLimits, metrics: bool, note: Callable[[str], None], *,
                 read_from: Path | None = None) -> None:
        self.ctx, self.parquet, self.path, self.keys, self.folder = ctx, parquet, path, keys, folder
        self.read_from = read_from or path
        """The file ``parquet`` reads: the input, or its copy in the store's staging area."""
        self.limits, self.note = limits, note
        self.what = "input"
        self.schema = _stored_schema(parquet)
        require_key_columns(self.schema.empty_table(), keys, self.what)
        self.rows = parquet.metadata.num_rows
        values = [c for c in self.schema.names if c not in keys]
        self.cell_columns = values if len(values) <= MAX_CELL_COLUMNS else []
        self.metrics = ColumnMetrics(self.schema.names, self.rows,
                                     ctx.settings.lineage.metrics_max_rows) if metrics else None

    def run(self, staged: HashingFile | None) -> _Written:
        """Write the rows object into ``staged`` and the index into the scratch folder; with no ``staged``,
        only the index (the input's bytes are the rows object).

        Raises:
            _FooterNeeded: with no ``staged``, key hashes collide (their alternate ids need a footer).
        """
        buckets = _Buckets(self.folder / "buckets")
        try:
            if staged is None:
                done = self._read_input(None, buckets)
                if self._sort(buckets) is not None:
                    raise _FooterNeeded
            else:
                with pq.ParquetWriter(staged, self.schema, compression="zstd") as writer:
                    done = self._read_input(writer, buckets)
                    alternate = self._sort(buckets)
                    if alternate is not None:
                        writer.add_key_value_metadata(alt_metadata_for(*alternate))
        finally:
            buckets.remove()
        return _Written(done, self.metrics.result() if self.metrics is not None else {})

    def _parts(self) -> Iterator[pa.Table]:
        """The input's rows, ``ROW_GROUP_ROWS`` at a time (the last part may be shorter), normalized and
        validated: a row group of the input is never held beyond the part it fills."""
        pending: list[pa.RecordBatch] = []
        held = decoded = 0
        source_schema = self.parquet.schema_arrow
        for group in range(self.parquet.metadata.num_row_groups):
            for batch in self._group_batches(group):
                pending.append(batch)
                held += batch.num_rows
                while held >= ROW_GROUP_ROWS:
                    table = pa.Table.from_batches(pending, source_schema)
                    part = self._checked(table.slice(0, ROW_GROUP_ROWS), decoded)
                    decoded += part.nbytes
                    yield part
                    rest = table.slice(ROW_GROUP_ROWS)
                    pending, held = rest.to_batches(), rest.num_rows
        if held:
            yield self._checked(pa.Table.from_batches(pending, source_schema), decoded)

    def _group_batches(self, group: int) -> Iterator[pa.RecordBatch]:
        """The input's row group ``group``, a batch at a time; a damaged file's error as
        :func:`registry.snapshots.tables.read_table_file` words it (a page that does not decode is bad
        input, not an internal error)."""
        try:
            yield from self.parquet.iter_batches(batch_size=ROW_GROUP_ROWS, row_groups=[group])
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise InvalidInput(f"{self.path}: cannot read as parquet: {first_line(exc)}") from exc

    def _checked(self, rows: pa.Table, decoded: int) -> pa.Table:
        """``rows`` normalized, once their values validate and the decoded size so far fits the limits."""
        part = normalize(rows)
        self.limits.check(self.rows, decoded + part.nbytes, str(self.path))
        check_values(part, str(self.path))
        return part

    def _read_input(self, writer: pq.ParquetWriter | None, buckets: _Buckets) -> int:
        """Pass 1: every part hashed and written (rows unless ``writer`` is None, key columns, cells, bucketed
        entries)."""
        keys_path = self.folder / KEYS_FILE
        key_schema = pa.schema([self.schema.field(k) for k in self.keys])
        cells = NpyWriter(self.folder / f"{CELLS_FILE}.npy", cell_dtype(len(self.cell_columns)), self.rows) \
            if self.cell_columns else None
        offset = 0
        try:
            with pa.OSFile(str(keys_path), "wb") as sink, pa.ipc.new_file(sink, key_schema) as key_writer, \
                    ThreadPoolExecutor(max_workers=1) as pool:
                encoding: Future[None] | None = None
                for part in prefetched(self._parts()):  # the next part decodes while this one is hashed
                    self._check_keys(part)
                    kh, rh, hashes = hash_table(part, self.keys)
                    entries = buckets.split(kh, offset, rh)
                    if encoding is not None:
                        encoding.result()
                    # Written on the second thread (every write releases the GIL) while the next part is read.
                    encoding = pool.submit(_write_part, writer, key_writer, part, self.keys, cells,
                                           [hashes[c] for c in self.cell_columns], buckets, entries)
                    if self.metrics is not None:
                        self.metrics.add(part)
                    offset += part.num_rows
                    self.note(f"read {offset:,} of {self.rows:,} rows")
                if encoding is not None:
                    encoding.result()
            if offset != self.rows:
                raise InvalidInput(f"{self.path}: its footer declares {self.rows:,} rows, but it holds {offset:,}")
        except BaseException:
            if cells is not None:
                cells.abandon()
            raise
        if cells is not None:
            cells.close()
        (self.folder / "columns.json").write_text(json.dumps(self.cell_columns))
        return offset

    def _check_keys(self, part: pa.Table) -> None:
        """Refuse null or empty keys with the error the whole input would get (the first column, its count)."""
        try:
            check_key_values(part, self.keys, self.what)
        except InvalidInput:
            raise self._key_error() from None

    def _key_error(self) -> InvalidInput:
        """The error :func:`check_key_values` gives the whole input, found one key column and row group at a time
        (or the damaged file's, if a row group does not decode)."""
        try:
            return self._first_key_problem()
        except (pa.ArrowException, OSError, ValueError) as exc:
            return InvalidInput(f"{self.path}: cannot read as parquet: {first_line(exc)}")

    def _first_key_problem(self) -> InvalidInput:
        # A file of its own: the next part may be decoding from ``self.parquet`` on the prefetch thread.
        with pq.ParquetFile(self.read_from) as parquet:
            return self._key_problem_in(parquet)

    def _key_problem_in(self, parquet: pq.ParquetFile) -> InvalidInput:
        groups = range(parquet.metadata.num_row_groups)
        for name in self.keys:
            nulls, first, empty, offset = 0, -1, None, 0
            for group in groups:
                column = normalize(parquet.read_row_group(group, columns=[name])).column(0)
                if column.null_count and first < 0:
                    first = offset + first_null(column)
                nulls += column.null_count
                at = first_empty(column) if empty is None else None
                if at is not None:
                    empty = offset + at
                offset += len(column)
            if nulls:
                return InvalidInput(null_keys_message(self.what, name, nulls, first))
            if empty is not None:
                return InvalidInput(empty_key_message(self.what, name, empty))
        return InvalidInput(f"{self.what}: a key changed while it was read")  # the file changed under us

    def _sort(self, buckets: _Buckets) -> tuple[np.ndarray, np.ndarray] | None:
        """Pass 2: each bucket sorted into the index's entries; equal ids settled by key values. Returns the
        (rows, alternate ids) of colliding keys, or None (almost always).

        Raises:
            InvalidInput: duplicate keys.
        """
        keys_table = read_keys(self.folder / KEYS_FILE)
        assert keys_table is not None
        ties = _Ties(keys_table, self.keys)
        with EntriesWriter(self.folder, self.rows) as entries:
            for number in range(BUCKETS):
                part = buckets.take(number)
                part = np.take(part, argsort_ids(part["kh"]))  # ten times faster than part[...] on records
                ties.settle(part, entries.written)
                entries.append(part)
        if ties.duplicates:
            ties.duplicates.sort()
            raise InvalidInput(duplicates_message(self.what, keys_table, [row for _at, row in ties.duplicates]))
        if not ties.movers:
            return None
        movers = sorted(ties.movers)
        shared = np.asarray([ties.movers[row] for row in movers], np.uint64)
        rows = np.asarray(movers, np.int64)
        sorted_ids = np.load(self.folder / "entries.npy", mmap_mode="r")["kh"]
        alternate = assign_alternate_ids(take_rows(keys_table, rows), shared, _SortedIds(sorted_ids), self.what)
        del sorted_ids
        self._move_entries(rows, alternate)
        np.save(self.folder / "alt.npy", np.sort(alternate))
        return rows, alternate

    def _move_entries(self, rows: np.ndarray, ids: np.ndarray) -> None:
        """Rewrite the sorted entries with the rows ``rows`` under their alternate ``ids``."""
        before = self.folder / "entries.unmoved.npy"
        (self.folder / "entries.npy").replace(before)
        old = np.load(before, mmap_mode="r")
        moving = np.isin(old["row"], rows.astype(np.uint64))
        at = np.flatnonzero(moving)
        moved = np.array(old[at])
        moved = moved[np.argsort(moved["row"], kind="stable")]  # aligned with rows (ascending)
        moved["kh"] = ids
        moved = moved[np.argsort(moved["kh"], kind="stable")]

        with EntriesWriter(self.folder, self.rows) as entries:
            for chunk in merge_entries(_unmoved(old, moving), moved):
                entries.append(chunk)
        del old
        before.unlink()


def _unmoved(entries: np.ndarray, moving: np.ndarray) -> Iterator[np.ndarray]:
    """``entries`` without the ``moving`` ones, a chunk at a time."""
    for start in range(0, len(entries), ROW_GROUP_ROWS):
        chunk = np.array(entries[start:start + ROW_GROUP_ROWS])
        yield np.compress(~moving[start:start + ROW_GROUP_ROWS], chunk)


def _write_part(writer: pq.ParquetWriter | None, key_writer: pa.ipc.RecordBatchFileWriter, part: pa.Table,
                keys: Sequence[str], cells: NpyWriter | None, cell_hashes: list[np.ndarray], buckets: _Buckets,
                entries: list[tuple[int, np.ndarray]]) -> None:
    """Write one part: a row group of the rows object (unless the input's bytes are stored as they are), its
    key columns, its cell hashes (as row records) and its entries."""
    if writer is not None:
        writer.write_table(part, row_group_size=ROW_GROUP_ROWS)
    key_writer.write_table(part.select(list(keys)))
    if cells is not None:
        cells.append(cell_records(cell_hashes))
    buckets.write(entries)


class _Buckets:
    """``BUCKETS`` scratch files of index entries, one per value of the ids' top bits."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir()
        self.folder = folder
        self._files = [open(folder / f"{n:02d}", "wb") for n in range(BUCKETS)]  # noqa: SIM115

    @staticmethod
    def split(ids: np.ndarray, first_row: int, rh: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """The entries of one part, whose rows start at ``first_row``, by bucket (rows ascending within each,
        as in the part)."""
        number = (ids >> _SHIFT).astype(np.uint8)
        order = np.argsort(number, kind="stable")  # a radix sort for 8-bit values
        entries = np.empty(len(ids), ENTRY_DTYPE)
        entries["kh"], entries["rh"] = np.take(ids, order), np.take(rh, order)  # take: faster than ids[order]
        entries["row"] = order
        entries["row"] += np.uint64(first_row)
        bounds = np.concatenate([[0], np.cumsum(np.bincount(number, minlength=BUCKETS))])
        return [(int(n), entries[bounds[n]:bounds[n + 1]]) for n in np.flatnonzero(np.diff(bounds))]

    def write(self, entries: list[tuple[int, np.ndarray]]) -> None:
        """Append entries from :meth:`split` to their buckets."""
        for number, part in entries:
            self._files[number].write(part.data)

    def take(self, number: int) -> np.ndarray:
        """Bucket ``number``'s entries (then its file is gone)."""
        self._files[number].close()
        path = self.folder / f"{number:02d}"
        entries = np.fromfile(path, ENTRY_DTYPE)
        path.unlink()
        return entries

    def remove(self) -> None:
        for handle in self._files:
            handle.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class _Ties:
    """Equal ids found while the buckets are sorted: duplicate keys, and colliding keys that must move."""

    def __init__(self, keys_table: pa.Table, keys: list[str]) -> None:
        self.keys_table, self.keys = keys_table, keys
        self.duplicates: list[tuple[int, int]] = []
        """(entry position of the group, row) of each duplicate key: the order the general path names them."""
        self.movers: dict[int, int] = {}
        """Row -> the id it shares with its group's keeper."""

    def settle(self, part: np.ndarray, position: int) -> None:
        """The groups of equal ids in ``part`` (sorted, starting at entry ``position``; rows ascending within a
        group). A group whose neighbours all hold equal key values is plain duplicates, decided in bulk; the
        rare group with distinct values goes through :func:`settle_group`."""
        ids = part["kh"]
        tie = np.flatnonzero(ids[1:] == ids[:-1])
        if not tie.size:
            return
        rows = part["row"].astype(np.int64)
        same = rows_equal(take_rows(self.keys_table, rows[tie]), take_rows(self.keys_table, rows[tie + 1]),
                          self.keys)
        opens = np.concatenate([[True], tie[1:] != tie[:-1] + 1])  # a tie that starts a group
        group_of = np.cumsum(opens) - 1
        starts = tie[opens]
        plain = np.logical_and.reduceat(same, np.flatnonzero(opens))
        duplicate = plain[group_of]
        self.duplicates += zip((position + starts[group_of[duplicate]]).tolist(), rows[tie + 1][duplicate].tolist(),
                               strict=True)
        ends = np.concatenate([tie[np.flatnonzero(opens)[1:] - 1], tie[-1:]]) + 2  # one past each group
        for group in np.flatnonzero(~plain).tolist():
            members = rows[starts[group]:ends[group]].tolist()
            moved, repeated = settle_group(members, self.keys_table)
            self.duplicates += [(position + int(starts[group]), row) for row in repeated]
            for row in moved:
                self.movers[row] = int(ids[starts[group]])


class _SortedIds:
    """The ids of the input (sorted, memory-mapped) and the alternate ids handed out so far: what a new
    alternate id must not be."""

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = ids
        self.added: set[int] = set()

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int):
            return False
        if value in self.added:
            return True
        at = bisect.bisect_left(self.ids, value)  # np.searchsorted would copy the strided memory-mapped column
        return at < len(self.ids) and int(self.ids[at]) == value

    def add(self, value: int) -> None:
        self.added.add(value)
