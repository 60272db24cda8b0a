"""Resolving snapshots for training (design invariant 8): pin, load and pull.

Each refuses a snapshot whose gate does not pass under the current policy (and no valid waiver
covers it): the refusal is recorded in the audit log in its own transaction, then
:class:`~registry.errors.GateBlocked` is raised naming the failed checks. ``load`` and ``pull``
accept such a snapshot only with ``allow_unverified``, which is audited as ``read.unverified``.
Every read re-hashes each object it reads (SHA-256 of the stored bytes) and recomputes the
content hash from the rows it returns; a pinned read refuses rows that differ from the pin.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

import pyarrow as pa

from registry import catalog
from registry.audit import log as audit
from registry.context import Actor, Context, resolve_actor
from registry.db import transaction
from registry.errors import GateBlocked, Hint, InvalidInput, NotFound, StorageError, VerifyFailed
from registry.lineage import emit as lineage_emit
from registry.lineage.events import JobRef, ParentRef
from registry.lineage.namespace import registry_namespace
from registry.models import DatasetRow, SnapshotRow
from registry.quality.content import content_hash
from registry.quality.gate import GateStatus, gate_status
from registry.quality.models import PinRow
from registry.refs import Ref
from registry.snapshots.history import resolve_ref
from registry.snapshots.layer_reader import ManifestReader
from registry.snapshots.manifest import Manifest, load_manifest
from registry.snapshots.read import stream
from registry.snapshots.tables import write_table_atomically
from registry.timeutil import utc_now
from registry.training.lockfile import LOCKFILE_NAME, LockEntry, read_lockfile, upsert_entry, write_lockfile

__all__ = ["Admitted", "PullResult", "admit", "admit_pinned", "check_content", "check_origin", "load", "pin",
           "pin_entry", "pull", "record_read", "training_stream", "verified_manifest", "verified_rows"]


@dataclass(frozen=True)
class PullResult:
    """One lockfile entry written to disk."""

    dataset: str
    job: str | None
    snapshot_id: str
    content_hash: str
    rows: int
    path: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class _Blocked(Exception):
    """The gate stopped passing between the first read and the write transaction."""

    def __init__(self, status: GateStatus) -> None:
        super().__init__(status.message)
        self.status = status


def _refuse(ctx: Context, action: str, status: GateStatus, who: Actor, details: dict[str, Any]) -> NoReturn:
    """Record a refusal (its own transaction: the refusal is the change), then raise GateBlocked."""
    with transaction(ctx.engine) as session:
        audit.record(session, ctx, action, "snapshot", status.snapshot_id, dataset=status.dataset,
                     snapshot=status.snapshot_id, actor=who,
                     details={**details, "gate": status.state, "policy_version": status.policy_version,
                              "failed": [c["name"] for c in status.failed]})
    if action == "pin.refuse":
        raise GateBlocked(f"refused: {status.reason}", hint=status.hint)
    raise GateBlocked(f"refused: {status.reason}; allow unverified reads to read it anyway, audited",
                      hint=Hint("option", "allow_unverified"))


def _check_object(ctx: Context, sha: str, role: str) -> None:
    """Re-hash one stored object.

    Raises:
        VerifyFailed: its bytes no longer hash to its name.
    """
    try:
        with open(ctx.store.local_path(sha), "rb") as fh:
            actual = hashlib.file_digest(fh, "sha256").hexdigest()
    except (NotFound, StorageError, OSError) as exc:
        raise VerifyFailed(f"object {sha} ({role}) cannot be read: {exc}") from exc
    if actual != sha:
        raise VerifyFailed(f"object {sha} ({role}) is corrupt: its bytes hash to {actual}; "
                           "a verify run lists every damaged object", hint=Hint("command", "verify"))


def verified_manifest(ctx: Context, dataset: DatasetRow, snapshot: SnapshotRow) -> Manifest:
    """The snapshot's manifest after re-hashing it and every object it names.

    Raises:
        VerifyFailed: an object's bytes no longer hash to its name.
    """
    where = f"{dataset.name}@{snapshot.id[:12]}"
    _check_object(ctx, snapshot.manifest_sha256, f"manifest of {where}")
    manifest = load_manifest(ctx, snapshot)
    for sha in manifest.objects():
        _check_object(ctx, sha, f"layer of {where}")
    return manifest


def verified_rows(ctx: Context, dataset: DatasetRow, snapshot: SnapshotRow) -> tuple[pa.Table, str]:
    """The snapshot's rows after re-hashing every object they come from, and their content hash."""
    table = ManifestReader(ctx.store, ctx.cache, verified_manifest(ctx, dataset, snapshot)).read()
    return table, content_hash(table, catalog.key_columns(dataset))


