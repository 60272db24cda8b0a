"""Compaction: rewrite a snapshot's layers into fewer, without changing its id or content.

Compaction never runs inside a commit (design invariant 4). ``registry compact --auto`` (for cron) and
the worker of ``registry serve`` apply :func:`plan_compaction` to every branch head: upper layers are
merged with each other in size tiers, and the base is rewritten only once the layers above it hold
``compact_base_fraction`` of its rows, so the bytes compaction writes follow the change, not the table.

A merge streams: each layer's row groups are read one at a time, filtered of hidden rows and appended
to the new object, so memory is bounded by a row group and the index arrays (memory-mapped), whatever
the table's size. The new manifest replaces the old by compare-and-swap on the snapshot's manifest
column; a commit that read the old manifest keeps working (its objects stay referenced by its own
manifest). A crash at any point leaves the old manifest or the new one, plus unreferenced objects that
``gc`` removes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import update
from sqlmodel import col, select

from registry import catalog
from registry.arrays import arrow_array, unique_sorted
from registry.audit import log as audit
from registry.context import SYSTEM_ACTOR, Actor, Context
from registry.db import transaction
from registry.errors import Conflict, NotFound
from registry.failpoints import failpoint
from registry.models import DatasetRow, RefRow, SnapshotRow
from registry.refs import Ref
from registry.snapshots.history import resolve_ref
from registry.snapshots.index_files import EntriesWriter, NpyWriter, merge_entries
from registry.snapshots.index_trim import trim_indexes
from registry.snapshots.layer_reader import ManifestReader
from registry.snapshots.layers import (
    CELLS_FILE,
    ENTRY_DTYPE,
    KEYS_FILE,
    ROW_GROUP_ROWS,
    LayerIndex,
    alt_metadata_for,
    cell_dtype,
    cell_records,
    in_sorted,
    write_parquet_object,
)
from registry.snapshots.manifest import Layer, Manifest, load_manifest
from registry.snapshots.mapped_reads import gather, read_part

__all__ = ["COMPACT_POINTS", "CompactResult", "auto_compact", "compact", "compact_snapshot", "plan_compaction"]

COMPACT_POINTS = ("compact:after-layer-object", "compact:after-manifest", "compact:before-catalog-commit",
                  "compact:after-catalog-commit")
"""Crash points of a compaction, in order (see :mod:`registry.failpoints`)."""
FAN_IN = 4
"""Upper layers merge into the layer below them while it holds at most this many times their rows."""
CHUNK = 1 << 20
"""Index entries (and cells, and keys) copied at a time when writing a merged index: a chunk's copies and
its sort are what a compaction holds beyond one row group (about 100 MiB at 1Mi entries)."""


@dataclass(frozen=True)
class CompactResult:
    """Layers before and after; the snapshot id is the same."""

    dataset: str
    snapshot_id: str
    layers_before: int
    layers_after: int
    bytes_written: int
    ref: str | None = None
    full: bool = False

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _weight(layer: Layer) -> int:
    return layer.rows_count + layer.deletes_count


def _size_class(rows: int) -> int:
    return int(math.log(max(rows, 1), FAN_IN))


def plan_compaction(layers: Sequence[Layer], max_layers: int, base_fraction: float) -> int | None:
    """Which layers to merge: the index of the first one (0 rewrites the base too), or None for none.

    The base is rewritten once the layers above it hold ``base_fraction`` of its rows (0: never). Above
    it, layers merge in size tiers: once the newest ``FAN_IN`` or more layers are of one size class
    (``log_FAN_IN`` of their rows), they become one layer of the next class, so each row is rewritten
    O(log) times over a history. A head still above ``max_layers`` merges its newest layers to fit.
    """
    if len(layers) <= 1:
        return None
    upper = sum(_weight(layer) for layer in layers[1:])
    if base_fraction > 0 and upper >= base_fraction * max(layers[0].rows_count, 1):
        return 0
    top = _size_class(_weight(layers[-1]))
    first = len(layers) - 1
    while first > 1 and _size_class(_weight(layers[first - 1])) <= top:
        first -= 1
    if len(layers) - first < FAN_IN:
        if len(layers) <= max(max_layers, 2):
            return None
        first = max(max_layers, 2) - 1  # over the limit: merge the newest layers to fit
    # Like a carry: the merged layer absorbs the layers below it that are no bigger in class.
    merged = sum(_weight(layer) for layer in layers[first:])
    while first > 1 and _size_class(_weight(layers[first - 1])) <= _size_class(merged):
        first -= 1
        merged += _weight(layers[first])
    return first


def _positions(hidden_rows: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """New file positions of kept ``rows`` once the sorted ``hidden_rows`` are cut out."""
    return rows - np.searchsorted(hidden_rows, rows)


def _stream_rows(reader: ManifestReader, numbers: list[int], hidden: dict[int, np.ndarray],
                 writer: pq.ParquetWriter) -> None:
    """Append each layer's visible rows to ``writer``, one row group at a time."""
    for number in numbers:
        for rows in reader.visible_row_groups(number, hidden[number], None):
            if rows.num_rows:
                writer.write_table(rows.cast(writer.schema) if rows.schema != writer.schema else rows,
                                   row_group_size=ROW_GROUP_ROWS)


