"""Three-way merge of two snapshots against their merge base, by key and cell by cell.

Only keys that changed on either side since the base are looked at: the commits between the base
and each side name them (their change and deletes objects), so the cost follows the change, not the
table. Each such key is classified from the three snapshots' key-hash indexes; rows are read only
for keys both sides changed, and compared cell by cell on their actual values. An id is one row only if
it holds the same key values in every snapshot that has it (invariant 11): when two branches each stored
a different key under one id (a 64-bit hash collision each side settled alone), the keys of such ids are
found in each snapshot by their values and merged by the same rules, so both rows survive:

- changed on one side only: that side's row (or deletion) wins;
- changed on both sides to the same row: nothing to do;
- different columns changed on each side: both changes are kept;
- the same cell changed to different values, a key added on both sides with different values, a
  row deleted on one side and changed on the other: a :class:`Conflict`.

:func:`plan_merge` finds all of this; resolutions are set on the conflicts, and
:meth:`MergePlan.result` gives the rows to upsert and the keys to delete on top of ``ours``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlmodel import Session

from registry import catalog
from registry.arrays import arrow_array, union_sorted, unique_sorted
from registry.context import Context
from registry.models import SnapshotRow
from registry.snapshots.ancestry import Graph
from registry.snapshots.hashing import key_hash
from registry.snapshots.identity import assign_ids, rows_equal
from registry.snapshots.layer_reader import Lookup, ManifestReader
from registry.snapshots.layers import compare_sorted
from registry.snapshots.manifest import load_manifest

__all__ = ["DELETED", "ROW", "Conflict", "MergePlan", "conform", "display", "plan_merge", "sample_key",
           "unified_schema"]

ROW = "*"
"""The column of a row-level conflict (a row deleted on one side and changed on the other)."""
DELETED = "(deleted)"
"""How a row-level conflict shows the side that deleted the row."""
PATH_LIMIT_FRACTION = 0.25
"""Walk history for touched keys only while they stay under this share of the rows."""


def display(value: Any) -> str | None:
    """A cell value as text for conflict tables (JSON for anything but strings; None stays None)."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def sample_key(key: dict[str, Any]) -> str:
    """The ``sample_key`` annotation records use for a row's key values (joined by ``|``)."""
    return "|".join(str(v) for v in key.values())


@dataclass
class Conflict:
    """One conflict: a cell (or, for ``column == ROW``, a whole row) both sides changed differently.

    ``kind``: ``changed`` (the same cell changed on both sides), ``added`` (the same new key added with
    different values), ``deleted-ours`` / ``deleted-theirs`` (deleted on that side, changed on the other).
    A resolution sets ``take`` to ``ours``, ``theirs`` or ``value`` (then ``value`` holds it) and
    ``resolved_by`` to what decided it.
    """

    kh: int
    key: dict[str, Any]
    column: str
    kind: str
    base: Any
    ours: Any
    theirs: Any
    row: int = -1
    """The row of :attr:`MergePlan.merged` a cell conflict is in."""
    ours_by: dict[str, Any] | None = None
    theirs_by: dict[str, Any] | None = None
    take: str | None = None
    value: Any = None
    resolved_by: str | None = None

    def resolve(self, take: str, by: str, value: Any = None) -> None:
        self.take, self.value, self.resolved_by = take, value, by

    def to_dict(self) -> dict[str, Any]:
        """JSON form: values as text, who set each side, and the resolution if any."""
        out: dict[str, Any] = {"key": self.key, "column": self.column, "kind": self.kind,
                               "base": display(self.base), "ours": display(self.ours),
                               "theirs": display(self.theirs)}
        for side, by in (("ours", self.ours_by), ("theirs", self.theirs_by)):
            for field_name in ("annotator", "labeled_at", "guideline"):
                out[f"{side}_{field_name}"] = (by or {}).get(field_name)
        if self.take is not None:
            out["resolution"] = {"take": self.take, "value": display(self.value), "by": self.resolved_by}
        return out


