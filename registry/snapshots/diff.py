"""Keyed, row-level diffs between two snapshots.

When one snapshot descends from the other, only the keys touched by the commits in between are
looked at (their change objects name them), so the cost follows the change, not the table. Two
snapshots on one base layer (two branches, say) are compared by the ids their upper layers hold, which
costs what those layers hold. Any other pair is compared through both snapshots' key-hash indexes.
Rows are read only for keys that changed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlmodel import Session

from registry import catalog
from registry.arrays import union_sorted, unique_sorted
from registry.context import Context
from registry.db import transaction
from registry.errors import InvalidInput
from registry.models import DatasetRow, SchemaVersionRow, SnapshotRow
from registry.refs import Ref
from registry.snapshots.history import resolve_ref
from registry.snapshots.identity import rows_equal
from registry.snapshots.layer_reader import Lookup, ManifestReader
from registry.snapshots.layers import compare_sorted
from registry.snapshots.manifest import layer_names, load_manifest
from registry.snapshots.mapped_reads import read_part
from registry.snapshots.schema import compare_schemas

__all__ = ["ChangeSet", "Classified", "DiffResult", "change_set", "compare_snapshots", "diff"]

PATH_LIMIT_FRACTION = 0.25
"""Walk history for touched keys only while they stay under this share of the rows."""


@dataclass(frozen=True)
class DiffResult:
    """Counts, per-column changed cells, schema changes and example rows from ``a`` to ``b``."""

    dataset: str
    a: str
    b: str
    added: int
    removed: int
    changed: int
    unchanged: int
    changed_cells: dict[str, int]
    schema_changes: list[dict[str, Any]]
    examples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class ChangeSet:
    """What turns ``a`` into ``b``: rows to upsert (added or changed) and keys to delete."""

    upserts: pa.Table
    deletes: pa.Table


@dataclass
class Classified:
    """The ids (sorted key hashes) added, removed and changed from one snapshot to another."""

    kh_added: np.ndarray
    kh_removed: np.ndarray
    kh_changed: np.ndarray  # sorted
    unchanged: int
    changed_a: Lookup | None = None  # lookups of kh_changed, when the classification made them
    changed_b: Lookup | None = None
    hash_blind: bool = False  # some changed rows have equal hashes: count changed cells from the values


@dataclass(frozen=True)
class _Touched:
    """The ids the commits between two snapshots touched (sorted), and the one commit's change layer when a
    single commit without deletions lies between them (its index may record where its ids were before)."""

    kh: np.ndarray
    layer: str | None


def _touched_between(session: Session, ctx: Context, older: SnapshotRow, newer: SnapshotRow, keys: list[str]
                     ) -> _Touched | None:
    """Key hashes touched by the commits after ``older`` up to ``newer``, or None if not cheap."""
    limit = max(1000, int(max(older.rows, newer.rows) * PATH_LIMIT_FRACTION))
    touched: list[np.ndarray] = []
    size = 0
    current = newer
    while current.id != older.id:
        size += current.added + current.changed + current.removed
        if size > limit:
            return None
        touched.append(np.asarray(ctx.cache.rows_index(current.change_sha256, keys).kh))
        if current.deletes_sha256:
            touched.append(np.asarray(ctx.cache.deletes_index(current.deletes_sha256, keys)))
        parents = catalog.parents_of(current)
        if not parents:
            return None
        current = catalog.get_snapshot(session, parents[0])
    parents = catalog.parents_of(newer)
    one_step = bool(parents) and parents[0] == older.id and not newer.deletes_sha256
    kh = unique_sorted(np.concatenate(touched)) if touched else np.zeros(0, np.uint64)
    return _Touched(kh, newer.change_sha256 if one_step else None)


def _recorded_lookup(ctx: Context, reader: ManifestReader, touched: _Touched) -> Lookup | None:
    """``reader.lookup(touched.kh)`` as the one commit between the two snapshots found it when it wrote its
    layer on top of ``reader``'s (kept with the layer's index: no id is looked up again); None unless that
    record exists and was made for exactly ``reader``'s layers."""
    if touched.layer is None:
        return None
    records = ctx.cache.below(touched.layer, layer_names(reader.manifest.layers))
    if records is None:
        return None
    entries = read_part(ctx.cache.rows_index(touched.layer, reader.keys).entries, 0, len(records))
    if len(entries) != len(records) or not np.array_equal(entries["kh"], touched.kh):
        return None
    hits = np.take(records, entries["row"].astype(np.int64))
    return Lookup(hits["layer"], hits["position"], hits["rh"])


