"""``registry blame NAME@REF``: per row, the snapshot that last changed it and who labeled its value."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
from sqlmodel import select

from registry import catalog
from registry.context import Context
from registry.db import transaction
from registry.models import SnapshotRow
from registry.provenance.identity import identity_labels
from registry.provenance.labels import current_annotators, key_strings, require_label_column
from registry.provenance.store import records_at
from registry.refs import Ref
from registry.snapshots.hashing import key_hash
from registry.snapshots.history import resolve_ref
from registry.snapshots.layer_reader import ManifestReader
from registry.snapshots.layers import in_sorted
from registry.snapshots.manifest import load_manifest

__all__ = ["blame"]


def blame(ctx: Context, ref: Ref | str, column: str = "label", limit: int | None = None) -> pa.Table:
    """One row per row of ``ref`` (up to ``limit``, in key order): its key, ``column``'s value, the
    snapshot that last upserted it (id, time, author, message) and the annotator and guideline version
    of the labeling act behind the current value (null when no record matches it).

    Raises:
        NotFound: unknown dataset or ref.
        InvalidInput: the snapshot has no column ``column``.
    """
    with transaction(ctx.engine, readonly=True) as session:
        dataset, snapshot = resolve_ref(session, ref)
        keys = catalog.key_columns(dataset)
        rows = {s.id: s for s in session.exec(select(SnapshotRow).where(SnapshotRow.dataset_id == dataset.id))}
        records = records_at(ctx, session, snapshot)
    reader = ManifestReader(ctx.store, ctx.cache, load_manifest(ctx, snapshot))
    require_label_column(reader.schema(), column, str(ref))
    table = reader.read([*keys, column]).sort_by([(k, "ascending") for k in keys])
    if limit is not None:
        table = table.slice(0, limit)
    kh = key_hash(table, keys)
    owner = np.full(len(kh), -1, np.int64)
    chain = _first_parent_chain(rows, snapshot)
    for number, snap in enumerate(chain):  # newest first: the first layer holding a key changed it last
        open_rows = np.flatnonzero(owner < 0)
        if not open_rows.size:
            break
        found, _ = in_sorted(kh[open_rows], ctx.cache.rows_index(snap.change_sha256, keys).kh)
        owner[open_rows[found]] = number
    who = current_annotators(records, key_strings(table, keys), table.column(column).combine_chunks())

    def pick(attr: str) -> pa.Array:
        return pa.array([getattr(chain[i], attr) if i >= 0 else None for i in owner], pa.string())

    return table.append_column("snapshot_id", pick("id")).append_column("changed_at", pick("created_at")) \
        .append_column("author", pick("author")).append_column("message", pick("message")) \
        .append_column("annotator", identity_labels(who)) \
        .append_column("guideline_version", who.column("guideline_version")) \
        .append_column("labeled_at", who.column("labeled_at"))


def _first_parent_chain(rows: dict[str, SnapshotRow], head: SnapshotRow) -> list[SnapshotRow]:
    chain: list[SnapshotRow] = []
    current: SnapshotRow | None = head
    while current is not None:
        chain.append(current)
        parents = json.loads(current.parents)
        current = rows.get(parents[0]) if parents else None
    return chain
