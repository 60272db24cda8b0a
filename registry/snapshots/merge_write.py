"""Writing a merge's layer: the rows it upserts and the keys it deletes on top of ``ours``, with
their key-hash indexes, and the manifest (objects first, the catalog after: invariant 2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from registry.arrays import arrow_array
from registry.context import Context
from registry.snapshots.hashing import hash_table, key_hash
from registry.snapshots.id_sort import argsort_ids
from registry.snapshots.identity import assign_ids
from registry.snapshots.layer_write import StagedLayer, write_layer
from registry.snapshots.layers import LayerIndex, alt_metadata
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
    # Each row's id in ours is found by its key values (invariant 11): a key whose hash another key of
    # ours holds takes an alternate id, as in a commit.
    identity = assign_ids(upserts, keys, key_hash(upserts, keys), plan.ours_reader, "merge")
    present = identity.found.present
    changed = int(present.sum())
    added = len(present) - changed
    base = plan.ours_reader.manifest
    rows = plan.ours.rows + added - int(len(delete_kh))
    removed, below, fingerprint_ = delete_kh, base.layers, base.schema_fingerprint
    ids = identity.ids
    if plan.new_base:
        upserts = _whole_result(plan, upserts, np.concatenate([ids, delete_kh]))
        removed, below, fingerprint_ = np.zeros(0, np.uint64), (), fingerprint(plan.schema)
        ids = assign_ids(upserts, keys, key_hash(upserts, keys), None, "merge").ids
    kh, rh, cells = hash_table(upserts, keys)
    order = argsort_ids(ids)
    upserts = upserts.take(arrow_array(order))
    ids, kh, rh = ids[order], kh[order], rh[order]
    staged = write_layer(ctx, upserts, lambda: LayerIndex.build(ids, np.arange(len(ids)), rh,
                                                                {c: h[order] for c, h in cells.items()}, keys,
                                                                ids[ids != kh], upserts.select(keys)),
                         keys=keys, metadata=alt_metadata(ids, kh), removed=removed, parent=plan.ours_reader,
                         below=below, schema_fingerprint=fingerprint_, total_rows=rows)
    return MergeLayer(staged, rows, added, changed, int(len(delete_kh)))


def _whole_result(plan: MergePlan, upserts: pa.Table, gone: np.ndarray) -> pa.Table:
    """Ours' rows in the merged schema, without those whose ids (in ours) are ``gone`` (replaced by
    ``upserts`` or deleted), plus ``upserts``."""
    ours = conform(plan.ours_reader.read(), plan.schema)
    ours_ids, _ = plan.ours_reader.read_order_index()
    keep = ~np.isin(ours_ids, gone)
    return pa.concat_tables([ours.filter(arrow_array(keep)), conform(upserts, plan.schema)])