def pin(ctx: Context, ref: Ref | str, lockfile: str | os.PathLike[str] = LOCKFILE_NAME, job: str | None = None,
        actor: str | None = None) -> LockEntry:
    """Pin the snapshot ``ref`` names in ``lockfile`` (one entry per dataset and job).

    Raises:
        GateBlocked: the gate does not pass (the refusal is audited as ``pin.refuse``).
        NotFound: no such dataset or ref.
        InvalidInput: the lockfile exists but is not one, or cannot be written.
    """
    entries = read_lockfile(lockfile)
    entry = pin_entry(ctx, ref, job, actor, lockfile)
    write_lockfile(lockfile, upsert_entry(entries, entry))
    return entry


def check_origin(ctx: Context, dataset: str, namespace: str | None, location: str | None = None) -> None:
    """Refuse a pin of ``dataset`` made in another registry: its lineage ``namespace`` (None: a lockfile
    older than this check) is not ours.

    Raises:
        VerifyFailed: it names another registry's namespace.
    """
    ours = registry_namespace(ctx)
    if namespace and namespace != ours:
        raise VerifyFailed(f"the lock entry for {dataset} was pinned in registry {namespace} "
                           f"({location or 'location not recorded'}), not in this one ({ours}); point the job at "
                           "that registry")


def pin_entry(ctx: Context, ref: Ref | str, job: str | None = None, actor: str | None = None,
              lockfile: str | os.PathLike[str] | None = None, origin: str | None = None) -> LockEntry:
    """Pin the snapshot ``ref`` names in the catalog (audited) and return its lockfile entry, without
    writing any lockfile: :func:`pin` writes ``lockfile``; an API client writes its own. The entry
    names the registry (``origin``: the server's URL, default the home) and its lineage namespace.

    Raises:
        GateBlocked: the gate does not pass (the refusal is audited as ``pin.refuse``).
        NotFound: no such dataset or ref.
    """
    ref = Ref.coerce(ref)
    who = resolve_actor(ctx, actor)
    refusal = {"ref": str(ref), "job": job, "lockfile": str(lockfile) if lockfile is not None else None}
    with transaction(ctx.engine, readonly=True) as session:
        dataset, snapshot = resolve_ref(session, ref)
        status = gate_status(session, dataset, snapshot)
    if not status.passes:
        _refuse(ctx, "pin.refuse", status, who, refusal)
    _, digest = verified_rows(ctx, dataset, snapshot)
    entry = LockEntry(dataset.name, job, ref.ref_name, snapshot.id, digest, status.result_id,
                      status.waiver["id"] if status.waiver else None, utc_now(), who.name,
                      origin or str(ctx.paths.home), registry_namespace(ctx))
    try:
        with transaction(ctx.engine) as session:
            now = gate_status(session, dataset, snapshot)
            if not now.passes:
                raise _Blocked(now)
            row = PinRow(id=uuid.uuid4().hex, dataset_id=catalog.dataset_id(dataset), snapshot_id=snapshot.id,
                         requested_ref=entry.ref, job=job, content_hash=digest, gate_result_id=entry.gate_result_id,
                         waiver_id=entry.waiver_id, lockfile=str(Path(lockfile).resolve()) if lockfile else "",
                         pinned_at=entry.pinned_at, pinned_by=who.name)
            session.add(row)
            session.flush()
            # A pin is its own job (registry/pin/<dataset>), not a run of the training job it is for: that
            # job's runs are its reads (load, pull, SnapshotDataset), which name their own parents.
            run = lineage_emit.enqueue_training_read(session, ctx, snapshot, None, operation="pin")
            audit.record(session, ctx, "pin.create", "pin", row.id, dataset=dataset.name, snapshot=snapshot.id,
                         details={**entry.to_dict(), "lockfile": row.lockfile, "gate": now.state,
                                  "lineage_run_id": run.run_id}, actor=who)
    except _Blocked as blocked:
        _refuse(ctx, "pin.refuse", blocked.status, who, refusal)
    return entry


