"""Writing a merge's layer: the rows it upserts and the keys it deletes on top of ``ours``, with
their key-hash indexes, and the manifest (objects first, the catalog after: invariant 2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from registry.context import Context
from registry.snapshots.hashing import hash_table
from registry.snapshots.layers import LayerIndex, write_parquet_object
from registry.snapshots.manifest import Layer, Manifest
from registry.snapshots.merge import MergePlan

__all__ = ["MergeLayer", "write_merge_layer"]


@dataclass(frozen=True)
class MergeLayer:
    """The objects of a merge snapshot and what it changes against ``ours``."""

    change_sha256: str
    deletes_sha256: str | None
    manifest_sha256: str
    layers: tuple[Layer, ...]
    rows: int
    added: int
    changed: int
    removed: int
    bytes_written: int


def write_merge_layer(ctx: Context, plan: MergePlan, upserts: pa.Table, delete_kh: np.ndarray) -> MergeLayer:
    """Write ``upserts`` (sorted by key hash) and the deleted keys as one layer over ``ours``."""
    keys = plan.keys
    kh, rh, cells = hash_table(upserts, keys)
    order = np.argsort(kh, kind="stable")
    upserts = upserts.take(pa.array(order))
    kh, rh = kh[order], rh[order]
    change = write_parquet_object(ctx.store, upserts)
    ctx.cache.save_rows(change.sha256, LayerIndex.build(kh, np.arange(len(kh)), rh,
                                                        {c: h[order] for c, h in cells.items()}, keys))
    present = plan.ours_reader.lookup(kh).present
    changed = int(present.sum())
    added = len(kh) - changed
    written = change.size
    deletes_sha = None
    if len(delete_kh):
        deletes = write_parquet_object(ctx.store, plan.ours_reader.fetch(delete_kh, columns=keys))
        ctx.cache.save_deletes(deletes.sha256, delete_kh)
        deletes_sha = deletes.sha256
        written += deletes.size
    layer = Layer(rows=change.sha256, rows_count=upserts.num_rows, deletes=deletes_sha,
                  deletes_count=int(len(delete_kh)))
    base = plan.ours_reader.manifest
    rows = plan.ours.rows + added - int(len(delete_kh))
    manifest = Manifest(key_columns=tuple(keys), schema_fingerprint=base.schema_fingerprint, rows=rows,
                        layers=(*base.layers, layer))
    info = ctx.store.put_bytes(manifest.to_bytes())
    return MergeLayer(change.sha256, deletes_sha, info.sha256, manifest.layers, rows, added, changed,
                      int(len(delete_kh)), written + info.size)
