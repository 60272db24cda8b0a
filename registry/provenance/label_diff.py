"""``registry diff A B --labels``: how the labels moved between two snapshots, and by whom."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from registry import catalog
from registry.context import Context
from registry.db import transaction
from registry.errors import InvalidInput
from registry.models import SnapshotRow
from registry.provenance.identity import identity_labels
from registry.provenance.labels import current_annotators, key_strings, require_label_column
from registry.provenance.store import records_at
from registry.refs import Ref
from registry.snapshots.history import resolve_ref
from registry.snapshots.layer_reader import ManifestReader
from registry.snapshots.manifest import load_manifest

__all__ = ["LabelDiff", "label_diff"]

NULL_LABEL = "(null)"
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


def label_diff(ctx: Context, a: Ref | str, b: Ref | str, column: str = "label", rows: int | None = None,
               offset: int = 0) -> LabelDiff:
    """Compare ``column`` between snapshots ``a`` and ``b`` of one dataset, by key.

    ``rows`` caps the listed changes (all are counted); ``offset`` skips that many first (paging).

    Raises:
        NotFound: unknown dataset or ref.
        InvalidInput: the refs name different datasets, or a side lacks ``column``.
    """
    a, b = Ref.coerce(a), Ref.coerce(b)
    with transaction(ctx.engine, readonly=True) as session:
        dataset_a, snap_a = resolve_ref(session, a)
        dataset_b, snap_b = resolve_ref(session, b)
        if dataset_a.id != dataset_b.id:
            raise InvalidInput(f"{a} and {b} are snapshots of different datasets; a label diff compares one")
        keys = catalog.key_columns(dataset_a)
        records_b = records_at(ctx, session, snap_b)
    left, right = (_labels(ctx, snap, keys, column, ref) for snap, ref in ((snap_a, a), (snap_b, b)))
    joined = left.join(right, "_key", join_type="inner", left_suffix="_a", right_suffix="_b")
    result = LabelDiff(str(a), str(b), column, left.num_rows, right.num_rows, joined.num_rows, 0)
    pairs = joined.group_by(["_label_a", "_label_b"]).aggregate([("_key", "count")])
    for old, new, count in zip(*(pairs.column(n).to_pylist() for n in ("_label_a", "_label_b", "_key_count")),
                               strict=True):
        result.matrix.setdefault(old, {})[new] = count
    result.matrix = {old: dict(sorted(row.items())) for old, row in sorted(result.matrix.items())}
    dist_a, dist_b = _counts(left.column("_label")), _counts(right.column("_label"))
    result.distribution_a, result.distribution_b = dist_a, dist_b
    result.net_change = {c: dist_b.get(c, 0) - dist_a.get(c, 0) for c in sorted(dist_a.keys() | dist_b.keys())}
    result.total_variation = 0.5 * sum(abs(dist_a.get(c, 0) / max(left.num_rows, 1)
                                           - dist_b.get(c, 0) / max(right.num_rows, 1))
                                       for c in dist_a.keys() | dist_b.keys())
    # Sorted by key, so pages of ``changes`` (offset, rows) are stable from one request to the next.
    flipped = joined.filter(pc.not_equal(joined.column("_label_a"), joined.column("_label_b"))).sort_by("_key")
    result.relabeled = flipped.num_rows
    who = current_annotators(records_b, flipped.column("_key").combine_chunks(),
                             _raw(flipped.column("_label_b")))
    names = pc.fill_null(identity_labels(who), "(unknown)")
    guidelines = pc.fill_null(who.column("guideline_version"), "(unknown)")
    result.by_annotator, result.by_guideline = _most_common(names), _most_common(guidelines)
    acts = who.slice(offset, rows)
    for row, annotator, annotator_id, guideline, labeled_at in zip(
            flipped.slice(offset, rows).to_pylist(), identity_labels(acts).to_pylist(),
            acts.column("annotator_id").to_pylist(), acts.column("guideline_version").to_pylist(),
            acts.column("labeled_at").to_pylist(), strict=True):
        result.changes.append({"key": row["_key"], "from": _null(row["_label_a"]), "to": _null(row["_label_b"]),
                               "annotator": annotator, "annotator_id": annotator_id, "guideline_version": guideline,
                               "labeled_at": labeled_at})
    return result


def _labels(ctx: Context, snapshot: SnapshotRow, keys: list[str], column: str, ref: Ref) -> pa.Table:
    """The snapshot's labels by key, a missing label named :data:`NULL_LABEL`."""
    reader = ManifestReader(ctx.store, ctx.cache, load_manifest(ctx, snapshot))
    require_label_column(reader.schema(), column, str(ref))
    table = reader.read([*keys, column])
    labels = pc.fill_null(pc.cast(table.column(column), pa.string()), NULL_LABEL)
    return pa.table({"_key": key_strings(table, keys), "_label": labels})


def _null(label: str) -> str | None:
    """A change's label as JSON gives it: null for :data:`NULL_LABEL`."""
    return None if label == NULL_LABEL else label


def _raw(labels: pa.ChunkedArray) -> pa.Array:
    """Labels as the annotation records hold them: :data:`NULL_LABEL` back to null."""
    column = labels.combine_chunks()
    return pc.if_else(pc.equal(column, NULL_LABEL), pa.scalar(None, pa.string()), column)


def _counts(labels: pa.ChunkedArray) -> dict[str, int]:
    """How many rows carry each label, by label name."""
    counts = pc.value_counts(labels.combine_chunks())
    return dict(sorted(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)))


def _most_common(values: pa.Array) -> dict[str, int]:
    """Counts of each value, most common first (ties by name, so the order is stable)."""
    counts = _counts(pa.chunked_array([values], pa.string()))
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