def _write_index(ctx: Context, reader: ManifestReader, numbers: list[int], hidden_entries: list[np.ndarray],
                 hidden: dict[int, np.ndarray], folder: Path) -> None:
    """The merged layer's index, written into ``folder`` front to back (see :mod:`registry.snapshots.index_files`).

    The largest layer's sorted entries are copied in chunks with the other layers' (few) entries inserted
    among them, so no table-sized sort or copy is held in memory.
    """
    indexes = _indexes(ctx, reader, numbers)
    offsets, total = _offsets(indexes, numbers, hidden)
    big = max(numbers, key=lambda n: len(indexes[n]))
    small_parts = []
    for n in numbers:
        if n == big:
            continue
        index = indexes[n]
        visible = np.ones(len(index), bool)
        visible[hidden_entries[n]] = False
        part = np.compress(visible, index.entries)  # compress and take: far faster than [...] on records
        part["row"] = _positions(hidden[n], part["row"].astype(np.int64)) + offsets[n]
        small_parts.append(part)
    small = np.concatenate(small_parts) if small_parts else np.zeros(0, ENTRY_DTYPE)
    small = np.take(small, np.argsort(small["kh"], kind="stable"))  # take: ten times faster on records
    index = indexes[big]
    big_hidden = np.zeros(len(index), bool)
    big_hidden[hidden_entries[big]] = True

    def big_chunks() -> Iterator[np.ndarray]:
        for start in range(0, len(index), CHUNK):
            chunk = read_part(index.entries, start, start + CHUNK)
            chunk = np.compress(~big_hidden[start:start + CHUNK], chunk)
            chunk["row"] = _positions(hidden[big], chunk["row"].astype(np.int64)) + offsets[big]
            yield chunk

    with EntriesWriter(folder, total) as entries:
        for merged in merge_entries(big_chunks(), small):
            entries.append(merged)
    columns = [c for c in indexes[numbers[0]].cells if all(c in indexes[n].cells for n in numbers)]
    if columns:
        with NpyWriter(folder / f"{CELLS_FILE}.npy", cell_dtype(len(columns)), total) as cells:
            for n in numbers:
                keep = np.ones(len(indexes[n]), bool)
                keep[hidden[n]] = False
                for start in range(0, len(keep), CHUNK):
                    kept = keep[start:start + CHUNK]
                    hashes = indexes[n].cells_between(start, start + CHUNK, columns)
                    cells.append(cell_records([np.compress(kept, hashes[c]) for c in columns]))
    (folder / "columns.json").write_text(json.dumps(columns))
    _write_merged_keys(ctx, reader, numbers, hidden, folder)


def _indexes(ctx: Context, reader: ManifestReader, numbers: list[int]) -> dict[int, LayerIndex]:
    return {n: ctx.cache.rows_index(reader.manifest.layers[n].rows or "", reader.keys) for n in numbers}


def _offsets(indexes: dict[int, LayerIndex], numbers: list[int], hidden: dict[int, np.ndarray]
             ) -> tuple[dict[int, int], int]:
    """Where each layer's visible rows start in the merged object, and how many rows it has."""
    offsets, offset = {}, 0
    for n in numbers:
        offsets[n] = offset
        offset += len(indexes[n]) - len(hidden[n])
    return offsets, offset


