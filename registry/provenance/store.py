"""Storing annotation records with snapshots: each snapshot keeps only the records it changed.

A snapshot's records object holds the records that are new or different since its parent (matched
by ``annotation_id``; the import batch does not count as a difference) and a tombstone for each
record that disappeared (``change = 'removed'``). The full set at a snapshot is its first-parent
ancestors' objects applied oldest first: the last version of each annotation id, minus tombstones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlmodel import Session, col, select

from registry.arrays import arrow_array
from registry.context import Context
from registry.errors import InvalidInput
from registry.models import SnapshotRow
from registry.provenance.records import RECORD_FIELDS, RECORD_SCHEMA, unify_records
from registry.snapshots.hashing import hash_table, key_hash
from registry.snapshots.id_sort import argsort_ids
from registry.snapshots.layers import compare_sorted, write_parquet_object
from registry.storage import ObjectInfo

__all__ = ["STORED_SCHEMA", "RecordDelta", "chain_records", "config_objects", "diff_records", "read_delta",
           "records_at", "write_delta"]

STORED_SCHEMA = RECORD_SCHEMA.append(pa.field("change", pa.string(), nullable=False))
"""A records object: the record columns and ``change`` (``added``, ``updated`` or ``removed``)."""

_IMPORT_ATTRIBUTES = {"import_batch", "guideline_version", "config_sha256"}
"""Set by the import, not by the labeling act: an act that is otherwise unchanged keeps its original
import's values (the guideline it was labeled under), so re-importing never re-attributes old work."""
_COMPARED = [f for f in RECORD_FIELDS if f not in _IMPORT_ATTRIBUTES]


@dataclass(frozen=True)
class RecordDelta:
    """What a snapshot changes in its dataset's annotation records."""

    table: pa.Table  # STORED_SCHEMA
    added: int
    updated: int
    removed: int

    @property
    def empty(self) -> bool:
        return bool(self.table.num_rows == 0)


def conform(records: pa.Table) -> pa.Table:
    """``records`` with exactly the record columns, in order and type (missing optional ones null).

    Raises:
        InvalidInput: a required column is missing, an annotation id repeats, or a type does not fit.
    """
    missing = [f.name for f in RECORD_SCHEMA if not f.nullable and f.name not in records.column_names]
    if missing:
        raise InvalidInput(f"annotation records lack column(s) {', '.join(missing)}")
    columns = []
    for field in RECORD_SCHEMA:
        if field.name in records.column_names:
            try:
                columns.append(records.column(field.name).cast(field.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise InvalidInput(f"annotation records: column {field.name} is not {field.type}: {exc}") from exc
        else:
            columns.append(pa.nulls(records.num_rows, field.type))
    table = pa.table(columns, schema=RECORD_SCHEMA.with_metadata(None)) if records.num_rows else \
        RECORD_SCHEMA.empty_table()
    ids = table.column("annotation_id")
    if ids.null_count:
        raise InvalidInput("annotation records: annotation_id must not be null")
    if pc.count_distinct(ids).as_py() != table.num_rows:
        raise InvalidInput("annotation records: annotation_id values repeat; each labeling act needs its own id")
    return table


def diff_records(parent: pa.Table, new: pa.Table, replace: bool = True) -> RecordDelta:
    """The records object turning ``parent``'s full set into ``new``; records are matched by
    ``annotation_id`` and compared on what the labeling act says (not the import's attributes).

    ``replace``: ``new`` is the full set, so records it lacks are removed; otherwise it only adds or
    updates records.
    """
    new, parent = conform(new), unify_records(parent)
    new_kh, new_rh, _ = hash_table(new.select(_COMPARED), ["annotation_id"])
    old_kh, old_rh, _ = hash_table(parent.select(_COMPARED), ["annotation_id"])
    order, old_order = argsort_ids(new_kh), argsort_ids(old_kh)
    found = compare_sorted(new_kh[order], new_rh[order], old_kh[old_order], old_rh[old_order])
    present, same = np.empty(len(order), bool), np.empty(len(order), bool)
    present[order], same[order] = found.present, found.same
    changed = ~same
    parts = [_with_change(new.filter(arrow_array(changed)), np.where(present[changed], "updated", "added"))]
    removed = 0
    if replace and found.removed_kh.size:
        gone = np.isin(old_kh, found.removed_kh)
        batch = new.column("import_batch")[0].as_py() if new.num_rows else None
        tombstones = parent.filter(arrow_array(gone))
        tombstones = tombstones.set_column(tombstones.schema.get_field_index("import_batch"), "import_batch",
                                           pa.array([batch] * tombstones.num_rows, pa.string()))
        parts.append(_with_change(tombstones, np.full(tombstones.num_rows, "removed")))
        removed = tombstones.num_rows
    table = pa.concat_tables(parts)
    return RecordDelta(table, int((~present).sum()), int((present & changed).sum()), removed)


def _with_change(table: pa.Table, change: np.ndarray) -> pa.Table:
    return table.append_column(STORED_SCHEMA.field("change"), pa.array(change.astype(str), pa.string()))


def write_delta(ctx: Context, delta: RecordDelta) -> ObjectInfo:
    """Write a records object (temp file, fsync, rename), sorted by sample key for lookups by sample."""
    return write_parquet_object(ctx.store, delta.table.sort_by([("sample_key", "ascending"),
                                                                 ("annotation_id", "ascending")]))


def read_delta(ctx: Context, sha256: str) -> pa.Table:
    """A records object as :data:`STORED_SCHEMA` has it now (one written before a column was added has it null)."""
    return unify_records(pq.ParquetFile(ctx.store.local_path(sha256)).read(), STORED_SCHEMA)


def chain_records(ctx: Context, objects: list[str]) -> pa.Table:
    """The full record set after applying records objects ``objects`` (oldest first)."""
    if not objects:
        return RECORD_SCHEMA.empty_table()
    table = pa.concat_tables([read_delta(ctx, sha) for sha in objects])
    kh = key_hash(table, ["annotation_id"])
    reversed_first = np.unique(kh[::-1], return_index=True)[1]  # the newest version of each id
    newest = np.sort(len(kh) - 1 - reversed_first)
    latest = table.take(arrow_array(newest))
    alive = pc.not_equal(latest.column("change"), "removed")
    return latest.filter(alive).select(list(RECORD_FIELDS))


def lineage_objects(session: Session, snapshot: SnapshotRow) -> list[str]:
    """The records objects of ``snapshot`` and its first-parent ancestors, oldest first."""
    rows = {s.id: s for s in session.exec(select(SnapshotRow).where(
        col(SnapshotRow.dataset_id) == snapshot.dataset_id)).all()}
    objects: list[str] = []
    current: SnapshotRow | None = snapshot
    while current is not None:
        if current.annotations_sha256:
            objects.append(current.annotations_sha256)
        parents = json.loads(current.parents)
        current = rows.get(parents[0]) if parents else None
    return objects[::-1]


def records_at(ctx: Context, session: Session, snapshot: SnapshotRow) -> pa.Table:
    """Every annotation record of ``snapshot`` (its full set, not only what it changed)."""
    return chain_records(ctx, lineage_objects(session, snapshot))


def config_objects(ctx: Context, records_sha256: str) -> set[str]:
    """The labeling-configuration objects a records object cites."""
    column = pq.ParquetFile(ctx.store.local_path(records_sha256)).read(columns=["config_sha256"]).column(0)
    return {v for v in pc.unique(column).to_pylist() if v}