def load(ctx: Context, target: Ref | str | LockEntry, *, allow_unverified: bool = False, job: str | None = None,
         actor: str | None = None, operation: str = "load") -> pa.Table:
    """The rows of a snapshot for training: ``NAME@REF`` or a lockfile entry (read by its full id and
    checked against its content hash). The read is audited with the job name and ``operation``
    (``load``, or ``pull`` when :func:`pull` reads).

    Raises:
        GateBlocked: the gate does not pass now and ``allow_unverified`` is False (audited as ``gate.refuse``).
        VerifyFailed: an object's bytes or the rows' content hash differ from what was stored or pinned,
            or the lockfile entry was pinned in another registry.
        NotFound: no such dataset, ref or snapshot.
    """
    entry = target if isinstance(target, LockEntry) else None
    ref = Ref.coerce(target.target if isinstance(target, LockEntry) else target)
    job = job or (entry.job if entry is not None else None)
    who = resolve_actor(ctx, actor)
    admitted = admit_pinned(ctx, ref, who, allow_unverified=allow_unverified, job=job, entry=entry)
    dataset, snapshot, _ = admitted
    table, digest = verified_rows(ctx, dataset, snapshot)
    if entry is not None:
        check_content(dataset.name, snapshot.id, digest, entry.content_hash)
    record_read(ctx, admitted, who, job=job, ref_name=entry.ref if entry else ref.ref_name, digest=digest,
                rows=table.num_rows, pinned=entry is not None, operation=operation)
    return table


