"""``registry diff A B --labels``: how the labels moved between two snapshots, and by whom."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from registry import catalog
from registry.context import Context
from registry.db import transaction
from registry.errors import InvalidInput
from registry.models import SnapshotRow
from registry.provenance.labels import current_annotators, key_strings, require_label_column
from registry.provenance.store import records_at
from registry.snapshots.commit import load_manifest
from registry.snapshots.history import resolve_ref
from registry.snapshots.reader import ManifestReader

__all__ = ["LabelDiff", "label_diff"]

NULL_LABEL = "(none)"
"""How a missing label is named in the matrix and distributions."""


@dataclass
class LabelDiff:
    """The label change matrix and what surrounds it."""

    a: str
    b: str
    column: str
    rows_a: int
    rows_b: int
    rows_in_both: int
    relabeled: int
    matrix: dict[str, dict[str, int]] = field(default_factory=dict)
    """``matrix[from][to]`` = rows present on both sides with that pair of labels (diagonal included)."""
    net_change: dict[str, int] = field(default_factory=dict)
    distribution_a: dict[str, int] = field(default_factory=dict)
    distribution_b: dict[str, int] = field(default_factory=dict)
    total_variation: float = 0.0
    by_annotator: dict[str, int] = field(default_factory=dict)
    by_guideline: dict[str, int] = field(default_factory=dict)
    changes: list[dict[str, object]] = field(default_factory=list)
    """Each relabeled row: key, from, to, and who gave the new label under which guideline."""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def label_diff(ctx: Context, a: str, b: str, column: str = "label", rows: int | None = None,
               offset: int = 0) -> LabelDiff:
    """Compare ``column`` between snapshots ``a`` and ``b`` of one dataset, by key.

    ``rows`` caps the listed changes (all are counted); ``offset`` skips that many first (paging).

    Raises:
        NotFound: unknown dataset or ref.
        InvalidInput: the refs name different datasets, or a side lacks ``column``.
    """
    with transaction(ctx.engine, readonly=True) as session:
        dataset_a, snap_a = resolve_ref(session, a)
        dataset_b, snap_b = resolve_ref(session, b)
        if dataset_a.id != dataset_b.id:
            raise InvalidInput(f"{a} and {b} are snapshots of different datasets; a label diff compares one")
        keys = catalog.key_columns(dataset_a)
        records_b = records_at(ctx, session, snap_b)
    left, right = (_labels(ctx, snap, keys, column, ref) for snap, ref in ((snap_a, a), (snap_b, b)))
    joined = left.join(right, "_key", join_type="inner", left_suffix="_a", right_suffix="_b")
    before = _names(joined.column("_label_a"))
    after = _names(joined.column("_label_b"))
    result = LabelDiff(a, b, column, left.num_rows, right.num_rows, joined.num_rows, 0)
    for old, new in zip(before, after, strict=True):
        result.matrix.setdefault(old, {}).setdefault(new, 0)
        result.matrix[old][new] += 1
    dist_a, dist_b = Counter(_names(left.column("_label"))), Counter(_names(right.column("_label")))
    result.distribution_a, result.distribution_b = dict(sorted(dist_a.items())), dict(sorted(dist_b.items()))
    result.net_change = {c: dist_b.get(c, 0) - dist_a.get(c, 0) for c in sorted(dist_a.keys() | dist_b.keys())}
    result.total_variation = 0.5 * sum(abs(dist_a.get(c, 0) / max(left.num_rows, 1)
                                           - dist_b.get(c, 0) / max(right.num_rows, 1))
                                       for c in dist_a.keys() | dist_b.keys())
    flipped = joined.filter(pa.array([x != y for x, y in zip(before, after, strict=True)], pa.bool_()))
    result.relabeled = flipped.num_rows
    who = current_annotators(records_b, flipped.column("_key").combine_chunks(),
                             flipped.column("_label_b").combine_chunks())
    names = who.column("annotator_name").fill_null(who.column("annotator_id")).to_pylist()
    guidelines = who.column("guideline_version").to_pylist()
    result.by_annotator = dict(Counter(n or "(unknown)" for n in names).most_common())
    result.by_guideline = dict(Counter(g or "(unknown)" for g in guidelines).most_common())
    for i, row in enumerate(flipped.slice(offset, rows).to_pylist(), start=offset):
        result.changes.append({"key": row["_key"], "from": row["_label_a"] or NULL_LABEL,
                               "to": row["_label_b"] or NULL_LABEL,
                               "annotator": names[i], "guideline_version": guidelines[i],
                               "labeled_at": who.column("labeled_at")[i].as_py()})
    return result


def _labels(ctx: Context, snapshot: SnapshotRow, keys: list[str], column: str, ref: str) -> pa.Table:
    reader = ManifestReader(ctx.store, ctx.cache, load_manifest(ctx, snapshot))
    require_label_column(reader.schema(), column, ref)
    table = reader.read([*keys, column])
    return pa.table({"_key": key_strings(table, keys), "_label": pc.cast(table.column(column), pa.string())})


def _names(column: pa.ChunkedArray | pa.Array) -> list[str]:
    return [NULL_LABEL if v is None else v for v in column.to_pylist()]
