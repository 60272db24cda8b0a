"""``RegistryService``: every use case of the registry as one typed protocol, with two implementations.

- :class:`registry.registry.Registry` runs each use case in this process, on a home's catalog and store;
- :class:`registry.remote_service.RemoteService` runs it on a server, through ``registry_client.Client``
  (the HTTP implementation in ``clients/python``, which never imports ``registry``), and rebuilds the
  same result types from the server's typed answers.

Both return the same types, so a caller (the CLI, a notebook, a training job) works against either
and sees the same values; ``tests/parity/`` runs one scenario suite against both and compares them.
What changes a home itself (init, gc, compaction, tokens, serving, storage migration) is not part of
the protocol: it runs only where the home lives, on ``Registry``. The labeling loop (Label Studio sync,
webhook, requeue) is part of it, but :class:`~registry.remote_service.RemoteService` refuses it with
``InvalidInput``: it sends the host's ``LABEL_STUDIO_API_KEY`` to the Label Studio URL the caller names,
and a server must never send its token to a URL a client chooses, so it runs on the registry host.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, BinaryIO, Protocol, runtime_checkable

from registry.refs import Ref

if TYPE_CHECKING:  # the protocol is imported by the CLI's start-up path: the result types load on use
    import pyarrow as pa

    from registry.audit.log import AuditEvent
    from registry.audit.verify import AuditVerifyReport, Checkpoint
    from registry.branching.branches import BranchInfo
    from registry.branching.merge import MergeResult
    from registry.datasets import DatasetInfo
    from registry.lineage.emit import LineageRun
    from registry.lineage.graph import Direction, LineageGraph
    from registry.lineage.intake import IngestResult
    from registry.provenance.label_diff import LabelDiff
    from registry.provenance.sample_history import HistoryEntry
    from registry.provenance.service import ImportResult
    from registry.quality.evaluate import GateResult
    from registry.quality.gate import GateStatus
    from registry.quality.policy_versions import PolicyInfo
    from registry.quality.waivers import Waiver
    from registry.snapshots.commit import CommitResult, Mode
    from registry.snapshots.diff import DiffResult
    from registry.snapshots.history import SchemaVersionInfo, SnapshotInfo
    from registry.snapshots.plan import ScanPlan
    from registry.snapshots.verify import VerifyReport
    from registry.sync.hooks import WebhookInfo
    from registry.sync.requeue import RequeueResult
    from registry.sync.service import SyncResult
    from registry.training.lockfile import LockEntry
    from registry.training.pins import PullResult

__all__ = ["GateChecker", "RegistryService"]

PathLike = str | os.PathLike[str]


@runtime_checkable
class GateChecker(Protocol):
    """The one use case ``registry gate check`` needs, so CI gates start without the data stack."""

    def gate_check(self, ref: Ref | str, evaluate: bool = False) -> GateStatus:
        """The gate of ``ref``; with ``evaluate``, run QA first when no result is current."""
        ...


@runtime_checkable
class RegistryService(GateChecker, Protocol):
    """Every use case a client of the registry has, wherever the registry runs.

    Raises (every method): the :mod:`registry.errors` classes, the same ones from both implementations
    (``NotFound``, ``InvalidInput``, ``Conflict``, ``GateBlocked``, ``VerifyFailed``, ...).
    """

    def close(self) -> None: ...

    # --- datasets, commits, snapshots ----------------------------------------------------------------
    def create_dataset(self, name: str, key: str | Sequence[str], description: str = "",
                       owner: str | None = None) -> DatasetInfo: ...

    def datasets(self) -> list[DatasetInfo]: ...

    def commit(self, name: Ref | str, table_or_path: pa.Table | PathLike | None, *, message: str = "",
               author: str | None = None, mode: Mode = "replace", delete_keys: pa.Table | PathLike | None = None,
               expect_parent: str | None = None, allow_breaking: bool = False,
               progress: Callable[[str], None] | None = None, lineage: LineageRun | None = None) -> CommitResult: ...

    def log(self, name: Ref | str, limit: int | None = None) -> list[SnapshotInfo]: ...

    def show(self, ref: Ref | str) -> SnapshotInfo: ...

    def tag(self, ref: Ref | str, tag: str) -> SnapshotInfo: ...

    def schema(self, name: str) -> list[SchemaVersionInfo]: ...

    def diff(self, a: Ref | str, b: Ref | str, rows: int = 10) -> DiffResult: ...

    def read(self, ref: Ref | str, columns: Sequence[str] | None = None) -> pa.Table: ...

    def export(self, ref: Ref | str, out: PathLike) -> int: ...

    def write_rows(self, ref: Ref | str, fmt: str, sink: BinaryIO) -> int: ...

    def plan(self, ref_or_lock_entry: Ref | str | LockEntry, shards: int = 1,
             columns: Sequence[str] | None = None) -> ScanPlan: ...

    def verify(self, name: str | None = None,
               progress: Callable[[int, int], None] | None = None) -> VerifyReport: ...

    # --- branches and merges -------------------------------------------------------------------------
    def branch(self, name_branch: Ref | str, from_ref: str | None = None) -> BranchInfo: ...

    def branches(self, name: str) -> list[BranchInfo]: ...

    def delete_branch(self, name_branch: Ref | str, force: bool = False) -> BranchInfo: ...

    def protect(self, name_branch: Ref | str, protected: bool = True) -> BranchInfo: ...

    def merge(self, source: Ref | str, into: str = "main", *, strategy: str = "fail", prefer: str | None = None,
              resolutions: PathLike | None = None, dry_run: bool = False, message: str = "",
              expect_target: str | None = None, retry: int = 0) -> MergeResult: ...

    # --- annotations and provenance ------------------------------------------------------------------
    def import_annotations(self, fmt: str, name: str, path: PathLike, *, key: str | None = None,
                           guideline_version: str | None = None, config: PathLike | None = None,
                           resolve: str = "gt-majority", mapping: str | None = None, message: str = "",
                           author: str | None = None, progress: Callable[[str], None] | None = None,
                           users: PathLike | None = None) -> ImportResult: ...

    def history(self, name: str, key: str) -> list[HistoryEntry]: ...

    def blame(self, ref: Ref | str, column: str = "label", limit: int | None = None) -> pa.Table: ...

    def label_diff(self, a: Ref | str, b: Ref | str, column: str = "label", rows: int | None = None) -> LabelDiff: ...

    # --- audit, query, lineage -----------------------------------------------------------------------
    def audit_log(self, *, dataset: str | None = None, actor: str | None = None, action: str | None = None,
                  since: str | None = None, until: str | None = None,
                  limit: int | None = None) -> list[AuditEvent]: ...

    def verify_audit(self, checkpoint: PathLike | None = None) -> AuditVerifyReport: ...

    def audit_checkpoint(self, out: PathLike | None = None) -> Checkpoint: ...

    def query(self, sql: str, dataset: str | None = None) -> pa.Table: ...

    def lineage_walk(self, ref: Ref | str, direction: Direction = "both", depth: int = 3) -> LineageGraph: ...

    def ingest_lineage(self, text: str) -> list[IngestResult]: ...

    # --- quality: policies, gates, waivers, pins, training reads --------------------------------------
    def set_policy(self, name: str, document: str, source: str = "policy") -> PolicyInfo: ...

    def policy(self, name: str, version: int | None = None) -> PolicyInfo: ...

    def qa_run(self, ref: Ref | str) -> GateResult: ...

    def gate(self, ref: Ref | str) -> GateStatus: ...

    def waive(self, ref: Ref | str, reason: str, checks: Sequence[str] | None = None,
              expires: str | None = None) -> Waiver: ...

    def pin(self, ref: Ref | str, lockfile: PathLike = "registry.lock", job: str | None = None) -> LockEntry: ...

    def load(self, ref_or_lock_entry: Ref | str | LockEntry, *, allow_unverified: bool = False,
             job: str | None = None) -> pa.Table: ...

    def pull(self, lockfile: PathLike = "registry.lock", outdir: PathLike = ".", job: str | None = None,
             allow_unverified: bool = False) -> list[PullResult]: ...

    # --- the labeling loop (Label Studio): runs on the registry host; RemoteService refuses it -------
    def sync_label_studio(self, name: str, *, url: str, project: int, key: str | None = None,
                          guideline_version: str | None = None, author: str | None = None, evaluate: bool = False,
                          progress: Callable[[str], None] | None = None) -> SyncResult:
        """Commit what changed in Label Studio project ``project`` at ``url`` since the last sync as
        ``name``'s next snapshot (none when nothing changed), with the token in ``LABEL_STUDIO_API_KEY``."""
        ...

    def register_label_studio_webhook(self, name: str, *, url: str, project: int,
                                      hook_url: str) -> WebhookInfo:
        """Register a webhook of project ``project`` calling the registry service at ``hook_url`` to sync
        ``name`` (which must have synced once)."""
        ...

    def requeue(self, ref: Ref | str, *, url: str, project: int, where: str, prediction_column: str | None = None,
                score_column: str | None = None, model_version: str | None = None, limit: int | None = None,
                dry_run: bool = False) -> RequeueResult:
        """Send the rows of ``ref`` matching the SQL predicate ``where`` to Label Studio project ``project``
        for relabeling, with the model's prediction (``limit``: at most that many, default and maximum
        :data:`~registry.sync.requeue.MAX_REQUEUE`)."""
        ...