def training_stream(ctx: Context, ref: Ref | str, *, allow_unverified: bool = False, job: str | None = None,
                    actor: str | None = None, operation: str = "load"
                    ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The rows of ``NAME@REF`` for training, as :func:`registry.snapshots.read.stream` batches: admitted
    and audited as :func:`load` admits and audits (``gate.refuse``, ``read.training`` or
    ``read.unverified``, and the lineage training read), with every object re-hashed before the first
    batch. The rows' content hash needs every row at once, so it is not computed (``content_hash``
    is None in the event); the reader can hash what it received.

    Raises:
        GateBlocked: the gate does not pass now and ``allow_unverified`` is False (audited as ``gate.refuse``).
        VerifyFailed: an object's bytes differ from what was stored.
        NotFound: no such dataset or ref.
    """
    ref = Ref.coerce(ref)
    who = resolve_actor(ctx, actor)
    admitted = admit(ctx, ref, who, allow_unverified=allow_unverified, job=job)
    dataset, snapshot, _ = admitted
    verified_manifest(ctx, dataset, snapshot)
    record_read(ctx, admitted, who, job=job, ref_name=ref.ref_name, digest=None, rows=snapshot.rows,
                pinned=False, operation=operation)
    return stream(ctx, Ref(dataset.name, snapshot.id))


Admitted = tuple[DatasetRow, SnapshotRow, GateStatus]


def admit_pinned(ctx: Context, ref: Ref | str, who: Actor, *, allow_unverified: bool, job: str | None,
                 entry: LockEntry | None, namespace: str | None = None) -> Admitted:
    """:func:`admit` for a read that may be of a lockfile entry (or of a pin's ``namespace``): an entry
    of another registry is refused before anything is recorded, and one whose ref no longer resolves
    to its snapshot after the gate check.

    Raises:
        VerifyFailed: the entry is another registry's, or names another snapshot.
        GateBlocked, NotFound: as :func:`admit`.
    """
    ref = Ref.coerce(ref)
    check_origin(ctx, ref.dataset, namespace or (entry.namespace if entry else None),
                 entry.registry if entry else None)
    admitted = admit(ctx, ref, who, allow_unverified=allow_unverified, job=job)
    if entry is not None and admitted[1].id != entry.snapshot_id:
        raise VerifyFailed(f"lock entry for {entry.dataset} names snapshot {entry.snapshot_id}, which resolves to "
                           f"{admitted[1].id}")
    return admitted


def check_content(dataset: str, snapshot_id: str, digest: str, pinned: str) -> None:
    """Refuse rows whose content hash ``digest`` is not the ``pinned`` one.

    Raises:
        VerifyFailed: they differ.
    """
    if digest != pinned:
        raise VerifyFailed(f"{dataset}@{snapshot_id[:12]}: the rows read hash to {digest}, but the pin recorded "
                           f"{pinned}; the stored data changed since it was pinned")


def admit(ctx: Context, ref: Ref | str, who: Actor, *, allow_unverified: bool, job: str | None) -> Admitted:
    """The dataset, snapshot and gate of ``ref`` if a training read may proceed; else the refusal is
    audited and GateBlocked raised."""
    with transaction(ctx.engine, readonly=True) as session:
        dataset, snapshot = resolve_ref(session, ref)
        status = gate_status(session, dataset, snapshot)
    if not status.passes and not allow_unverified:
        _refuse(ctx, "gate.refuse", status, who, {"read": str(ref), "job": job})
    return dataset, snapshot, status


def record_read(ctx: Context, admitted: Admitted, who: Actor, *, job: str | None, ref_name: str, digest: str | None,
                rows: int, pinned: bool, operation: str, run_id: str | None = None,
                parent: ParentRef | None = None) -> None:
    """The audit event (``read.training``, or ``read.unverified`` past a blocked gate) and the lineage
    training read of one admitted read, in one transaction. ``ref_name`` is the ref as requested (the
    text after ``@``)."""
    dataset, snapshot, status = admitted
    action = "read.training" if status.passes else "read.unverified"
    with transaction(ctx.engine) as session:
        run = lineage_emit.enqueue_training_read(session, ctx, snapshot, _lineage_job(ctx, job), run_id, parent=parent,
                                                 operation=operation)
        audit.record(session, ctx, action, "snapshot", snapshot.id, dataset=dataset.name, snapshot=snapshot.id,
                     details={"job": job, "ref": ref_name, "content_hash": digest, "rows": rows, "gate": status.state,
                              "pinned": pinned, "operation": operation, "run_id": run_id,
                              "lineage_run_id": run.run_id}, actor=who)


def pull(ctx: Context, lockfile: str | os.PathLike[str] = LOCKFILE_NAME, outdir: str | os.PathLike[str] = ".",
         job: str | None = None, allow_unverified: bool = False, actor: str | None = None) -> list[PullResult]:
    """Write every pinned snapshot of ``lockfile`` (those of ``job`` if given) to
    ``OUTDIR/NAME@ID12.parquet``, each read as :func:`load` reads it.

    Raises:
        NotFound: the lockfile has no (matching) entries.
        GateBlocked, VerifyFailed: as :func:`load`; files already written stay.
    """
    entries = [e for e in read_lockfile(lockfile) if job is None or e.job == job]
    if not entries:
        raise NotFound(f"{lockfile} has no pins{f' for job {job!r}' if job else ''}; pin a snapshot first",
                       hint=Hint("command", "pin", "NAME@REF"))
    results = []
    for entry in entries:
        table = load(ctx, entry, allow_unverified=allow_unverified, actor=actor, operation="pull")
        out = Path(outdir) / f"{entry.dataset}@{entry.snapshot_id[:12]}.parquet"
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInput(f"cannot create {out.parent}: {exc.strerror or exc}") from exc
        write_table_atomically(table, out)
        results.append(PullResult(entry.dataset, entry.job, entry.snapshot_id, entry.content_hash, table.num_rows,
                                  str(out)))
    return results


def _lineage_job(ctx: Context, job: str | None) -> JobRef | None:
    """A training job's name as an OpenLineage job: ``NAMESPACE/NAME`` as given, a bare name in the
    registry's job namespace."""
    if job is None:
        return None
    return JobRef.parse(job) if "/" in job else JobRef(ctx.settings.lineage.job_namespace, job)