def _changed_despite_equal_hashes(reader_a: ManifestReader, reader_b: ManifestReader, kh: np.ndarray,
                                   in_a: Lookup, in_b: Lookup) -> np.ndarray:
    """Per touched key present on both sides with equal row hashes: whether its values differ anyway (a
    64-bit hash may collide; the values decide, design invariant 11)."""
    if not len(kh):
        return np.zeros(0, bool)
    before, after = reader_a.fetch(kh, found=in_a), reader_b.fetch(kh, found=in_b)
    if before.schema.names != after.schema.names:
        return np.ones(len(kh), bool)
    return ~rows_equal(before, after, before.column_names)


def _classify(reader_a: ManifestReader, reader_b: ManifestReader, touched: np.ndarray | None,
              rows_a: int, known_a: Lookup | None = None, known_b: Lookup | None = None) -> Classified:
    if touched is not None:
        in_a = known_a if known_a is not None else reader_a.lookup(touched)
        in_b = known_b if known_b is not None else reader_b.lookup(touched)
        both = in_a.present & in_b.present
        changed = both & (in_a.rh != in_b.rh)
        hinted = np.flatnonzero(both & ~changed)
        changed[hinted] = _changed_despite_equal_hashes(reader_a, reader_b, touched[hinted], in_a.take(hinted),
                                                        in_b.take(hinted))
        added = touched[~in_a.present & in_b.present]
        removed = touched[in_a.present & ~in_b.present]
        return Classified(added, removed, touched[changed], rows_a - len(removed) - int(changed.sum()),
                           in_a.take(changed), in_b.take(changed), bool(changed[hinted].any()))
    above = _above_shared_base(reader_a, reader_b)
    if above is not None:
        return _classify_above_base(reader_a, reader_b, above, rows_a)
    return _classify_by_index(reader_a, reader_b)


def _above_shared_base(reader_a: ManifestReader, reader_b: ManifestReader) -> np.ndarray | None:
    """When both snapshots stack their other layers on one base layer (two branches, or a snapshot and
    another far down its history, with no base rewrite between them): every id an upper layer of either
    side upserts or deletes, sorted. Any other id is the same base row on both sides. None otherwise."""
    layers_a, layers_b = reader_a.manifest.layers, reader_b.manifest.layers
    if not layers_a or not layers_b or layers_a[0] != layers_b[0] or not layers_a[0].rows or \
            reader_a.manifest.schema_fingerprint != reader_b.manifest.schema_fingerprint:
        return None
    ids = []
    for reader in (reader_a, reader_b):
        for number in range(1, len(reader.manifest.layers)):
            ids += [np.asarray(reader.rows_index(number).kh), reader.deletes_index(number)]
    return union_sorted(*ids)


def _classify_above_base(reader_a: ManifestReader, reader_b: ManifestReader, touched: np.ndarray,
                         rows_a: int) -> Classified:
    """Classify only the ids above a shared base (``touched``, from :func:`_above_shared_base`): the cost
    follows the upper layers, not the table. An id both sides hold is confirmed as the index comparison
    confirms it (the same key? the same values?), since two branches may give one alternate id to two keys."""
    in_a, in_b = reader_a.lookup(touched), reader_b.lookup(touched)
    both = np.flatnonzero(in_a.present & in_b.present)
    other_key, changed, blind = _confirm_by_values(reader_a, reader_b, touched[both], in_a.rh[both] != in_b.rh[both],
                                                   in_a.take(both), in_b.take(both))
    parted = touched[both[other_key]]  # one id, two keys: removed from a and added in b
    real = both[changed & ~other_key]
    added = np.sort(np.concatenate([touched[~in_a.present & in_b.present], parted]))
    removed = np.sort(np.concatenate([touched[in_a.present & ~in_b.present], parted]))
    unchanged = rows_a - int(in_a.present.sum()) + int((~changed & ~other_key).sum())
    return Classified(added, removed, touched[real], unchanged, in_a.take(real), in_b.take(real), blind)


