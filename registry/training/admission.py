"""The start of a training job: the gate checked once, one audit event and one lineage run, and the
scan plan every worker then reads (design invariant 8).

A job is admitted once, not once per DataLoader worker or rank: :class:`~registry.training.torch.
SnapshotDataset` admits in rank 0 and hands the admission to the other ranks; workers receive it
pickled. The lineage run is the job's run: its id comes from ``run_id``, else ``OPENLINEAGE_RUN_ID``,
else a new one, and its parent from the OpenLineage parent variables (see
:mod:`registry.lineage.parent_env`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from registry.context import Context, resolve_actor
from registry.lineage.events import ParentRef, check_run_id, new_run_id
from registry.lineage.parent_env import parent_from_env
from registry.refs import Ref
from registry.snapshots.plan import ScanPlan, build_plan, verify_object
from registry.storage.verified import markers_in
from registry.training.lockfile import LockEntry
from registry.training.pins import admit_pinned, check_content, record_read, verified_rows

__all__ = ["Admission", "LocalObjects", "ObjectSource", "VerifiedObjects", "admit_training", "job_from_env",
           "local_objects"]


class ObjectSource(Protocol):
    """Where a reader finds an object's bytes on its own machine (picklable: workers receive it)."""

    def path(self, sha256: str) -> str:
        """A local file holding the object (not yet verified)."""
        ...


@dataclass(frozen=True)
class LocalObjects:
    """Objects of a registry home (or its store's local cache), by hash; ``markers``: the home's folder
    of verified markers (see :mod:`registry.storage.verified`), shared by every process on the machine."""

    paths: dict[str, str]
    markers: str | None = None

    def path(self, sha256: str) -> str:
        return self.paths[sha256]


class VerifiedObjects:
    """An :class:`ObjectSource` that verifies an object before it is read, and again whenever its file
    changed since (the verified-read helper, :func:`~registry.snapshots.plan.verify_object`). When the
    source names a folder of verified markers (its ``markers`` attribute: a home's, or the client
    cache's), an object is hashed once per machine, not once per process: every DataLoader worker, rank
    and Ray task after the first finds the marker of the untouched file."""

    def __init__(self, source: ObjectSource) -> None:
        self.source = source
        self.markers: str | None = getattr(source, "markers", None)

    def path(self, sha256: str) -> str:
        """The local file of a verified object.

        Raises:
            VerifyFailed: its bytes do not hash to its name.
        """
        found = self.source.path(sha256)
        verify_object(found, sha256, self.markers)
        return found


@dataclass(frozen=True)
class Admission:
    """An admitted training job: its plan, lineage run and gate state."""

    plan: ScanPlan
    run_id: str
    job: str | None
    gate: str

    def to_dict(self) -> dict[str, Any]:
        return {"plan": self.plan.to_dict(), "run_id": self.run_id, "job": self.job, "gate": self.gate}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Admission:
        return cls(ScanPlan.from_dict(data["plan"]), str(data["run_id"]), data.get("job"), str(data["gate"]))


def job_from_env() -> str | None:
    """The training job's name from ``REGISTRY_JOB`` (``NAMESPACE/NAME`` or a bare name), if set."""
    return os.environ.get("REGISTRY_JOB", "").strip() or None


def admit_training(ctx: Context, target: Ref | str | LockEntry, *, columns: Sequence[str] | None = None,
                   job: str | None = None, run_id: str | None = None, allow_unverified: bool = False,
                   actor: str | None = None, parent: ParentRef | str | None = None,
                   from_env: bool = True, content_hash: str | None = None, namespace: str | None = None
                   ) -> Admission:
    """Admit one training job's read of ``NAME@REF`` or a lockfile entry: gate check (a refusal is
    audited as ``gate.refuse``), then ``read.training`` (or ``read.unverified``) and the job's lineage
    run, in one transaction. Objects are not hashed here: each reader verifies what it reads.

    ``parent`` (``NAMESPACE/NAME/RUN_ID``) is the run the job's run belongs to; with ``from_env`` the
    job name, run id and parent default to this process's environment (``REGISTRY_JOB``,
    ``OPENLINEAGE_RUN_ID``, the OpenLineage parent variables); the API passes the caller's instead.

    A lockfile entry (or ``content_hash`` and ``namespace``, as the API receives them) is checked
    before anything is recorded: its namespace must be this registry's, and the snapshot's rows must
    still hash to its content hash (one full, verified read).

    Raises:
        GateBlocked: the gate does not pass now and ``allow_unverified`` is False.
        VerifyFailed: a lock entry from another registry, or whose snapshot id or content hash differs
            from what is stored.
        NotFound: no such dataset or ref.
        InvalidInput: a column does not exist, or a malformed run id or parent run variable.
    """
    entry = target if isinstance(target, LockEntry) else None
    ref = Ref.coerce(target.target if isinstance(target, LockEntry) else target)
    job = job or (entry.job if entry is not None else None) or (job_from_env() if from_env else None)
    env_run = os.environ.get("OPENLINEAGE_RUN_ID", "").strip() if from_env else ""
    run = check_run_id(run_id or env_run or new_run_id())
    parent_ref = ParentRef.parse(parent) if isinstance(parent, str) else parent
    if parent_ref is None and from_env:
        parent_ref = parent_from_env()
    content_hash = content_hash or (entry.content_hash if entry is not None else None)
    who = resolve_actor(ctx, actor)
    admitted = admit_pinned(ctx, ref, who, allow_unverified=allow_unverified, job=job, entry=entry,
                            namespace=namespace)
    dataset, snapshot, status = admitted
    if content_hash:
        check_content(dataset.name, snapshot.id, verified_rows(ctx, dataset, snapshot)[1], content_hash)
    plan = build_plan(ctx, Ref(dataset.name, snapshot.id), 1, columns)
    record_read(ctx, admitted, who, job=job, ref_name=entry.ref if entry else ref.ref_name,
                digest=content_hash, rows=plan.rows, pinned=content_hash is not None, operation="train",
                run_id=run, parent=parent_ref)
    return Admission(plan, run, job, status.state)


def local_objects(ctx: Context, plan: ScanPlan) -> LocalObjects:
    """The local files of a plan's objects (a remote store downloads them into its cache now)."""
    return LocalObjects({sha: str(Path(ctx.store.local_path(sha))) for sha in plan.objects},
                        str(markers_in(ctx.paths.cache_dir)))