def _alternates(indexes: dict[int, LayerIndex], numbers: list[int], hidden: dict[int, np.ndarray]
                ) -> tuple[np.ndarray, np.ndarray]:
    """The merged object's rows stored under alternate ids, and those ids (see
    :mod:`registry.snapshots.identity`): its Parquet metadata must name them, or an index rebuilt from its
    bytes would give two keys one id."""
    offsets, _ = _offsets(indexes, numbers, hidden)
    rows, ids = [], []
    for n in numbers:
        alt = np.asarray(indexes[n].alt, np.uint64)
        if not alt.size:
            continue
        found, entry = indexes[n].search(alt)
        at = gather(indexes[n].rows, entry[found]).astype(np.int64)
        visible = ~in_sorted(at, hidden[n])[0]
        rows.append(_positions(hidden[n], at[visible]) + offsets[n])
        ids.append(alt[found][visible])
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    return np.concatenate(rows), np.concatenate(ids)


def _write_merged_keys(ctx: Context, reader: ManifestReader, numbers: list[int], hidden: dict[int, np.ndarray],
                       folder: Path) -> None:
    """The merged layer's key columns in file order (the index's ``keys.arrow``), a batch at a time (read,
    not mapped: see :mod:`registry.snapshots.mapped_reads`); left out when a source index lacks
    them (the commit then reads key values from Parquet)."""
    paths = [ctx.cache.folder / (reader.manifest.layers[n].rows or "") / KEYS_FILE for n in numbers]
    if not all(path.is_file() for path in paths):
        return
    with pa.OSFile(str(paths[0])) as first:
        schema = pa.ipc.open_file(first).schema
    with pa.OSFile(str(folder / KEYS_FILE), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for n, path in zip(numbers, paths, strict=True):
            with pa.OSFile(str(path)) as source:
                keys = pa.ipc.open_file(source)
                offset = 0
                for number in range(keys.num_record_batches):
                    batch = keys.get_batch(number)
                    keep = np.ones(batch.num_rows, bool)
                    low, high = np.searchsorted(hidden[n], [offset, offset + batch.num_rows])  # sorted rows
                    keep[hidden[n][low:high] - offset] = False
                    part = pa.Table.from_batches([batch.filter(arrow_array(keep))])
                    writer.write_table(part.cast(schema) if part.schema != schema else part)
                    offset += batch.num_rows


def _merge(ctx: Context, reader: ManifestReader, first: int) -> tuple[Layer, int]:
    """One layer equal to layers ``first..`` of ``reader`` applied in order (rows and deletes)."""
    layers = reader.manifest.layers
    hidden_entries = reader.hidden_entries()
    numbers = [n for n in range(first, len(layers)) if layers[n].rows]
    hidden = {n: reader.hidden_rows(n, hidden_entries[n]) for n in numbers}
    schema = reader.schema()
    indexes = _indexes(ctx, reader, numbers)
    alt_rows, alt_ids = _alternates(indexes, numbers, hidden)
    with ctx.store.staging_file(".parquet") as staged:
        with pq.ParquetWriter(staged, schema, compression="zstd") as writer:
            _stream_rows(reader, numbers, hidden, writer)
            if alt_rows.size:
                writer.add_key_value_metadata(alt_metadata_for(alt_rows, alt_ids))
        info = ctx.store.put(staged)
    _, rows_count = _offsets(indexes, numbers, hidden)
    with ctx.cache.staged_index(info.sha256) as folder:
        _write_index(ctx, reader, numbers, hidden_entries, hidden, folder)
        if alt_ids.size:
            np.save(folder / "alt.npy", np.sort(alt_ids))
    failpoint("compact:after-layer-object")
    written = info.size
    deletes_sha, deletes_count = None, 0
    if first > 0:
        # Keys deleted above the base and not upserted again since: they still hide rows below.
        upserted = ctx.cache.rows_index(info.sha256, reader.keys).kh
        deleted = [np.asarray(ctx.cache.deletes_index(layer.deletes, reader.keys))
                   for layer in layers[first:] if layer.deletes]
        if deleted:
            gone = unique_sorted(np.concatenate(deleted))
            gone = gone[~np.isin(gone, upserted)]
            below = ManifestReader(ctx.store, ctx.cache, Manifest(reader.manifest.key_columns,
                                                                  reader.manifest.schema_fingerprint, 0,
                                                                  layers[:first]))
            gone = gone[below.lookup(gone).present]
            if gone.size:
                keys_table = below.fetch(gone, columns=list(reader.keys))
                deletes_info = write_parquet_object(ctx.store, keys_table)
                ctx.cache.save_deletes(deletes_info.sha256, gone)
                deletes_sha, deletes_count = deletes_info.sha256, int(gone.size)
                written += deletes_info.size
    return Layer(info.sha256, rows_count, deletes_sha, deletes_count), written


def compact_snapshot(ctx: Context, dataset: str, snapshot: SnapshotRow, full: bool = True,
                     actor: str | Actor | None = None, first: int | None = None) -> CompactResult:
    """Rewrite ``snapshot``'s layers from layer ``first`` on into one (default: all of them when ``full``,
    else all above the base).

    Raises:
        Conflict: another process compacted the same snapshot meanwhile.
    """
    manifest = load_manifest(ctx, snapshot)
    reader = ManifestReader(ctx.store, ctx.cache, manifest)
    before = len(manifest.layers)
    first = first if first is not None else 0 if full else 1
    if before - first <= 1:
        return CompactResult(dataset, snapshot.id, before, before, 0, full=first == 0)
    merged, written = _merge(ctx, reader, first)
    layers = (*manifest.layers[:first], merged)
    new = Manifest(manifest.key_columns, manifest.schema_fingerprint, manifest.rows, layers)
    info = ctx.store.put_bytes(new.to_bytes())
    failpoint("compact:after-manifest")
    with transaction(ctx.engine) as session:
        result = session.execute(update(SnapshotRow).where(
            col(SnapshotRow.id) == snapshot.id, col(SnapshotRow.manifest_sha256) == snapshot.manifest_sha256
        ).values(manifest_sha256=info.sha256))
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(f"snapshot {snapshot.id[:12]} was compacted by another process meanwhile")
        audit.record(session, ctx, "snapshot.compact", "snapshot", snapshot.id, dataset=dataset, snapshot=snapshot.id,
                     actor=actor, details={"full": first == 0, "layers_before": before, "layers_after": len(layers),
                                           "manifest_before": snapshot.manifest_sha256, "manifest_after": info.sha256})
        failpoint("compact:before-catalog-commit")
    failpoint("compact:after-catalog-commit")
    return CompactResult(dataset, snapshot.id, before, len(layers), written + info.size, full=first == 0)


def compact(ctx: Context, ref: Ref | str, full: bool = True, actor: str | None = None) -> CompactResult:
    """Compact the snapshot ``ref`` names (default the head of ``main``), whatever the policy says."""
    with transaction(ctx.engine, readonly=True) as session:
        dataset, snapshot = resolve_ref(session, ref)
    return compact_snapshot(ctx, dataset.name, snapshot, full=full, actor=actor)


def auto_compact(ctx: Context, names: Sequence[str] | None = None, actor: str | Actor | None = None,
                 progress: Callable[[str], None] | None = None) -> list[CompactResult]:
    """Apply :func:`plan_compaction` to every branch head of ``names`` (default every dataset), then drop
    the cached indexes no ref uses any more (:func:`registry.snapshots.index_trim.trim_indexes`).

    A head that another process compacted meanwhile, or that a commit moved past, is skipped (the next
    run sees it). Returns what was compacted.

    Raises:
        NotFound: a name given is not a dataset.
    """
    with transaction(ctx.engine, readonly=True) as session:
        if names:
            datasets = [catalog.get_dataset(session, catalog.check_dataset_name(n)) for n in names]
        else:
            datasets = list(session.exec(select(DatasetRow).order_by(col(DatasetRow.name))).all())
        heads = [(ds.name, ref.name, ref.snapshot_id) for ds in datasets for ref in session.exec(
            select(RefRow).where(RefRow.dataset_id == ds.id, RefRow.kind == "branch").order_by(col(RefRow.name)))]
    done: list[CompactResult] = []
    seen: set[str] = set()
    for name, branch, snapshot_id in heads:
        if snapshot_id in seen:
            continue
        seen.add(snapshot_id)
        try:
            with transaction(ctx.engine, readonly=True) as session:
                snapshot = catalog.get_snapshot(session, snapshot_id)
            manifest = load_manifest(ctx, snapshot)
        except NotFound:
            continue
        compaction = ctx.settings.compaction
        first = plan_compaction(manifest.layers, compaction.max_layers, compaction.base_fraction)
        if first is None:
            continue
        if progress:
            progress(f"compacting {name}@{branch} from layer {first} of {len(manifest.layers)}")
        try:
            result = compact_snapshot(ctx, name, snapshot, actor=actor or SYSTEM_ACTOR, first=first)
        except Conflict:
            continue
        done.append(CompactResult(**{**result.to_dict(), "ref": branch}))  # type: ignore[arg-type]
    trimmed = trim_indexes(ctx)
    if progress and trimmed.dropped:
        progress(f"dropped {len(trimmed.dropped)} cached index(es) no branch head or tag uses "
                 f"({trimmed.bytes_freed / 2**20:,.1f} MiB)")
    return done