@dataclass
class MergePlan:
    """Everything a merge of ``theirs`` into ``ours`` changes, and its conflicts."""

    keys: list[str]
    schema: pa.Schema
    base: SnapshotRow
    ours: SnapshotRow
    theirs: SnapshotRow
    ours_reader: ManifestReader
    theirs_reader: ManifestReader
    theirs_taken: pa.Table
    """Rows only ``theirs`` changed or added: taken as they are."""
    theirs_deleted: np.ndarray
    """Sorted key hashes only ``theirs`` deleted (unchanged on ``ours``)."""
    merged: pa.Table
    """Rows both sides changed (and both kept), merged cell by cell; conflicting cells hold ours."""
    merged_differs: np.ndarray
    """Per row of ``merged``: it differs from ours (a cell came from theirs)."""
    conflicts: list[Conflict]
    ours_changed: int
    theirs_changed: int
    full_compare: bool = False
    """The touched keys were found by comparing whole indexes (long or schema-changing history)."""
    new_base: bool = False
    """``schema`` (both sides' compatible schema changes together) is not ours': the result is written
    as a new base layer, ours' rows conformed to it (null in columns only theirs has)."""

    @property
    def unresolved(self) -> list[Conflict]:
        return [c for c in self.conflicts if c.take is None]

    def result(self) -> tuple[pa.Table, np.ndarray]:
        """``(rows to upsert onto ours, sorted key hashes to delete from ours)`` with every resolution
        applied; an unresolved conflict keeps ours."""
        merged, differs = self.merged, self.merged_differs.copy()
        overrides: dict[str, dict[int, Any]] = {}
        rows_from_theirs: list[int] = []
        deleted: list[int] = []
        for conflict in self.conflicts:
            if conflict.take in (None, "ours"):
                continue
            if conflict.column == ROW:  # only ours or theirs resolve a row: its value is the whole row
                (deleted if conflict.theirs == DELETED else rows_from_theirs).append(conflict.kh)
                continue
            overrides.setdefault(conflict.column, {})[conflict.row] = \
                conflict.theirs if conflict.take == "theirs" else conflict.value
            differs[conflict.row] = True
        for column, values in overrides.items():
            cells = merged.column(column).to_pylist()
            for row, value in values.items():
                cells[row] = value
            merged = merged.set_column(merged.schema.get_field_index(column), column,
                                       pa.array(cells, self.schema.field(column).type))
        parts = [conform(self.theirs_taken, self.schema), conform(merged.filter(arrow_array(differs)), self.schema)]
        if rows_from_theirs:
            parts.append(conform(self.theirs_reader.fetch(np.sort(np.array(rows_from_theirs, np.uint64))),
                                 self.schema))
        deletes = np.concatenate([self.theirs_deleted, np.array(deleted, np.uint64)])
        return pa.concat_tables(parts), np.sort(deletes)


