"""``registry diff A B --labels``: how the labels moved between two snapshots, and by whom."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from registry import catalog
from registry.arrays import arrow_array, unique_sorted
from registry.context import Context
from registry.db import transaction
from registry.errors import InvalidInput
from registry.provenance.identity import identity_labels
from registry.provenance.label_counts import load_counts, save_counts
from registry.provenance.labels import current_annotators, key_strings, require_label_column
from registry.provenance.store import records_at
from registry.refs import Ref
from registry.snapshots.diff import Classified, compare_snapshots
from registry.snapshots.hashing import column_hash
from registry.snapshots.history import resolve_ref
from registry.snapshots.layer_reader import Lookup, ManifestReader

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
    The work follows the change: the engine's diff names the rows added, removed and changed; only the
    label column of each snapshot is read in full, a batch at a time, to count its labels, and an
    unchanged row keeps its label, so the matrix's diagonal comes from those counts.

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
        reader_a, reader_b, found = compare_snapshots(session, ctx, dataset_a, snap_a, snap_b)
    for reader, ref in ((reader_a, a), (reader_b, b)):
        require_label_column(reader.schema(), column, str(ref))
    kept_a, kept_b = load_counts(ctx, snap_a.id, column), load_counts(ctx, snap_b.id, column)
    if kept_a is None and kept_b is None:
        # Neither side's counts are kept: count ``a``'s labels now (one read of its label column, needed for
        # the distributions anyway), so that its changed rows' labels come from their cell hashes instead
        # of a fetch that would decode the key and label columns of every row group they sit in.
        kept_a = _distribution(reader_a, column)
        save_counts(ctx, snap_a.id, column, kept_a)
    changed = _changed_labels((reader_a, kept_a), (reader_b, kept_b), found, keys, column)
    removed = _counts(_labels_of(reader_a.fetch(found.kh_removed, columns=[column]), column))
    dist_a, dist_b = _distributions(ctx, (snap_a.id, kept_a), (snap_b.id, kept_b), column,
                                    _Delta(removed, _counts(changed.column("_label_a")),
                                           _counts(changed.column("_label_b")),
                                           _counts(_labels_of(reader_b.fetch(found.kh_added, columns=[column]),
                                                              column))))
    rows_a, rows_b = sum(dist_a.values()), sum(dist_b.values())
    result = LabelDiff(str(a), str(b), column, rows_a, rows_b, rows_a - len(found.kh_removed), 0)
    result.matrix = _matrix(dist_a, removed, changed)
    result.distribution_a, result.distribution_b = dist_a, dist_b
    result.net_change = {c: dist_b.get(c, 0) - dist_a.get(c, 0) for c in sorted(dist_a.keys() | dist_b.keys())}
    result.total_variation = 0.5 * sum(abs(dist_a.get(c, 0) / max(rows_a, 1) - dist_b.get(c, 0) / max(rows_b, 1))
                                       for c in dist_a.keys() | dist_b.keys())
    # Sorted by key, so pages of ``changes`` (offset, rows) are stable from one request to the next.
    flipped = changed.filter(pc.not_equal(changed.column("_label_a"), changed.column("_label_b"))).sort_by("_key")
    result.relabeled = flipped.num_rows
    who = current_annotators(records_b, flipped.column("_key").combine_chunks(),
                             _raw(flipped.column("_label_b")))
    who_labels = identity_labels(who)
    names = pc.fill_null(who_labels, "(unknown)")
    guidelines = pc.fill_null(who.column("guideline_version"), "(unknown)")
    result.by_annotator, result.by_guideline = _most_common(names), _most_common(guidelines)
    listed = pa.table({"key": flipped.column("_key"), "from": _raw(flipped.column("_label_a")),
                       "to": _raw(flipped.column("_label_b")), "annotator": who_labels,
                       "annotator_id": who.column("annotator_id"), "guideline_version": who.column("guideline_version"),
                       "labeled_at": who.column("labeled_at")})
    result.changes = listed.slice(offset, rows).to_pylist()  # one conversion, not a dict built per row in Python
    return result


def _labels_of(table: pa.Table, column: str) -> pa.ChunkedArray:
    """A column's values as label names: text, a missing label named :data:`NULL_LABEL`."""
    return pc.fill_null(pc.cast(table.column(column), pa.string()), NULL_LABEL)


@dataclass(frozen=True)
class _Delta:
    """Label counts of what turns ``a`` into ``b``: rows removed, changed rows before and after, rows added."""

    removed: dict[str, int]
    changed_a: dict[str, int]
    changed_b: dict[str, int]
    added: dict[str, int]


def _distributions(ctx: Context, a: tuple[str, dict[str, int] | None], b: tuple[str, dict[str, int] | None],
                   column: str, delta: _Delta) -> tuple[dict[str, int], dict[str, int]]:
    """How many rows carry each label on each side, given each side's kept counts (at least one side's): the
    other side's derived from them and ``delta``, and kept."""
    (id_a, dist_a), (id_b, dist_b) = a, b
    if dist_b is None:
        assert dist_a is not None
        dist_b = _moved(dist_a, take=(delta.removed, delta.changed_a), give=(delta.changed_b, delta.added))
        save_counts(ctx, id_b, column, dist_b)
    if dist_a is None:
        dist_a = _moved(dist_b, take=(delta.added, delta.changed_b), give=(delta.changed_a, delta.removed))
        save_counts(ctx, id_a, column, dist_a)
    return dist_a, dist_b


def _moved(counts: dict[str, int], take: tuple[dict[str, int], ...], give: tuple[dict[str, int], ...]
           ) -> dict[str, int]:
    """``counts`` less every count in ``take`` plus every count in ``give`` (labels left with none dropped)."""
    out = dict(counts)
    for sign, parts in ((-1, take), (1, give)):
        for part in parts:
            for label, count in part.items():
                out[label] = out.get(label, 0) + sign * count
    return dict(sorted((label, count) for label, count in out.items() if count))


