"""Annotation records for the record-based checks (agreement, annotator accuracy, provenance).

Records are an Arrow table in long form, one labeling act per row:

========================  ==========================================================
``sample_key`` (string)   the labeled row's key (a composite key's values joined by ``|``)
``annotator_id`` (string) who labeled it (a person, or a model name for model records)
``value`` (string)        the label given
``created_at``            when (timestamp or ISO string); the latest act per annotator counts
``guideline_version``     the labeling guideline in force
``source_kind``           ``human`` or ``model``
``annotator_email``       their email, ``annotator_name`` their display name (shown beside the id)
========================  ==========================================================

Who labeled is the stable identity of :mod:`registry.provenance.identity`: the id, else the email,
else the name; two people sharing a display name stay two annotators.

The first three are required; missing optional columns read as nulls. :func:`load_records` is
the one place records come from: a check's ``records: DATASET@REF`` parameter names a registry
dataset holding them; without it, the snapshot's own annotation records are used (those
``registry import`` stored with it, cancelled ones left out). A snapshot without any fails the
check with "no annotation records for this snapshot": it never passes silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from registry.context import Context
from registry.db import transaction
from registry.errors import Hint, InvalidInput, NotFound
from registry.models import SnapshotRow
from registry.provenance.identity import identity_label
from registry.provenance.store import records_at
from registry.refs import Ref
from registry.snapshots.history import show
from registry.snapshots.read import read

__all__ = ["OPTIONAL_COLUMNS", "REQUIRED_COLUMNS", "Ratings", "annotator_labels", "latest_ratings", "load_records",
           "normalise_records", "sample_keys"]

REQUIRED_COLUMNS = ("sample_key", "annotator_id", "value")
OPTIONAL_COLUMNS = ("created_at", "guideline_version", "source_kind", "annotator_email", "annotator_name")


def load_records(ctx: Context, snapshot: SnapshotRow, source: str | None) -> tuple[pa.Table, str]:
    """The annotation records for a snapshot and where they came from (``DATASET@ID``, or the snapshot).

    Raises:
        NotFound: the snapshot has no records of its own, or ``source`` names nothing.
        InvalidInput: the records lack a required column.
    """
    if source is None:
        return _own_records(ctx, snapshot)
    resolved = show(ctx, source)
    present = {c["name"] for c in resolved.schema}
    wanted = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in present]
    table = read(ctx, Ref(resolved.dataset, resolved.id), wanted) if wanted else pa.table({})
    return normalise_records(table, source), f"{resolved.dataset}@{resolved.id}"


def _own_records(ctx: Context, snapshot: SnapshotRow) -> tuple[pa.Table, str]:
    """The snapshot's own annotation records (provenance), without cancelled ones."""
    with transaction(ctx.engine, readonly=True) as session:
        table = records_at(ctx, session, snapshot)
    if "was_cancelled" in table.column_names:
        table = table.filter(pc.invert(pc.fill_null(table["was_cancelled"], False)))
    if not table.num_rows:
        raise NotFound(f"no annotation records for this snapshot ({snapshot.id[:12]}); import them with its rows "
                       "or name a dataset of records in the policy", hint=Hint("field", "records", "DATASET@REF"))
    return normalise_records(table, f"records of snapshot {snapshot.id[:12]}"), f"snapshot {snapshot.id}"


def normalise_records(table: pa.Table, source: str = "records") -> pa.Table:
    """The record columns with text columns as strings and absent optional columns as nulls.

    Raises:
        InvalidInput: a required column is missing.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise InvalidInput(f"{source}: annotation records need columns {', '.join(REQUIRED_COLUMNS)}; "
                           f"missing {', '.join(missing)}")
    columns: dict[str, pa.ChunkedArray | pa.Array] = {}
    for name in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS):
        if name not in table.column_names:
            columns[name] = pa.nulls(table.num_rows, pa.string())
        elif name in ("created_at",):
            columns[name] = table.column(name)
        else:
            columns[name] = pc.cast(table.column(name), pa.string())
    columns["annotator_id"] = pc.coalesce(columns["annotator_id"], columns["annotator_email"],
                                          columns["annotator_name"])
    return pa.table(columns)


def annotator_labels(records: pa.Table) -> dict[str, str]:
    """How each annotator is shown: ``id (email)`` or ``id (name)`` (see :func:`identity_label`)."""
    shown: dict[str, str] = {}
    for ident, email, name in zip(*(records.column(c).to_pylist() for c in ("annotator_id", "annotator_email",
                                                                             "annotator_name")), strict=True):
        if ident is not None and (ident not in shown or shown[ident] == ident):
            shown[ident] = identity_label(ident, email if email != ident else None,
                                          name if name != ident else None) or ident
    return shown


def sample_keys(table: pa.Table, key_columns: list[str]) -> pa.ChunkedArray | pa.Array:
    """Each row's ``sample_key``: its key as a string (composite keys joined by ``|``)."""
    parts = [pc.cast(table.column(c), pa.string()) for c in key_columns]
    return parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, "|")


@dataclass(frozen=True)
class Ratings:
    """The latest rating per (item, annotator), as integer codes into ``items``, ``annotators``, ``values``."""

    item: np.ndarray
    annotator: np.ndarray
    value: np.ndarray
    items: pa.Array
    annotators: pa.Array
    values: pa.Array

    def __len__(self) -> int:
        return len(self.item)


def _codes(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Integer codes of a column's values and the values they stand for (one dictionary for all chunks)."""
    whole = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    encoded = pc.dictionary_encode(whole)
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary


def latest_ratings(records: pa.Table, include_models: bool) -> Ratings:
    """Keep human records (all with ``include_models``) with a sample, annotator and value; then the
    latest (by ``created_at``, else record order) per (sample, annotator)."""
    keep = pc.and_(pc.and_(pc.is_valid(records["sample_key"]), pc.is_valid(records["annotator_id"])),
                   pc.is_valid(records["value"]))
    if not include_models:
        keep = pc.and_(keep, pc.fill_null(pc.equal(records["source_kind"], "human"), False))
    records = records.filter(keep)
    item, items = _codes(records["sample_key"])
    annotator, annotators = _codes(records["annotator_id"])
    value, values = _codes(records["value"])
    rank = _time_rank(records["created_at"])
    pair = item * len(annotators) + annotator
    if len(pair) and int(pair.max()) < np.iinfo(np.int64).max // max(len(pair), 1):
        order = np.argsort(pair * len(pair) + rank)  # one sort: by pair, then time
    else:
        order = np.lexsort((rank, annotator, item))
    pair = pair[order]
    last = np.ones(len(pair), bool)
    last[:-1] = pair[1:] != pair[:-1]
    chosen = order[last]
    return Ratings(item[chosen], annotator[chosen], value[chosen], items, annotators, values)


def _time_rank(created: pa.ChunkedArray) -> np.ndarray:
    """Each record's place in time order (nulls first, ties in record order); ISO strings sort as times."""
    indices = np.asarray(pc.array_sort_indices(created, null_placement="at_start"), np.int64)
    rank = np.empty(len(indices), np.int64)
    rank[indices] = np.arange(len(indices))
    return rank
