"""``registry history NAME KEY``: every labeling act and every snapshot that changed one sample."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlmodel import col, select

from registry import catalog
from registry.context import Context
from registry.db import transaction
from registry.errors import NotFound
from registry.models import SnapshotRow
from registry.provenance.identity import identity_key, identity_label
from registry.provenance.labels import key_type
from registry.provenance.store import read_delta
from registry.snapshots.hashing import key_hash
from registry.snapshots.layer_reader import ManifestReader
from registry.snapshots.layers import in_sorted
from registry.snapshots.manifest import load_manifest

__all__ = ["HistoryEntry", "sample_history"]

LABEL_COLUMN = "label"
"""The column a plain commit's row value is shown from, when the row has it (the importers write it)."""


@dataclass(frozen=True)
class HistoryEntry:
    """One event in a sample's life: a labeling act (``kind='label'``) or a snapshot that changed or
    removed its row (``kind='snapshot'``)."""

    kind: str
    time: str | None
    snapshot_id: str
    message: str
    value: str | None = None
    annotator: str | None = None
    source_kind: str | None = None
    guideline_version: str | None = None
    change: str | None = None
    """For a labeling act: added, updated or removed in that snapshot; for a snapshot: upserted or deleted."""
    annotation_id: str | None = None
    annotator_id: str | None = None
    """The stable identity of who labeled (``annotator`` shows it with email or name)."""
    model_version: str | None = None
    """For a model's prediction (``source_kind`` other than human): the model and version that made it."""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def sample_history(ctx: Context, name: str, key: str) -> list[HistoryEntry]:
    """Oldest first: each labeling act on sample ``key`` (with the snapshot that recorded it) and each
    snapshot whose rows upserted or deleted it.

    Raises:
        NotFound: unknown dataset, or the sample appears in no snapshot and no record.
    """
    with transaction(ctx.engine, readonly=True) as session:
        dataset = catalog.get_dataset(session, catalog.check_dataset_name(name))
        keys = catalog.key_columns(dataset)
        snapshots = list(session.exec(select(SnapshotRow).where(SnapshotRow.dataset_id == dataset.id)
                                      .order_by(col(SnapshotRow.seq))).all())
        schema = catalog.latest_schema_version(session, dataset)
    entries: list[HistoryEntry] = []
    if len(keys) == 1 and schema is not None:
        kh = _key_hash_of(key, keys[0], key_type(schema, keys[0]))
        entries += [e for s in snapshots for e in _row_changes(ctx, s, keys, kh)]
    entries += [e for s in snapshots if s.annotations_sha256 for e in _labeling_acts(ctx, s, key)]
    if not entries:
        raise NotFound(f"{name} has no sample {key!r} in any snapshot or annotation record")
    order = {s.id: s.seq for s in snapshots}
    return sorted(entries, key=lambda e: (_instant(e.time), order[e.snapshot_id], e.kind == "snapshot"))


def _instant(text: str | None) -> datetime:
    """When an event happened, for time order: sources write ISO times in several forms (``Z``, offsets,
    none); one without a zone is UTC, and an unreadable or missing one sorts last."""
    if not text:
        return datetime.max.replace(tzinfo=UTC)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _key_hash_of(key: str, column: str, dtype: pa.DataType) -> int | None:
    try:
        value = pa.array([key]).cast(dtype)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return int(key_hash(pa.table({column: value}), [column])[0])


def _row_changes(ctx: Context, snap: SnapshotRow, keys: list[str], kh: int | None) -> list[HistoryEntry]:
    if kh is None:
        return []
    probe = np.array([kh], np.uint64)
    found = []
    if snap.change_sha256 and in_sorted(probe, ctx.cache.rows_index(snap.change_sha256, keys).kh)[0][0]:
        found.append("upserted")
    if snap.deletes_sha256 and in_sorted(probe, ctx.cache.deletes_index(snap.deletes_sha256, keys))[0][0]:
        found.append("deleted")
    value = _row_value(ctx, snap, keys, probe) if "upserted" in found else None
    return [HistoryEntry("snapshot", snap.created_at, snap.id, snap.message,
                         value=value if change == "upserted" else None, annotator=snap.author, change=change)
            for change in found]


def _row_value(ctx: Context, snap: SnapshotRow, keys: list[str], probe: np.ndarray) -> str | None:
    """The row's value in ``snap``, so a plain commit shows what it wrote: its ``label`` when it has
    one, else the row's other columns as JSON."""
    reader = ManifestReader(ctx.store, ctx.cache, load_manifest(ctx, snap))
    rows = reader.fetch(probe).to_pylist()
    if not rows:
        return None
    row = {k: v for k, v in rows[0].items() if k not in keys}
    if LABEL_COLUMN in row:
        label = row[LABEL_COLUMN]
        return None if label is None else str(label)
    return json.dumps(row, default=str, ensure_ascii=False, sort_keys=True)


def _labeling_acts(ctx: Context, snap: SnapshotRow, key: str) -> list[HistoryEntry]:
    assert snap.annotations_sha256 is not None
    table = read_delta(ctx, snap.annotations_sha256)
    rows = table.filter(pc.equal(table.column("sample_key"), key)).to_pylist()
    # A removal is known when the snapshot that dropped the record was made, not when the act was.
    return [HistoryEntry("label", snap.created_at if r["change"] == "removed" else r["updated_at"] or r["created_at"],
                         snap.id, snap.message, r["value"],
                         identity_label(r["annotator_id"], r["annotator_email"], r["annotator_name"]),
                         r["source_kind"], r["guideline_version"], r["change"], r["annotation_id"],
                         identity_key(r["annotator_id"], r["annotator_email"], r["annotator_name"]),
                         r["model_version"] if r["source_kind"] != "human" else None) for r in rows]
