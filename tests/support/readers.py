"""The engine's view of a snapshot under the facade, for tests that look at layers, indexes and readers."""

from __future__ import annotations

from registry import Registry
from registry.db import transaction
from registry.models import SnapshotRow
from registry.snapshots.layer_reader import ManifestReader
from registry.snapshots.manifest import load_manifest


def snapshot_row(reg: Registry, ref: str) -> SnapshotRow:
    """The catalog row of the snapshot ``ref`` names (detached from its session)."""
    with transaction(reg.ctx.engine, readonly=True) as session:
        row = session.get(SnapshotRow, reg.show(ref).id)
        assert row is not None
        session.expunge(row)
        return row


def reader_of(reg: Registry, ref: str) -> ManifestReader:
    """A reader of the snapshot ``ref`` names, with this registry's store and index cache."""
    return ManifestReader(reg.ctx.store, reg.ctx.cache, load_manifest(reg.ctx, snapshot_row(reg, ref)))
