"""Writing a merge's layer: the rows it upserts and the keys it deletes on top of ``ours``, with
their key-hash indexes, and the manifest (objects first, the catalog after: invariant 2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from registry.context import Context
from registry.snapshots.hashing import hash_table
from registry.snapshots.layer_write import StagedLayer, write_layer
from registry.snapshots.layers import LayerIndex
from registry.snapshots.merge import MergePlan

__all__ = ["MergeLayer", "write_merge_layer"]


@dataclass(frozen=True)
class MergeLayer:
    """The objects of a merge snapshot (:class:`StagedLayer`) and what it changes against ``ours``."""

    staged: StagedLayer
    rows: int
    added: int
    changed: int
    removed: int


def write_merge_layer(ctx: Context, plan: MergePlan, upserts: pa.Table, delete_kh: np.ndarray) -> MergeLayer:
    """Write ``upserts`` (sorted by key hash) and the deleted keys as one layer over ``ours``."""
    keys = plan.keys
    kh, rh, cells = hash_table(upserts, keys)
    order = np.argsort(kh, kind="stable")
    upserts = upserts.take(pa.array(order))
    kh, rh = kh[order], rh[order]
    index = LayerIndex.build(kh, np.arange(len(kh)), rh, {c: h[order] for c, h in cells.items()}, keys)
    present = plan.ours_reader.lookup(kh).present
    changed = int(present.sum())
    added = len(kh) - changed
    base = plan.ours_reader.manifest
    rows = plan.ours.rows + added - int(len(delete_kh))
    staged = write_layer(ctx, upserts, index, keys=keys, metadata=None, removed=delete_kh, parent=plan.ours_reader,
                         below=base.layers, schema_fingerprint=base.schema_fingerprint, total_rows=rows)
    return MergeLayer(staged, rows, added, changed, int(len(delete_kh)))
