"""Three-way merge of two snapshots against their merge base, by key and cell by cell.

Only keys that changed on either side since the base are looked at: the commits between the base
and each side name them (their change and deletes objects), so the cost follows the change, not the
table. Each such key is classified from the three snapshots' key-hash indexes; rows are read only
for keys both sides changed, and compared cell by cell on their actual values:

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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from sqlmodel import Session

from registry import catalog
from registry.context import Context
from registry.models import SnapshotRow
from registry.snapshots.ancestry import Graph
from registry.snapshots.commit import load_manifest
from registry.snapshots.layers import compare_sorted
from registry.snapshots.reader import Lookup, ManifestReader

__all__ = ["DELETED", "ROW", "Conflict", "MergePlan", "display", "plan_merge", "sample_key"]

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


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


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
class _Row:
    """A key both sides changed: each side's row (None: deleted) and the merged row so far."""

    ours: dict[str, Any] | None
    theirs: dict[str, Any] | None
    merged: dict[str, Any] | None


@dataclass
class MergePlan:
    """Everything a merge of ``theirs`` into ``ours`` changes, and its conflicts."""

    keys: list[str]
    schema: pa.Schema
    base: SnapshotRow
    ours: SnapshotRow
    theirs: SnapshotRow
    ours_reader: ManifestReader
    theirs_taken: pa.Table
    """Rows only ``theirs`` changed or added: taken as they are."""
    theirs_deleted: np.ndarray
    """Sorted key hashes only ``theirs`` deleted (unchanged on ``ours``)."""
    both: dict[int, _Row]
    conflicts: list[Conflict]
    ours_changed: int
    theirs_changed: int
    full_compare: bool = False
    """The touched keys were found by comparing whole indexes (long or schema-changing history)."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def unresolved(self) -> list[Conflict]:
        return [c for c in self.conflicts if c.take is None]

    def result(self) -> tuple[pa.Table, np.ndarray]:
        """``(rows to upsert onto ours, sorted key hashes to delete from ours)`` with every resolution
        applied; an unresolved conflict keeps ours."""
        rows = {kh: _Row(r.ours, r.theirs, dict(r.merged) if r.merged is not None else None)
                for kh, r in self.both.items()}
        for conflict in self.conflicts:
            if conflict.take in (None, "ours"):
                continue
            row = rows[conflict.kh]
            if conflict.column == ROW:  # only ours or theirs resolve a row: its value is the whole row
                row.merged = dict(row.theirs) if row.theirs is not None else None
            elif row.merged is not None:
                row.merged[conflict.column] = conflict.theirs if conflict.take == "theirs" else conflict.value
        upserts = [r.merged for r in rows.values() if r.merged is not None
                   and (r.ours is None or any(not _same(r.merged[c], r.ours[c]) for c in self.schema.names))]
        deletes = [kh for kh, r in rows.items() if r.merged is None and r.ours is not None]
        merged = pa.Table.from_pylist(upserts, schema=self.schema) if upserts else self.schema.empty_table()
        table = pa.concat_tables([self.theirs_taken.cast(self.schema), merged])
        return table, np.sort(np.concatenate([self.theirs_deleted, np.array(deletes, np.uint64)]))


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
    return np.unique(np.concatenate(touched)) if touched else np.zeros(0, np.uint64)


def _changed_by_index(base: ManifestReader, side: ManifestReader) -> np.ndarray:
    """Key hashes whose row differs between ``base`` and ``side``, from their whole indexes (O(n))."""
    kh, rh = side.effective_index()
    found = compare_sorted(kh, rh, *base.effective_index())
    return np.union1d(kh[~found.same], found.removed_kh)


def _differs(a: Lookup, b: Lookup) -> np.ndarray:
    both = a.present & b.present
    return np.asarray((a.present != b.present) | (both & (a.rh != b.rh)))


def _rows_by_kh(reader: ManifestReader, kh: np.ndarray, found: Lookup) -> dict[int, dict[str, Any]]:
    present = found.present
    rows = reader.fetch(kh[present], found=found.take(present)).to_pylist()
    return dict(zip(kh[present].tolist(), rows, strict=True))


def plan_merge(ctx: Context, session: Session, graph: Graph, base: SnapshotRow, ours: SnapshotRow,
               theirs: SnapshotRow, keys: list[str]) -> MergePlan:
    """Classify every key either side changed since ``base``; see the module docstring.

    The three snapshots must share one schema (the caller checks it)."""
    readers = [ManifestReader(ctx.store, ctx.cache, load_manifest(ctx, s)) for s in (base, ours, theirs)]
    r_base, r_ours, r_theirs = readers
    limit = max(1000, int(max(base.rows, ours.rows, theirs.rows) * PATH_LIMIT_FRACTION))
    t_ours = _touched(ctx, session, graph, base, ours, keys, limit)
    t_theirs = _touched(ctx, session, graph, base, theirs, keys, limit) if t_ours is not None else None
    full = t_theirs is None
    if full:
        t_ours, t_theirs = _changed_by_index(r_base, r_ours), _changed_by_index(r_base, r_theirs)
    assert t_ours is not None and t_theirs is not None
    candidates = np.union1d(t_ours, t_theirs)
    l_base, l_ours, l_theirs = (r.lookup(candidates) for r in readers)
    ours_changed, theirs_changed = _differs(l_base, l_ours), _differs(l_base, l_theirs)
    same_result = ~_differs(l_ours, l_theirs)
    only_theirs = theirs_changed & ~ours_changed
    take = only_theirs & l_theirs.present
    theirs_taken = r_theirs.fetch(candidates[take], found=l_theirs.take(take))
    theirs_deleted = np.sort(candidates[only_theirs & ~l_theirs.present])
    both_mask = theirs_changed & ours_changed & ~same_result
    kh_both = candidates[both_mask]
    at = {name: lookup.take(both_mask) for name, lookup in (("b", l_base), ("o", l_ours), ("t", l_theirs))}
    rows_b = _rows_by_kh(r_base, kh_both, at["b"])
    rows_o = _rows_by_kh(r_ours, kh_both, at["o"])
    rows_t = _rows_by_kh(r_theirs, kh_both, at["t"])
    schema = r_ours.schema()
    values = [c for c in schema.names if c not in keys]
    both: dict[int, _Row] = {}
    conflicts: list[Conflict] = []
    for kh in kh_both.tolist():
        b, o, t = rows_b.get(kh), rows_o.get(kh), rows_t.get(kh)
        key_row = o if o is not None else t
        assert key_row is not None  # both sides deleting is not a conflict (same result)
        key = {k: key_row[k] for k in keys}
        if o is None or t is None:
            kind = "deleted-ours" if o is None else "deleted-theirs"
            both[kh] = _Row(o, t, o)
            conflicts.append(Conflict(kh, key, ROW, kind, b, DELETED if o is None else o,
                                      DELETED if t is None else t))
            continue
        merged = dict(o)
        for column in values:
            if _same(o[column], t[column]):
                continue
            if b is None:
                conflicts.append(Conflict(kh, key, column, "added", None, o[column], t[column]))
            elif _same(o[column], b[column]):
                merged[column] = t[column]
            elif not _same(t[column], b[column]):
                conflicts.append(Conflict(kh, key, column, "changed", b[column], o[column], t[column]))
        both[kh] = _Row(o, t, merged)
    return MergePlan(keys, schema, base, ours, theirs, r_ours, theirs_taken, theirs_deleted, both, conflicts,
                     int(ours_changed.sum()), int(theirs_changed.sum()), full)
