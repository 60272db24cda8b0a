"""Keeping the key-hash index cache to the layers that refs use.

Indexes are derived data (see :mod:`registry.snapshots.layers`) and count toward the storage budget
(design invariant 4). Once compaction has merged a head's upper layers, the old layers stay stored for
the older snapshots that name them, but nothing reads their indexes unless someone diffs or upserts
against those older snapshots. :func:`trim_indexes` drops every cached index whose object no branch head
or tag uses; an index dropped and needed again is rebuilt from its object on first use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlmodel import select

from registry.context import Context
from registry.db import transaction
from registry.errors import NotFound
from registry.models import RefRow, SnapshotRow
from registry.snapshots.manifest import load_manifest

__all__ = ["TrimResult", "ref_objects", "trim_indexes"]


@dataclass
class TrimResult:
    """Indexes dropped from the cache and the bytes they held."""

    dropped: list[str] = field(default_factory=list)
    bytes_freed: int = 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def ref_objects(ctx: Context) -> set[str]:
    """Every layer object that the snapshot of a branch head or tag reads."""
    with transaction(ctx.engine, readonly=True) as session:
        snapshot_ids = set(session.exec(select(RefRow.snapshot_id)).all())
        snapshots = [session.get(SnapshotRow, sid) for sid in snapshot_ids]
        for snapshot in snapshots:
            if snapshot is not None:
                session.expunge(snapshot)
    found: set[str] = set()
    for snapshot in snapshots:
        if snapshot is None:
            continue
        try:
            found.update(load_manifest(ctx, snapshot).objects())
        except NotFound:
            continue  # verify reports a missing manifest; trimming a cache must not guess
    return found


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def trim_indexes(ctx: Context) -> TrimResult:
    """Drop the cached index of every object no ref's snapshot reads (in-flight ones, whose folder names
    start with a dot, are left alone)."""
    result = TrimResult()
    folder = ctx.cache.folder
    if not folder.is_dir():
        return result
    live = ref_objects(ctx)
    for entry in sorted(folder.iterdir()):
        name = entry.name
        if len(name) != 64 or name in live or not entry.is_dir():
            continue
        try:
            size = _size(entry)
        except OSError:
            continue  # another process dropped it meanwhile
        ctx.cache.drop(name)
        result.dropped.append(name)
        result.bytes_freed += size
    return result
