"""Recompute every stored hash (objects, manifests, snapshot ids) and cross-check the catalog against the
audit chain (design invariant 5)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import pyarrow.parquet as pq
from sqlmodel import col, select

from registry import catalog
from registry.audit.crosscheck import crosscheck
from registry.audit.verify import verify_audit
from registry.context import Context
from registry.db import transaction
from registry.errors import NotFound, StorageError
from registry.models import DatasetRow, SnapshotRow
from registry.snapshots.manifest import Manifest, snapshot_id

__all__ = ["VerifyReport", "verify"]


@dataclass
class VerifyReport:
    """What was checked, and every mismatch found (the first one first)."""

    datasets: int = 0
    snapshots: int = 0
    objects: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)
    bad_objects: dict[str, list[str]] = field(default_factory=dict)
    """Each unreadable or corrupt object (reported once in ``problems``) -> the snapshots that use it."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "ok": self.ok}


def _object_problem(ctx: Context, sha: str, role: str, seen: dict[str, str | None], report: VerifyReport
                    ) -> str | None:
    if sha in seen:
        user = role.rpartition(" of ")[2]
        if sha in report.bad_objects and user not in report.bad_objects[sha]:
            report.bad_objects[sha].append(user)
        return None  # reported once, with every snapshot that uses it (see verify)
    problem: str | None = None
    try:
        stored = ctx.store.digest(sha)  # the store's own bytes, never a cached copy
        report.objects += 1
        report.bytes += stored.size
        if stored.sha256 != sha:
            problem = f"object {sha} ({role}) is corrupt: its bytes hash to {stored.sha256}"
    except (NotFound, StorageError, OSError) as exc:
        problem = f"object {sha} ({role}) cannot be read: {exc}"
    seen[sha] = problem
    if problem:
        report.bad_objects[sha] = [role.rpartition(" of ")[2]]
    return problem


def verify(ctx: Context, name: str | None = None, progress: Callable[[int, int], None] | None = None
           ) -> VerifyReport:
    """Check every snapshot of ``name`` (or of every dataset); never raises for a mismatch.

    Raises:
        NotFound: ``name`` is not a dataset.
    """
    report = VerifyReport()
    seen: dict[str, str | None] = {}
    with transaction(ctx.engine, readonly=True) as session:
        if name is not None:
            datasets = [catalog.get_dataset(session, catalog.check_dataset_name(name))]
        else:
            datasets = list(session.exec(select(DatasetRow).order_by(DatasetRow.name)).all())
        snapshots = {ds.id: list(session.exec(select(SnapshotRow).where(SnapshotRow.dataset_id == ds.id)
                                              .order_by(col(SnapshotRow.seq), col(SnapshotRow.created_at))).all())
                     for ds in datasets}
    total = sum(len(v) for v in snapshots.values())
    done = 0
    for dataset in datasets:
        report.datasets += 1
        known = {s.id for s in snapshots[dataset.id]}
        for snap in snapshots[dataset.id]:
            report.snapshots += 1
            report.problems += _check_snapshot(ctx, dataset, snap, known, seen, report)
            done += 1
            if progress:
                progress(done, total)
    _name_users(report)
    report.problems += _against_audit(ctx, name)
    return report


def _against_audit(ctx: Context, name: str | None) -> list[str]:
    """The audit chain's own problem (whole-registry runs), then every way the catalog disagrees with it."""
    problems = []
    if name is None:
        chain = verify_audit(ctx)
        if not chain.ok:
            problems.append(f"audit chain: {chain.problem}")
    return problems + crosscheck(ctx, name)


def _name_users(report: VerifyReport) -> None:
    """Add to each bad object's one problem line the snapshots that use it."""
    for sha, users in report.bad_objects.items():
        index = next((i for i, p in enumerate(report.problems) if p.startswith(f"object {sha} ")), None)
        if index is not None and len(users) > 1:
            shown = ", ".join(users[:10]) + (f" and {len(users) - 10} more" if len(users) > 10 else "")
            report.problems[index] += f"; used by {len(users)} snapshots: {shown}"


def _check_snapshot(ctx: Context, dataset: DatasetRow, snap: SnapshotRow, known: set[str],
                    seen: dict[str, str | None], report: VerifyReport) -> list[str]:
    where = f"{dataset.name}@{snap.id[:12]}"
    problems: list[str] = []
    parents = catalog.parents_of(snap)
    expected = snapshot_id(dataset=dataset.name, parents=parents, change_sha256=snap.change_sha256,
                           deletes_sha256=snap.deletes_sha256, schema_fingerprint=snap.schema_fingerprint,
                           author=snap.author, message=snap.message, created_at=snap.created_at,
                           annotations_sha256=snap.annotations_sha256)
    if expected != snap.id:
        problems.append(f"snapshot {where}: id does not match its recorded content (recomputed {expected[:12]})")
    problems += [f"snapshot {where}: parent {p[:12]} is missing" for p in parents if p not in known]
    if snap.store_commit_id:
        commit_problem = ctx.store.check_commit(snap.store_commit_id, snap.id)
        if commit_problem:
            problems.append(f"snapshot {where}: {commit_problem}")
    for sha, role in ((snap.change_sha256, "change rows"), (snap.deletes_sha256, "deleted keys"),
                      (snap.manifest_sha256, "manifest"), (snap.annotations_sha256, "annotation records")):
        if sha:
            problem = _object_problem(ctx, sha, f"{role} of {where}", seen, report)
            if problem:
                problems.append(problem)
    if snap.manifest_sha256 in report.bad_objects:
        return problems
    try:
        manifest = Manifest.from_bytes(ctx.store.read_bytes(snap.manifest_sha256), f"manifest of {where}")
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return [*problems, str(exc)]
    if manifest.rows != snap.rows:
        problems.append(f"snapshot {where}: manifest says {manifest.rows} rows, catalog says {snap.rows}")
    if manifest.schema_fingerprint != snap.schema_fingerprint:
        problems.append(f"snapshot {where}: manifest schema fingerprint differs from the catalog's")
    for number, layer in enumerate(manifest.layers):
        for sha, count, role in ((layer.rows, layer.rows_count, "rows"), (layer.deletes, layer.deletes_count,
                                                                            "deletes")):
            if not sha:
                continue
            problem = _object_problem(ctx, sha, f"layer {number} {role} of {where}", seen, report)
            if problem:
                problems.append(problem)
            if sha in report.bad_objects:
                continue
            rows = pq.ParquetFile(ctx.store.local_path(sha)).metadata.num_rows
            if rows != count:
                problems.append(f"object {sha} (layer {number} {role} of {where}) has {rows} rows, "
                                f"manifest says {count}")
    return problems
