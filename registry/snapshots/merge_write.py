"""Writing a merge's layer: the rows it upserts and the keys it deletes on top of ``ours``, with
their key-hash indexes, and the manifest (objects first, the catalog after: invariant 2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from registry.context import Context
from registry.snapshots.hashing import hash_table, key_hash
from registry.snapshots.layer_write import StagedLayer, write_layer
from registry.snapshots.layers import LayerIndex
from registry.snapshots.merge import MergePlan, conform
from registry.snapshots.schema import fingerprint

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
    """Write ``upserts`` (sorted by key hash) and the deleted keys as one layer over ``ours``; when the
    merge changes ours' schema (:attr:`MergePlan.new_base`), the whole result as a new base layer."""
    keys = plan.keys
    present = plan.ours_reader.lookup(key_hash(upserts, keys)).present
    changed = int(present.sum())
    added = len(present) - changed
    base = plan.ours_reader.manifest
    rows = plan.ours.rows + added - int(len(delete_kh))
    removed, below, fingerprint_ = delete_kh, base.layers, base.schema_fingerprint
    if plan.new_base:
        upserts = _whole_result(plan, upserts, delete_kh)
        removed, below, fingerprint_ = np.zeros(0, np.uint64), (), fingerprint(plan.schema)
    kh, rh, cells = hash_table(upserts, keys)
    order = np.argsort(kh, kind="stable")
    upserts = upserts.take(pa.array(order))
    kh, rh = kh[order], rh[order]
    staged = write_layer(ctx, upserts, lambda: LayerIndex.build(kh, np.arange(len(kh)), rh,
                                                                {c: h[order] for c, h in cells.items()}, keys),
                         keys=keys, metadata=None, removed=removed, parent=plan.ours_reader,
                         below=below, schema_fingerprint=fingerprint_, total_rows=rows)
    return MergeLayer(staged, rows, added, changed, int(len(delete_kh)))


def _whole_result(plan: MergePlan, upserts: pa.Table, delete_kh: np.ndarray) -> pa.Table:
    """Ours' rows in the merged schema, without those ``upserts`` replace or ``delete_kh`` deletes, plus
    ``upserts``."""
    ours = conform(plan.ours_reader.read(), plan.schema)
    gone = np.concatenate([key_hash(upserts, plan.keys), delete_kh])
    keep = ~np.isin(key_hash(ours, plan.keys), gone)
    return pa.concat_tables([ours.filter(pa.array(keep)), conform(upserts, plan.schema)])