def _classify_by_index(reader_a: ManifestReader, reader_b: ManifestReader) -> Classified:
    """Classify every id from one pass over both snapshots' whole indexes."""
    entries_a, entries_b = reader_a.effective_entries(), reader_b.effective_entries()
    kh_b = entries_b.kh
    found = compare_sorted(kh_b, entries_b.rh, entries_a.kh, entries_a.rh)
    common = np.flatnonzero(found.present)
    other_key, changed, blind = _confirm_by_values(reader_a, reader_b, kh_b[common], ~found.same[common],
                                                   entries_a.where.take(found.position[common]),
                                                   entries_b.where.take(common))
    changed_kh = kh_b[common[changed & ~other_key]]
    parted = kh_b[common[other_key]]  # one id, two keys: removed from a and added in b
    return Classified(np.sort(np.concatenate([kh_b[~found.present], parted])),
                       np.sort(np.concatenate([found.removed_kh, parted])), changed_kh,
                       int((~changed & ~other_key).sum()), hash_blind=blind)


def _confirm_by_values(reader_a: ManifestReader, reader_b: ManifestReader, kh: np.ndarray, hashes_differ: np.ndarray,
                       in_a: Lookup, in_b: Lookup) -> tuple[np.ndarray, np.ndarray, bool]:
    """For ids (sorted) on both sides of an index comparison: ``(other_key, changed, hash_blind)``.

    64-bit hashes only propose (design invariant 11). A row both sides read from the same stored object
    at the same position is the same key and row (the object is named by its SHA-256). Any other is
    confirmed by its actual values: the key columns (from the indexes) for every such id, and the whole
    row where the row hashes are equal. ``hash_blind``: a row with equal hashes changed all the same.
    ``in_a`` and ``in_b``: where each id is stored on either side."""
    names_a = [layer.rows or "" for layer in reader_a.manifest.layers]
    names_b = [layer.rows or "" for layer in reader_b.manifest.layers]
    number = {sha: i for i, sha in enumerate(dict.fromkeys(names_a + names_b))}  # objects as small integers
    objects_a = np.array([number[sha] for sha in names_a], np.int64)
    objects_b = np.array([number[sha] for sha in names_b], np.int64)
    shared = (objects_a[in_a.layer] == objects_b[in_b.layer]) & (in_a.position == in_b.position)
    check = np.flatnonzero(~shared)
    other_key = np.zeros(len(kh), bool)
    changed = hashes_differ & ~shared
    if not check.size:
        return other_key, changed, False
    keys = list(reader_a.keys)
    sub_a, sub_b = in_a.take(check), in_b.take(check)
    other_key[check] = ~rows_equal(reader_a.fetch_keys(kh[check], found=sub_a),
                                   reader_b.fetch_keys(kh[check], found=sub_b), keys)
    equal = check[~hashes_differ[check] & ~other_key[check]]
    blind = False
    if equal.size:
        before = reader_a.fetch(kh[equal], found=in_a.take(equal))
        after = reader_b.fetch(kh[equal], found=in_b.take(equal))
        differ = ~rows_equal(before, after, [c for c in before.column_names if c in after.column_names])
        changed[equal] = differ
        blind = bool(differ.any())
    return other_key, changed, blind


def _prepare(session: Session, ctx: Context, a_ref: Ref | str, b_ref: Ref | str
             ) -> tuple[DatasetRow, SnapshotRow, SnapshotRow, ManifestReader, ManifestReader, Classified]:
    dataset, a = resolve_ref(session, a_ref)
    other, b = resolve_ref(session, b_ref)
    if other.id != dataset.id:
        raise InvalidInput(f"cannot diff snapshots of two datasets ({dataset.name} and {other.name})")
    reader_a, reader_b, found = compare_snapshots(session, ctx, dataset, a, b)
    return dataset, a, b, reader_a, reader_b, found