def _distribution(reader: ManifestReader, column: str) -> dict[str, int]:
    """How many rows carry each label, by label name (read a batch at a time)."""
    counts = reader.count_values(column, pa.string())
    return dict(sorted((NULL_LABEL if label is None else label, count) for label, count in counts.items()))


def _changed_labels(a: tuple[ManifestReader, dict[str, int] | None], b: tuple[ManifestReader, dict[str, int] | None],
                    found: Classified, keys: list[str], column: str) -> pa.Table:
    """Each row present on both sides whose values changed: its key (as text) and its label on each side.

    A side's labels come from the cell hashes of its index when its label counts (given with its reader) are
    known (see :func:`_labels_by_hash`), and the keys from the index's key columns: no Parquet row group is
    decoded. Otherwise the rows are fetched."""
    (reader_a, counts_a), (reader_b, counts_b) = a, b
    kh = found.kh_changed
    in_a = found.changed_a if found.changed_a is not None else reader_a.lookup(kh)
    in_b = found.changed_b if found.changed_b is not None else reader_b.lookup(kh)
    labels_a = _labels_by_hash(reader_a, in_a, column, counts_a)
    if labels_a is None:
        before = reader_a.fetch(kh, columns=[*keys, column], found=in_a)
        key_text, labels_a = key_strings(before, keys), _labels_of(before, column)
    else:  # one id, one key: read the keys from the side whose rows sit in the smaller layers
        side, found_on_side = (reader_a, in_a) if _rows_under(reader_a, in_a) <= _rows_under(reader_b, in_b) \
            else (reader_b, in_b)
        key_text = key_strings(side.fetch_keys(kh, found_on_side), keys)
    labels_b = _labels_by_hash(reader_b, in_b, column, counts_b)
    if labels_b is None:
        labels_b = _labels_of(reader_b.fetch(kh, columns=[column], found=in_b), column)
    return pa.table({"_key": key_text, "_label_a": labels_a, "_label_b": labels_b})


def _rows_under(reader: ManifestReader, found: Lookup) -> int:
    """How many rows the layers holding ``found`` have: what reading from them costs, roughly."""
    layers = reader.manifest.layers
    return sum(layers[int(n)].rows_count for n in unique_sorted(found.layer[found.present]))


def _labels_by_hash(reader: ManifestReader, found: Lookup, column: str, counts: dict[str, int] | None
                    ) -> pa.Array | None:
    """The labels of looked-up rows, read from the cell hashes of their index instead of their Parquet rows.

    ``counts`` (the label-count cache) names every label the snapshot holds. When none of those share a hash,
    the label whose hash a cell carries is that cell's value: not a guess, since the cell holds one of
    them. None when that cannot be known (no counts, a column that is not text, an index without cell
    hashes, two labels with one hash, or a hash no label has): the caller then reads the rows."""
    if counts is None or not counts:
        return None
    kind = reader.schema().field(column).type
    if kind not in (pa.string(), pa.large_string()):
        return None
    hashes = reader.cell_hashes(found, [column])
    if hashes is None:
        return None
    # The null label is named NULL_LABEL in the counts, as is a real label spelled that way: both stand.
    names = [*counts, *([NULL_LABEL] if NULL_LABEL in counts else [])]
    values = [*counts, *([None] if NULL_LABEL in counts else [])]
    known = column_hash(pa.array(values, kind))
    order = np.argsort(known, kind="stable")
    known = known[order]
    if len(unique_sorted(known)) != len(known):
        return None
    at = np.minimum(np.searchsorted(known, hashes[column]), len(known) - 1)
    if not (known[at] == hashes[column]).all():
        return None
    return pa.array(names, pa.string()).take(arrow_array(order[at]))


def _matrix(dist_a: dict[str, int], removed: dict[str, int], changed: pa.Table) -> dict[str, dict[str, int]]:
    """``matrix[from][to]`` over the rows on both sides: the changed rows' label pairs, and every other row
    of ``a`` that ``b`` still has on the diagonal (an unchanged row keeps its label)."""
    matrix: dict[str, dict[str, int]] = {}
    stay = {label: count - removed.get(label, 0) for label, count in dist_a.items()}
    for (old, new), count in _pair_counts(changed.column("_label_a"), changed.column("_label_b")).items():
        matrix.setdefault(old, {})[new] = count
        stay[old] -= count
    for label, count in stay.items():
        if count:
            row = matrix.setdefault(label, {})
            row[label] = row.get(label, 0) + count
    return {old: dict(sorted(row.items())) for old, row in sorted(matrix.items())}


def _pair_counts(before: pa.ChunkedArray, after: pa.ChunkedArray) -> dict[tuple[str, str], int]:
    """How many rows carry each (before, after) pair of labels (neither null). By dictionary codes rather than
    ``Table.group_by``, whose first call in a process imports pyarrow's Acero engine (about 10 ms)."""
    codes_a, codes_b = (pc.dictionary_encode(side.combine_chunks()) for side in (before, after))
    width = len(codes_b.dictionary)
    pair = (codes_a.indices.to_numpy().astype(np.int64) * width + codes_b.indices.to_numpy())
    values, counts = np.unique(pair, return_counts=True)  # with return_counts, no import of numpy.ma
    names_a, names_b = codes_a.dictionary.to_pylist(), codes_b.dictionary.to_pylist()
    return {(names_a[value // width], names_b[value % width]): int(count)
            for value, count in zip(values.tolist(), counts.tolist(), strict=True)}


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
