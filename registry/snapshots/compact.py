"""Compaction: rewrite a snapshot's layers into fewer, without changing its id or content."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
from sqlalchemy import update
from sqlmodel import col

from registry.audit import log as audit
from registry.context import Actor, Context
from registry.db import transaction
from registry.errors import Conflict
from registry.models import SnapshotRow
from registry.snapshots.commit import load_manifest
from registry.snapshots.history import resolve_ref
from registry.snapshots.layers import LayerIndex, write_parquet_object
from registry.snapshots.manifest import Layer, Manifest
from registry.snapshots.reader import ManifestReader

__all__ = ["CompactResult", "compact", "compact_snapshot"]


@dataclass(frozen=True)
class CompactResult:
    """Layers before and after; the snapshot id is the same."""

    dataset: str
    snapshot_id: str
    layers_before: int
    layers_after: int
    bytes_written: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _merge(ctx: Context, reader: ManifestReader, first: int) -> tuple[Layer, int]:
    """One layer equal to layers ``first..`` of ``reader`` applied in order (rows and deletes)."""
    layers = reader.manifest.layers
    hidden_entries = reader.hidden_entries()
    parts: list[pa.Table] = []
    kh_parts, row_parts, rh_parts = [], [], []
    cell_parts: dict[str, list[np.ndarray]] = {}
    offset = 0
    for number in range(first, len(layers)):
        sha = layers[number].rows
        if not sha:
            continue
        index = ctx.cache.rows_index(sha, reader.keys)
        visible_entries = np.ones(len(index), bool)
        visible_entries[hidden_entries[number]] = False
        hidden_rows = reader.hidden_rows(number, hidden_entries[number])
        visible_rows = np.ones(len(index), bool)
        visible_rows[hidden_rows] = False
        parts.append(reader.read_visible(number, hidden_rows, None))
        new_position = np.cumsum(visible_rows) - 1 + offset  # where each kept row lands in the merged file
        kh_parts.append(index.kh[visible_entries])
        row_parts.append(new_position[index.rows[visible_entries]])
        rh_parts.append(index.rh_in_file_order()[visible_rows])
        for column, hashes in index.cells.items():
            cell_parts.setdefault(column, []).append(hashes[visible_rows])
        offset += int(visible_rows.sum())
    kh = np.concatenate(kh_parts)
    order = np.argsort(kh, kind="stable")
    cells = {c: np.concatenate(v) for c, v in cell_parts.items() if len(v) == len(parts)}
    index = LayerIndex.build(kh[order], np.concatenate(row_parts)[order], np.concatenate(rh_parts), cells,
                             reader.keys)
    table = pa.concat_tables(parts)
    info = write_parquet_object(ctx.store, table)
    ctx.cache.save_rows(info.sha256, index)
    written = info.size
    deletes_sha, deletes_count = None, 0
    if first > 0:
        # Keys deleted above the base and not upserted again since: they still hide base rows.
        upserted = index.kh
        deleted = [np.asarray(ctx.cache.deletes_index(layer.deletes, reader.keys))
                   for layer in layers[first:] if layer.deletes]
        if deleted:
            gone = np.unique(np.concatenate(deleted))
            gone = gone[~np.isin(gone, upserted)]
            base = ManifestReader(ctx.store, ctx.cache, Manifest(reader.manifest.key_columns,
                                                                 reader.manifest.schema_fingerprint, 0,
                                                                 layers[:first]))
            gone = gone[base.lookup(gone).present]
            if gone.size:
                keys_table = base.fetch(gone, columns=list(reader.keys))
                deletes_info = write_parquet_object(ctx.store, keys_table)
                ctx.cache.save_deletes(deletes_info.sha256, gone)
                deletes_sha, deletes_count = deletes_info.sha256, int(gone.size)
                written += deletes_info.size
    return Layer(info.sha256, table.num_rows, deletes_sha, deletes_count), written


def compact_snapshot(ctx: Context, dataset: str, snapshot: SnapshotRow, full: bool = True,
                     actor: str | Actor | None = None) -> CompactResult:
    """Rewrite ``snapshot``'s layers: all into one (``full``), or all above the base into one.

    Raises:
        Conflict: another process compacted the same snapshot meanwhile.
    """
    manifest = load_manifest(ctx, snapshot)
    reader = ManifestReader(ctx.store, ctx.cache, manifest)
    before = len(manifest.layers)
    first = 0 if full else 1
    if before - first <= 1:
        return CompactResult(dataset, snapshot.id, before, before, 0)
    merged, written = _merge(ctx, reader, first)
    layers = (*manifest.layers[:first], merged)
    new = Manifest(manifest.key_columns, manifest.schema_fingerprint, manifest.rows, layers)
    info = ctx.store.put_bytes(new.to_bytes())
    with transaction(ctx.engine) as session:
        result = session.execute(update(SnapshotRow).where(
            col(SnapshotRow.id) == snapshot.id, col(SnapshotRow.manifest_sha256) == snapshot.manifest_sha256
        ).values(manifest_sha256=info.sha256))
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(f"snapshot {snapshot.id[:12]} was compacted by another process meanwhile")
        audit.record(session, ctx, "snapshot.compact", "snapshot", snapshot.id, dataset=dataset, snapshot=snapshot.id,
                     actor=actor, details={"full": full, "layers_before": before, "layers_after": len(layers),
                                           "manifest_before": snapshot.manifest_sha256, "manifest_after": info.sha256})
    return CompactResult(dataset, snapshot.id, before, len(layers), written + info.size)


def compact(ctx: Context, ref: str, full: bool = True, actor: str | None = None) -> CompactResult:
    """Compact the snapshot ``ref`` names (default the head of ``main``)."""
    with transaction(ctx.engine, readonly=True) as session:
        dataset, snapshot = resolve_ref(session, ref)
    return compact_snapshot(ctx, dataset.name, snapshot, full=full, actor=actor)