def compare_snapshots(session: Session, ctx: Context, dataset: DatasetRow, a: SnapshotRow, b: SnapshotRow
                      ) -> tuple[ManifestReader, ManifestReader, Classified]:
    """Readers of ``a`` and ``b`` (snapshots of ``dataset``) and which ids were added, removed or changed
    from one to the other: from the commits in between when they touched few keys, else from one pass
    over both indexes. Row values are read only to confirm what the 64-bit hashes propose."""
    keys = catalog.key_columns(dataset)
    reader_a = ManifestReader(ctx.store, ctx.cache, load_manifest(ctx, a))
    reader_b = ManifestReader(ctx.store, ctx.cache, load_manifest(ctx, b))
    if a.schema_fingerprint != b.schema_fingerprint:
        return reader_a, reader_b, _classify(reader_a, reader_b, None, a.rows)
    forward = b.seq >= a.seq
    touched = _touched_between(session, ctx, a, b, keys) if forward else _touched_between(session, ctx, b, a, keys)
    if touched is None:
        return reader_a, reader_b, _classify(reader_a, reader_b, None, a.rows)
    known = _recorded_lookup(ctx, reader_a if forward else reader_b, touched)  # the older side's
    return reader_a, reader_b, _classify(reader_a, reader_b, touched.kh, a.rows, *((known, None) if forward
                                                                                   else (None, known)))


def change_set(ctx: Context, a_ref: Ref | str, b_ref: Ref | str) -> ChangeSet:
    """The full set of changes from ``a`` to ``b`` (applying it to ``a`` gives ``b``)."""
    with transaction(ctx.engine, readonly=True) as session:
        dataset, _, _, reader_a, reader_b, found = _prepare(session, ctx, a_ref, b_ref)
        keys = catalog.key_columns(dataset)
        upserts = reader_b.fetch(np.sort(np.concatenate([found.kh_added, found.kh_changed])))
        deletes = reader_a.fetch(np.sort(found.kh_removed), columns=keys)
        return ChangeSet(upserts, deletes)


def _schema_of(session: Session, dataset: DatasetRow, snapshot: SnapshotRow) -> list[dict[str, Any]]:
    row = session.get(SchemaVersionRow, (dataset.id, snapshot.schema_version))
    columns: list[dict[str, Any]] = json.loads(row.arrow_schema) if row else []
    return columns


def _cell_changes(before: pa.Table, after: pa.Table, columns: list[str]) -> dict[str, np.ndarray]:
    changed: dict[str, np.ndarray] = {}
    for name in columns:
        left, right = before.column(name), after.column(name)
        if left.type != right.type:
            try:
                right = right.cast(left.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                left, right = left.cast(pa.string()), right.cast(pa.string())
        both_null = pc.and_(pc.is_null(left), pc.is_null(right))
        equal = pc.fill_null(pc.equal(left, right), False)
        changed[name] = ~pc.or_(both_null, equal).to_numpy(zero_copy_only=False)
    return changed


def _key_of(row: dict[str, Any], keys: list[str]) -> Any:
    return row[keys[0]] if len(keys) == 1 else {k: row[k] for k in keys}


_KINDS = {"changed": 0, "added": 1, "removed": 2}


def _example_order(example: dict[str, Any]) -> tuple[Any, ...]:
    """Examples by kind, then in key order (nulls last)."""
    key = example["key"]
    values = list(key.values()) if isinstance(key, dict) else [key]
    return (_KINDS[example["kind"]], *((False, v) if v is not None else (True, 0) for v in values))


def _cheapest(reader: ManifestReader, kh: np.ndarray, limit: int, found: Lookup | None = None
              ) -> tuple[np.ndarray, Lookup]:
    """Up to ``limit`` of sorted ``kh`` that sit in the fewest row groups (lowest layer, lowest
    positions), still sorted, with their lookup."""
    if limit <= 0 or not len(kh):
        return np.zeros(0, np.uint64), Lookup(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint64))
    found = found if found is not None else reader.lookup(kh)
    chosen = np.sort(np.lexsort((found.position, found.layer))[:limit])
    return kh[chosen], found.take(chosen)