def unified_schema(base: pa.Schema, ours: pa.Schema, theirs: pa.Schema) -> pa.Schema:
    """Both sides' schema changes since ``base`` together (the caller has refused breaking or clashing
    ones): ours' columns in ours' order, a column's type from the side that changed it, then the columns
    only theirs added; every column nullable where either side's is."""
    fields = []
    for field in ours:
        other = theirs.field(field.name) if field.name in theirs.names else None
        was = base.field(field.name).type if field.name in base.names else None
        if other is not None and other.type != field.type and field.type == was:
            field = other  # only theirs changed its type
        fields.append(field.with_nullable(field.nullable or other is None or other.nullable))
    fields += [f.with_nullable(True) for f in theirs if f.name not in ours.names]
    return pa.schema(fields)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table``'s rows in ``schema``: its columns in that order, nulls in the columns it lacks, widened."""
    if table.schema.remove_metadata().equals(schema):
        return table
    columns = [table.column(f.name).cast(f.type) if f.name in table.column_names
               else pa.nulls(table.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def _snapshots(session: Session, ids: list[str]) -> list[SnapshotRow]:
    return [catalog.get_snapshot(session, i) for i in ids]


def _touched(ctx: Context, session: Session, graph: Graph, base: SnapshotRow, side: SnapshotRow,
             keys: list[str], limit: int) -> np.ndarray | None:
    """Key hashes the commits between ``base`` and ``side`` touched, or None when that is not cheap.

    Both first-parent chains are walked back to where they meet: every key whose value differs
    between the two was changed by a commit on one of those stretches."""
    chain_side, chain_base = graph.first_parents(side.id), graph.first_parents(base.id)
    on_base = set(chain_base)
    meet = next((s for s in chain_side if s in on_base), None)
    if meet is None:
        return None
    stretch = _snapshots(session, chain_side[:chain_side.index(meet)] + chain_base[:chain_base.index(meet)])
    if any(s.schema_fingerprint != base.schema_fingerprint for s in stretch) or \
            sum(s.added + s.changed + s.removed for s in stretch) > limit:
        return None
    touched = [np.asarray(ctx.cache.rows_index(s.change_sha256, keys).kh) for s in stretch]
    touched += [np.asarray(ctx.cache.deletes_index(s.deletes_sha256, keys)) for s in stretch if s.deletes_sha256]
    return unique_sorted(np.concatenate(touched)) if touched else np.zeros(0, np.uint64)


def _changed_by_index(base: ManifestReader, side: ManifestReader) -> np.ndarray:
    """Key hashes whose row differs between ``base`` and ``side``, from their whole indexes (O(n))."""
    kh, rh = side.effective_index()
    found = compare_sorted(kh, rh, *base.effective_index())
    return union_sorted(kh[~found.same], found.removed_kh)


def _differs(a: Lookup, b: Lookup) -> np.ndarray:
    both = a.present & b.present
    return np.asarray((a.present != b.present) | (both & (a.rh != b.rh)))


def _take(lookups: tuple[Lookup, Lookup, Lookup], mask: np.ndarray) -> tuple[Lookup, Lookup, Lookup]:
    return lookups[0].take(mask), lookups[1].take(mask), lookups[2].take(mask)


def _values_differ(a: pa.ChunkedArray, b: pa.ChunkedArray) -> np.ndarray:
    """Per row: the actual values differ (nulls equal nulls)."""
    both_null = pc.and_(pc.is_null(a), pc.is_null(b))
    equal = pc.fill_null(pc.equal(a, b), False)
    return np.asarray(~pc.or_(both_null, equal).to_numpy(zero_copy_only=False))


def _row_conflicts(readers: tuple[ManifestReader, ManifestReader, ManifestReader], kh: np.ndarray,
                   lookups: tuple[Lookup, Lookup, Lookup], keys: list[str]) -> list[Conflict]:
    """A row deleted on one side and changed on the other (rare: whole rows are read)."""
    rows = []
    for reader, found in zip(readers, lookups, strict=True):
        present = found.present
        fetched = reader.fetch(kh[present], found=found.take(present)).to_pylist()
        by_kh = dict(zip(kh[present].tolist(), fetched, strict=True))
        rows.append([by_kh.get(k) for k in kh.tolist()])
    conflicts = []
    for k, b, o, t in zip(kh.tolist(), *rows, strict=True):
        present = o if o is not None else t
        conflicts.append(Conflict(k, {c: present[c] for c in keys}, ROW,
                                  "deleted-ours" if o is None else "deleted-theirs", b,
                                  DELETED if o is None else o, DELETED if t is None else t))
    return conflicts


def _cells_at(reader: ManifestReader, found: Lookup, columns: list[str]) -> list[dict[str, Any]]:
    """The values of ``columns`` at looked-up rows (all present), in order: a few cells of a large base
    layer, so each needed row group is read with those columns dictionary-encoded (no string decoding)."""
    out: list[dict[str, Any]] = [{} for _ in range(len(found.layer))]
    columns = [c for c in columns if c in reader.schema().names]  # a column added since has no base value
    if not columns:
        return out
    for layer_no in unique_sorted(found.layer):
        which = np.flatnonzero(found.layer == layer_no)
        parquet = pq.ParquetFile(reader.layer_path(int(layer_no)), read_dictionary=columns)
        bounds = np.cumsum([0] + [parquet.metadata.row_group(g).num_rows
                                  for g in range(parquet.metadata.num_row_groups)])
        positions = found.position[which]
        groups = np.searchsorted(bounds, positions, side="right") - 1
        for group in unique_sorted(groups):
            here = groups == group
            table = parquet.read_row_group(int(group), columns=columns)
            picked = table.take(arrow_array(positions[here] - bounds[group])).to_pylist()
            for row, values in zip(which[here].tolist(), picked, strict=True):
                out[row] = values
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def _cell_merge(readers: tuple[ManifestReader, ManifestReader, ManifestReader], kh: np.ndarray,
                lookups: tuple[Lookup, Lookup, Lookup], keys: list[str], schema: pa.Schema
                ) -> tuple[pa.Table, np.ndarray, list[Conflict]]:
    """Merge rows both sides changed, cell by cell, on actual values. Their current rows sit in each
    side's upper layers (cheap to read); the base is read only for the cells where the sides differ,
    those columns only."""
    r_base, r_ours, r_theirs = readers
    l_base, l_ours, l_theirs = lookups
    ours = conform(r_ours.fetch(kh, found=l_ours), schema)
    theirs = conform(r_theirs.fetch(kh, found=l_theirs), schema)
    differ = {c: _values_differ(ours.column(c), theirs.column(c)) for c in schema.names if c not in keys}
    wanted = [c for c, mask in differ.items() if mask.any()]
    merged = {name: ours.column(name) for name in schema.names}
    differs = np.zeros(len(kh), bool)
    if not wanted:
        return pa.table(merged), differs, []
    rows = np.flatnonzero(np.any([differ[c] for c in wanted], axis=0))
    in_base = rows[l_base.present[rows]]
    base_of = dict(zip(in_base.tolist(), _cells_at(r_base, l_base.take(in_base), wanted), strict=True))
    key_of = dict(zip(rows.tolist(), ours.select(keys).take(arrow_array(rows)).to_pylist(), strict=True))
    conflicts: list[Conflict] = []
    for column in wanted:
        take = np.zeros(len(kh), bool)
        for i in np.flatnonzero(differ[column]).tolist():
            o, t = ours.column(column)[i].as_py(), theirs.column(column)[i].as_py()
            base = base_of.get(i)
            if base is not None and _same(o, base.get(column)):
                take[i] = True
            elif base is None or not _same(t, base.get(column)):
                conflicts.append(Conflict(int(kh[i]), key_of[i], column, "added" if base is None else "changed",
                                          None if base is None else base.get(column), o, t, row=i))
        if take.any():
            merged[column] = pc.if_else(pa.array(take), theirs.column(column), ours.column(column))
            differs |= take
    return pa.table(merged), differs, conflicts


def _split_ids(readers: tuple[ManifestReader, ManifestReader, ManifestReader], ids: np.ndarray,
               lookups: tuple[Lookup, Lookup, Lookup], keys: list[str]) -> tuple[np.ndarray, pa.Table | None]:
    """Which ids name different keys in different snapshots (two branches each stored a key under an id
    another key has on the other side: a key-hash collision), and the key values found under them."""
    stored = []
    for reader, found in zip(readers, lookups, strict=True):
        present = found.present
        table = reader.fetch_keys(ids[present], found=found.take(present)).select(keys) if present.any() else None
        stored.append((present, np.cumsum(present) - 1, table))
    split = np.zeros(len(ids), bool)
    for one, two in ((0, 1), (0, 2), (1, 2)):
        (p1, at1, t1), (p2, at2, t2) = stored[one], stored[two]
        both = np.flatnonzero(p1 & p2)
        if both.size and t1 is not None and t2 is not None:
            same = rows_equal(t1.take(arrow_array(at1[both])), t2.take(arrow_array(at2[both])), keys)
            split[both[~same]] = True
    if not split.any():
        return split, None
    found_keys: dict[str, dict[str, Any]] = {}
    for present, at, table in stored:
        here = np.flatnonzero(split & present)
        if here.size and table is not None:
            for row in table.take(arrow_array(at[here])).to_pylist():
                found_keys.setdefault(json.dumps([row[k] for k in keys], default=repr, ensure_ascii=False), row)
    return split, pa.Table.from_pylist(list(found_keys.values()))


def _rows_same(a: dict[str, Any] | None, b: dict[str, Any] | None, columns: list[str]) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return all(_same(a.get(c), b.get(c)) for c in columns)


@dataclass
class _ByValue:
    """What the keys of colliding ids contribute to a merge, decided by their values."""

    ids: np.ndarray
    """Every id (in any snapshot) those keys have: the merge by ids leaves them alone."""
    taken: list[dict[str, Any]]
    deleted: list[int]
    merged: list[dict[str, Any]]
    differs: list[bool]
    conflicts: list[Conflict]


def _by_value(readers: tuple[ManifestReader, ManifestReader, ManifestReader], key_table: pa.Table,
              keys: list[str], schema: pa.Schema, first_row: int) -> _ByValue:
    """Three-way merge of the keys in ``key_table`` found in each snapshot by their values (not by id)."""
    kh = key_hash(key_table, keys)
    located = [assign_ids(key_table, keys, kh, reader, "merge") for reader in readers]
    rows: list[list[dict[str, Any] | None]] = []
    for reader, identity in zip(readers, located, strict=True):
        present = np.flatnonzero(identity.found.present)
        # by id (the lookup of a bulk match is positions in a whole read, not in the layers)
        fetched = conform(reader.fetch(identity.ids[present]), schema).to_pylist() if present.size else []
        side: list[dict[str, Any] | None] = [None] * key_table.num_rows
        for i, row in zip(present.tolist(), fetched, strict=True):
            side[i] = row
        rows.append(side)
    ids = unique_sorted(np.concatenate([identity.ids[identity.found.present] for identity in located]))
    result = _ByValue(ids, [], [], [], [], [])
    values = [c for c in schema.names if c not in keys]
    for i, key in enumerate(key_table.to_pylist()):
        b, o, t = rows[0][i], rows[1][i], rows[2][i]
        id_ours, id_theirs = int(located[1].ids[i]), int(located[2].ids[i])
        if _rows_same(o, t, schema.names) or _rows_same(t, b, schema.names):
            continue  # no change from theirs to take
        if _rows_same(o, b, schema.names):
            if t is None:
                result.deleted.append(id_ours)
            else:
                result.taken.append(t)
            continue
        if o is None or t is None:
            result.conflicts.append(Conflict(id_ours if t is None else id_theirs, key, ROW,
                                             "deleted-ours" if o is None else "deleted-theirs", b,
                                             DELETED if o is None else o, DELETED if t is None else t))
            continue
        row = dict(o)
        differs = False
        for column in values:
            if _same(o[column], t[column]):
                continue
            if b is not None and _same(o[column], b[column]):
                row[column], differs = t[column], True
            elif b is None or not _same(t[column], b[column]):
                result.conflicts.append(Conflict(id_ours, key, column, "added" if b is None else "changed",
                                                 None if b is None else b[column], o[column], t[column],
                                                 row=first_row + len(result.merged)))
        result.merged.append(row)
        result.differs.append(differs)
    return result


def plan_merge(ctx: Context, session: Session, graph: Graph, base: SnapshotRow, ours: SnapshotRow,
               theirs: SnapshotRow, keys: list[str]) -> MergePlan:
    """Classify every key either side changed since ``base``; see the module docstring.

    The sides may have changed the schema compatibly since ``base`` (the caller refuses breaking or
    clashing changes): rows are compared and merged in :func:`unified_schema`."""
    readers = (ManifestReader(ctx.store, ctx.cache, load_manifest(ctx, base)),
               ManifestReader(ctx.store, ctx.cache, load_manifest(ctx, ours)),
               ManifestReader(ctx.store, ctx.cache, load_manifest(ctx, theirs)))
    r_base, r_ours, r_theirs = readers
    limit = max(1000, int(max(base.rows, ours.rows, theirs.rows) * PATH_LIMIT_FRACTION))
    t_ours = _touched(ctx, session, graph, base, ours, keys, limit)
    t_theirs = _touched(ctx, session, graph, base, theirs, keys, limit) if t_ours is not None else None
    full = t_theirs is None
    if full:
        t_ours, t_theirs = _changed_by_index(r_base, r_ours), _changed_by_index(r_base, r_theirs)
    assert t_ours is not None and t_theirs is not None
    candidates = union_sorted(t_ours, t_theirs)
    l_base, l_ours, l_theirs = (r.lookup(candidates) for r in readers)
    schema = unified_schema(r_base.schema(), r_ours.schema(), r_theirs.schema())
    # Invariant 11: an id found on several sides is one row only if it holds the same key values on each;
    # ids that name different keys (a collision each side settled alone) are merged by key values.
    split, split_keys = _split_ids(readers, candidates, (l_base, l_ours, l_theirs), keys)
    by_value = None
    if split_keys is not None:
        by_value = _by_value(readers, split_keys, keys, schema, 0)
        keep_by_id = ~np.isin(candidates, by_value.ids)
        candidates = candidates[keep_by_id]
        l_base, l_ours, l_theirs = (found.take(keep_by_id) for found in (l_base, l_ours, l_theirs))
    ours_changed, theirs_changed = _differs(l_base, l_ours), _differs(l_base, l_theirs)
    only_theirs = theirs_changed & ~ours_changed
    take = only_theirs & l_theirs.present
    theirs_taken = conform(r_theirs.fetch(candidates[take], found=l_theirs.take(take)), schema)
    theirs_deleted = np.sort(candidates[only_theirs & ~l_theirs.present])
    both = theirs_changed & ours_changed & _differs(l_ours, l_theirs)
    kept = both & l_ours.present & l_theirs.present
    lookups = (l_base, l_ours, l_theirs)
    merged, differs, conflicts = _cell_merge(readers, candidates[kept], _take(lookups, kept), keys, schema)
    gone = both & ~kept
    if gone.any() and not schema.equals(r_base.schema()):
        # A schema change makes every row's hash differ: a row deleted on one side whose other side only
        # gained the new columns' nulls (or a widening) is a deletion, not a conflict.
        present = np.flatnonzero(gone)
        side = np.where(l_ours.present[present], 1, 2)
        for number, reader, found in ((1, r_ours, l_ours), (2, r_theirs, l_theirs)):
            here = present[side == number]
            if not here.size:
                continue
            after = conform(reader.fetch(candidates[here], found=found.take(here)), schema)
            before = conform(r_base.fetch(candidates[here], found=l_base.take(here)), schema)
            same = here[rows_equal(before, after, schema.names)]
            gone[same] = False
            if number == 1:  # theirs deleted a row ours left alone
                theirs_deleted = union_sorted(theirs_deleted, candidates[same])
    if gone.any():
        conflicts += _row_conflicts(readers, candidates[gone], _take(lookups, gone), keys)
    if by_value is not None:
        theirs_taken, theirs_deleted, merged, differs = _with_by_value(
            by_value, schema, theirs_taken, theirs_deleted, merged, differs, conflicts)
    return MergePlan(keys, schema, base, ours, theirs, r_ours, r_theirs, theirs_taken, theirs_deleted, merged,
                     differs, conflicts, int(ours_changed.sum()), int(theirs_changed.sum()), full,
                     not schema.equals(r_ours.schema()))


def _with_by_value(by_value: _ByValue, schema: pa.Schema, taken: pa.Table, deleted: np.ndarray, merged: pa.Table,
                   differs: np.ndarray, conflicts: list[Conflict]
                   ) -> tuple[pa.Table, np.ndarray, pa.Table, np.ndarray]:
    """The merge by ids with what the keys merged by value add: rows to take, ids to delete, rows merged
    cell by cell (appended after the others, their cell conflicts pointing at them)."""
    if by_value.taken:
        taken = pa.concat_tables([taken, pa.Table.from_pylist(by_value.taken, schema=schema)])
    if by_value.deleted:
        deleted = np.sort(np.concatenate([deleted, np.array(by_value.deleted, np.uint64)]))
    offset = merged.num_rows
    for conflict in by_value.conflicts:
        if conflict.column != ROW:
            conflict.row += offset
        conflicts.append(conflict)
    if by_value.merged:
        merged = pa.concat_tables([conform(merged, schema), pa.Table.from_pylist(by_value.merged, schema=schema)])
        differs = np.concatenate([differs, np.array(by_value.differs, bool)])
    return taken, deleted, merged, differs
