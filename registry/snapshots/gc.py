"""Garbage collection: delete only objects no snapshot references (design invariant 1)."""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlmodel import select

from registry.audit import log as audit
from registry.audit.models import AuditSegmentRow
from registry.context import Context
from registry.db import transaction
from registry.errors import NotFound
from registry.models import SnapshotRow
from registry.snapshots.manifest import Manifest

__all__ = ["DEFAULT_MIN_AGE", "GcReport", "gc", "referenced_objects"]

DEFAULT_MIN_AGE = 3600.0
"""Seconds an unreferenced object must have existed before it is deleted, so gc never removes
the objects of a commit that is still between writing its objects and its catalog transaction."""


@dataclass
class GcReport:
    """What gc deleted (or, with ``dry_run``, would delete)."""

    dry_run: bool
    referenced: int = 0
    deleted: list[str] = field(default_factory=list)
    deleted_bytes: int = 0
    leftovers: list[str] = field(default_factory=list)
    kept_young: int = 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def referenced_objects(ctx: Context) -> set[str]:
    """Every object the catalog names: each snapshot's change objects, manifest, the manifest's layers,
    annotation records and the labeling configurations they cite, and every sealed audit segment."""
    with transaction(ctx.engine, readonly=True) as session:
        snapshots = session.exec(select(SnapshotRow)).all()
        segments = session.exec(select(AuditSegmentRow.sha256)).all()
    found: set[str] = set(segments)
    for snap in snapshots:
        found.update(sha for sha in (snap.change_sha256, snap.deletes_sha256, snap.manifest_sha256,
                                     snap.annotations_sha256) if sha)
        if snap.annotations_sha256:
            found.update(_config_objects(ctx, snap.annotations_sha256))
        try:
            found.update(Manifest.from_bytes(ctx.store.read_bytes(snap.manifest_sha256)).objects())
        except NotFound:
            continue  # verify reports it; gc must not guess
    return found


def _config_objects(ctx: Context, annotations_sha256: str) -> set[str]:
    """Labeling configurations the records name (stored as objects by the importers)."""
    from registry.provenance.store import config_objects  # lazy: pyarrow only when gc runs, not to import Registry

    try:
        return config_objects(ctx, annotations_sha256)
    except NotFound:
        return set()


def gc(ctx: Context, dry_run: bool = False, min_age: float = DEFAULT_MIN_AGE, actor: str | None = None) -> GcReport:
    """Delete unreferenced objects older than ``min_age`` seconds, and stale temporary files.

    A run that deletes anything is audited afterwards, listing what it deleted.
    """
    report = GcReport(dry_run=dry_run)
    keep = referenced_objects(ctx)
    report.referenced = len(keep)
    cutoff = time.time() - min_age
    for info in ctx.store.iter_objects():
        if info.sha256 in keep:
            continue
        if _mtime(ctx, info.sha256) > cutoff:
            report.kept_young += 1
            continue
        if not dry_run:
            if _mtime(ctx, info.sha256) > cutoff:  # reused by a writer since the first look
                report.kept_young += 1
                continue
            ctx.store.delete(info.sha256)
            ctx.cache.drop(info.sha256)  # derived data goes with its object
        report.deleted.append(info.sha256)
        report.deleted_bytes += info.size
    if not dry_run:
        _drop_orphan_indexes(ctx, keep)
    for path in ctx.store.iter_leftovers():
        if path.stat().st_mtime <= cutoff:
            report.leftovers.append(path.name)
            if not dry_run:
                path.unlink(missing_ok=True)
    for folder in _earlier_index_formats(ctx):
        if folder.stat().st_mtime <= cutoff:
            report.leftovers.append(f"cache/{folder.name}")
            if not dry_run:
                shutil.rmtree(folder, ignore_errors=True)
    for folder, newest in ctx.cache.iter_staging():  # a killed writer's scratch index files
        if newest <= cutoff:
            report.leftovers.append(f"cache/{folder.relative_to(ctx.paths.cache_dir).as_posix()}")
            if not dry_run:
                shutil.rmtree(folder, ignore_errors=True)
    if not dry_run and (report.deleted or report.leftovers):
        with transaction(ctx.engine) as session:
            audit.record(session, ctx, "store.gc", "store", ctx.paths.storage_url, actor=actor, details={
                "deleted": report.deleted, "deleted_bytes": report.deleted_bytes, "leftovers": report.leftovers,
                "min_age": min_age})
    return report


def _drop_orphan_indexes(ctx: Context, keep: set[str]) -> None:
    """Remove cached indexes whose object is no longer referenced nor stored (compacted away)."""
    if not ctx.cache.folder.is_dir():
        return
    for entry in ctx.cache.folder.iterdir():
        name = entry.name
        if len(name) == 64 and name not in keep and not ctx.store.exists(name):
            ctx.cache.drop(name)


def _earlier_index_formats(ctx: Context) -> list[Path]:
    """Index caches of an earlier format (``cache/index-v<N>`` below ``INDEX_FORMAT``): this code never reads
    them, and each index is rebuilt in the current format when first needed."""
    from registry.snapshots.layers import INDEX_FORMAT  # lazy: numpy only when gc runs

    if not ctx.paths.cache_dir.is_dir():
        return []
    found = []
    for folder in sorted(ctx.paths.cache_dir.glob("index-v*")):
        number = folder.name.removeprefix("index-v")
        if folder.is_dir() and number.isdigit() and int(number) < INDEX_FORMAT:
            found.append(folder)
    return found


def _mtime(ctx: Context, sha: str) -> float:
    try:
        return ctx.store.mtime(sha)  # the store's own time: a remote object's, not a cached copy's
    except (NotFound, OSError):
        return 0.0