def _count_changed_cells(reader_a: ManifestReader, reader_b: ManifestReader, found: Classified,
                         columns: list[str]) -> dict[str, int]:
    """Changed cells per column among rows known to differ: from index cell hashes when both sides
    have them (no rows read), else by reading and comparing the rows."""
    kh = found.kh_changed
    if not len(kh) or not columns:
        return {c: 0 for c in columns}
    in_a = found.changed_a if found.changed_a is not None else reader_a.lookup(kh)
    in_b = found.changed_b if found.changed_b is not None else reader_b.lookup(kh)
    before = reader_a.cell_hashes(in_a, columns) if not found.hash_blind else None
    after = reader_b.cell_hashes(in_b, columns) if before is not None else None
    if before is not None and after is not None:
        return {c: int((before[c] != after[c]).sum()) for c in columns}
    cells = _cell_changes(reader_a.fetch(kh), reader_b.fetch(kh), columns)
    return {name: int(mask.sum()) for name, mask in cells.items()}


def diff(ctx: Context, a_ref: Ref | str, b_ref: Ref | str, rows: int = 10) -> DiffResult:
    """Row-level diff from ``a_ref`` to ``b_ref`` with up to ``rows`` examples of each kind.

    Raises:
        NotFound: either ref names nothing.
        InvalidInput: the refs belong to different datasets.
    """
    with transaction(ctx.engine, readonly=True) as session:
        dataset, a, b, reader_a, reader_b, found = _prepare(session, ctx, a_ref, b_ref)
        keys = catalog.key_columns(dataset)
        schema_a, schema_b = _schema_of(session, dataset, a), _schema_of(session, dataset, b)
    same_types = {c["name"]: c["type"] for c in schema_b}
    common = [c["name"] for c in schema_a if c["name"] not in keys and same_types.get(c["name"]) == c["type"]]
    retyped = [c["name"] for c in schema_a if c["name"] not in keys and c["name"] in same_types
               and same_types[c["name"]] != c["type"]]
    kh_changed = found.kh_changed
    changed_cells = _count_changed_cells(reader_a, reader_b, found, common)
    if retyped and len(kh_changed):
        cells = _cell_changes(reader_a.fetch(kh_changed), reader_b.fetch(kh_changed), retyped)
        changed_cells.update({name: int(mask.sum()) for name, mask in cells.items()})
    examples: list[dict[str, Any]] = []
    if rows > 0:
        sample, sample_a = _cheapest(reader_a, kh_changed, rows, found.changed_a)
        sample_b = found.changed_b.take(np.searchsorted(kh_changed, sample)) if found.changed_b is not None \
            else None
        for row_before, row_after in zip(reader_a.fetch(sample, found=sample_a).to_pylist(),
                                         reader_b.fetch(sample, found=sample_b).to_pylist(), strict=True):
            columns = [c for c in [*common, *retyped] if row_before.get(c) != row_after.get(c)]
            examples.append({"kind": "changed", "key": _key_of(row_after, keys), "columns": columns,
                             "before": row_before, "after": row_after})
        added, added_b = _cheapest(reader_b, np.sort(found.kh_added), rows)
        for row in reader_b.fetch(added, found=added_b).to_pylist():
            examples.append({"kind": "added", "key": _key_of(row, keys), "before": None, "after": row})
        removed, removed_a = _cheapest(reader_a, np.sort(found.kh_removed), rows)
        for row in reader_a.fetch(removed, found=removed_a).to_pylist():
            examples.append({"kind": "removed", "key": _key_of(row, keys), "before": row, "after": None})
    examples.sort(key=_example_order)
    schema_changes = [asdict(c) for c in compare_schemas(schema_a, schema_b)]
    return DiffResult(dataset.name, a.id, b.id, len(found.kh_added), len(found.kh_removed), len(kh_changed),
                      found.unchanged, changed_cells, schema_changes, examples)
