"""``Registry``: the Python API over one registry home, and the local implementation of
:class:`registry.service.RegistryService` (the CLI's protocol); it binds the domain packages' service
functions to one open context, as DVC's ``Repo`` attaches its use cases."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from registry.config import Settings, find_home
from registry.context import Context, create_home, open_context
from registry.errors import InvalidInput, VerifyFailed
from registry.refs import Ref
from registry.snapshots import history
from registry.snapshots.gc import DEFAULT_MIN_AGE, GcReport, gc

if TYPE_CHECKING:
    import pyarrow as pa

    from registry.audit.log import AuditEvent
    from registry.audit.seal import SealResult
    from registry.audit.verify import AuditVerifyReport, Checkpoint
    from registry.auth.tokens import TokenInfo
    from registry.branching.branches import BranchInfo
    from registry.branching.merge import MergeResult
    from registry.datasets import DatasetInfo
    from registry.lineage.emit import LineageRun
    from registry.lineage.graph import Direction, LineageGraph
    from registry.lineage.intake import IngestResult
    from registry.lineage.outbox import DeliveryReport, OutboxStatus
    from registry.provenance.label_diff import LabelDiff
    from registry.provenance.sample_history import HistoryEntry
    from registry.provenance.service import ImportResult
    from registry.quality.evaluate import GateResult
    from registry.quality.gate import GateStatus
    from registry.quality.policy_versions import PolicyInfo
    from registry.quality.waivers import Waiver
    from registry.snapshots.commit import CommitResult, Mode
    from registry.snapshots.compact import CompactResult
    from registry.snapshots.diff import ChangeSet, DiffResult
    from registry.snapshots.history import SchemaVersionInfo, SnapshotInfo
    from registry.snapshots.plan import ScanPlan
    from registry.snapshots.verify import VerifyReport
    from registry.store_migration import MigrateResult, StoreInfo
    from registry.sync.hooks import WebhookInfo
    from registry.sync.requeue import RequeueResult
    from registry.sync.service import SyncResult
    from registry.training.export import ExportResult
    from registry.training.lockfile import LockEntry
    from registry.training.pins import PullResult

__all__ = ["Registry"]


class Registry:
    """An open registry home.

    >>> reg = Registry.open()                      # doctest: +SKIP
    >>> table = reg.read("street-signs@v1")        # doctest: +SKIP
    """

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @classmethod
    def init(cls, path: str | os.PathLike[str] | None = None, lineage_namespace: str | None = None) -> Registry:
        """Create a home at ``path`` (default ``./.registry``) and open it, fixing its lineage namespace
        (``lineage_namespace``, see :mod:`registry.lineage.namespace`).

        Raises:
            InvalidInput: ``lineage_namespace`` is not ``scheme://authority``.
            Conflict: the home exists with another namespace fixed.
        """
        from registry.lineage.namespace import check_namespace, fix_namespace  # lazy: CLI start-up

        if lineage_namespace:
            check_namespace(lineage_namespace)
        settings = Settings()
        paths = create_home(Path(path) if path is not None else None, settings)
        registry = cls(open_context(paths.home, settings))
        fix_namespace(registry.ctx, lineage_namespace)
        return registry

    @classmethod
    def open(cls, home: str | os.PathLike[str] | None = None, settings: Settings | None = None) -> Registry:
        """Open the home at ``home``, ``REGISTRY_HOME``, or the nearest ``.registry`` above the cwd, with
        ``settings`` (default: resolved from the environment now, once).

        Raises:
            HomeNotFound: no home was found.
            CatalogOutOfDate: the catalog needs `registry db upgrade`.
        """
        settings = settings if settings is not None else Settings()
        return cls(open_context(find_home(home, settings=settings), settings))

    def close(self) -> None:
        self.ctx.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def home(self) -> Path:
        return self.ctx.paths.home

    def create_dataset(self, name: str, key: str | Sequence[str], description: str = "",
                       owner: str | None = None, actor: str | None = None) -> DatasetInfo:
        """Create a dataset keyed by ``key`` (a column name or several)."""
        from registry.datasets import create_dataset  # lazy: CLI start-up

        keys = [key] if isinstance(key, str) else list(key)
        return create_dataset(self.ctx, name, keys, description, owner, actor)

    def datasets(self) -> list[DatasetInfo]:
        from registry.datasets import list_datasets  # lazy: CLI start-up

        return list_datasets(self.ctx)

    def commit(self, name: Ref | str, table_or_path: pa.Table | str | os.PathLike[str] | None, *, message: str = "",
               author: str | None = None, mode: Mode = "replace",
               delete_keys: pa.Table | str | os.PathLike[str] | None = None, expect_parent: str | None = None,
               allow_breaking: bool = False, progress: Callable[[str], None] | None = None,
               lineage: LineageRun | None = None) -> CommitResult:
        """Commit a table or file to ``name``'s ``main`` branch; see :func:`registry.snapshots.commit.commit`.

        ``lineage`` names the OpenLineage job, run, parent run and sources of the commit."""
        from registry.snapshots.commit import commit  # lazy: CLI start-up

        source = Path(table_or_path) if isinstance(table_or_path, os.PathLike) else table_or_path
        deletes = Path(delete_keys) if isinstance(delete_keys, os.PathLike) else delete_keys
        return commit(self.ctx, name, source, message=message, author=author, mode=mode, delete_keys=deletes,
                      expect_parent=expect_parent, allow_breaking=allow_breaking, progress=progress, lineage=lineage)

    def branch(self, name_branch: Ref | str, from_ref: str | None = None, actor: str | None = None) -> BranchInfo:
        """Create branch ``NAME/BRANCH`` at ``from_ref`` (default the head of ``main``); no data is copied."""
        from registry.branching.branches import create_branch  # lazy: CLI start-up

        return create_branch(self.ctx, name_branch, from_ref, actor)

    def branches(self, name: str) -> list[BranchInfo]:
        """Every branch of dataset ``name``, ``main`` first."""
        from registry.branching.branches import list_branches  # lazy: CLI start-up

        return list_branches(self.ctx, name)

    def delete_branch(self, name_branch: Ref | str, force: bool = False, actor: str | None = None) -> BranchInfo:
        """Delete branch ``NAME/BRANCH`` (not ``main``, not a protected one; unmerged work needs ``force``)."""
        from registry.branching.branches import delete_branch  # lazy: CLI start-up

        return delete_branch(self.ctx, name_branch, force, actor)

    def protect(self, name_branch: Ref | str, protected: bool = True, actor: str | None = None) -> BranchInfo:
        """Protect branch ``NAME/BRANCH``: direct commits are refused, changes arrive only by merge."""
        from registry.branching.branches import protect_branch  # lazy: CLI start-up

        return protect_branch(self.ctx, name_branch, protected, actor)

    def merge(self, source: Ref | str, into: str = "main", *, strategy: str = "fail", prefer: str | None = None,
              resolutions: str | os.PathLike[str] | None = None, dry_run: bool = False, message: str = "",
              actor: str | None = None, expect_target: str | None = None, retry: int = 0) -> MergeResult:
        """Merge ``source`` (``NAME@BRANCH``) into branch ``into``; see :func:`registry.branching.merge.merge`.

        Raises ``UnresolvedConflicts`` (with ``.conflicts``) when conflicts remain, ``GateBlocked`` when
        the result fails the target's policy, ``RefConflict`` when the target moved."""
        from registry.branching.merge import merge  # lazy: CLI start-up

        return merge(self.ctx, source, into, strategy=strategy, prefer=prefer,
                     resolutions=Path(resolutions) if resolutions is not None else None, dry_run=dry_run,
                     message=message, actor=actor, expect_target=expect_target, retry=retry)

    def merge_conflicts(self, source: Ref | str, into: str = "main") -> pa.Table:
        """``MergeConflicts``: every conflict merging ``source`` into ``into`` would meet, as a pyarrow table
        (key, column, kind, base, ours, theirs, who set each side); nothing is changed."""
        return self.merge(source, into, dry_run=True).conflicts_table()

    def read(self, ref: Ref | str, columns: Sequence[str] | None = None) -> pa.Table:
        """The rows of ``ref`` as a ``pyarrow.Table``."""
        from registry.snapshots.read import read  # lazy: CLI start-up

        return read(self.ctx, ref, columns)

    def plan(self, ref_or_lock_entry: Ref | str | LockEntry, shards: int = 1,
             columns: Sequence[str] | None = None) -> ScanPlan:
        """The scan plan of a snapshot (``NAME@REF`` or a lockfile entry): read tasks in ``shards`` equal
        shards that together yield exactly its rows, each naming its object by SHA-256.

        Raises:
            NotFound: no such dataset or ref.
            InvalidInput: ``shards`` out of range or an unknown column.
            VerifyFailed: a lockfile entry of another registry, or whose ref no longer resolves to its snapshot.
        """
        from registry.snapshots.plan import build_plan  # lazy: CLI start-up
        from registry.training.pins import check_origin  # lazy: CLI start-up

        if isinstance(ref_or_lock_entry, (str, Ref)):
            return build_plan(self.ctx, ref_or_lock_entry, shards, columns)
        entry = ref_or_lock_entry
        check_origin(self.ctx, entry.dataset, entry.namespace, entry.registry)
        plan = build_plan(self.ctx, ref_or_lock_entry.target, shards, columns)
        if plan.snapshot_id != ref_or_lock_entry.snapshot_id:
            raise VerifyFailed(f"lock entry for {ref_or_lock_entry.dataset} names {ref_or_lock_entry.snapshot_id}, "
                               f"which resolves to {plan.snapshot_id}")
        return plan

    def export(self, ref: Ref | str, out: str | os.PathLike[str]) -> int:
        from registry.snapshots.read import export  # lazy: CLI start-up

        return export(self.ctx, ref, Path(out))

    def write_rows(self, ref: Ref | str, fmt: str, sink: BinaryIO) -> int:
        """Write ``ref``'s rows to an open binary ``sink`` (a pipe will do) as ``fmt``: parquet, csv or jsonl;
        the row count. Every object is verified first, then rows go out a batch at a time."""
        from registry.snapshots.read import stream  # lazy: CLI start-up
        from registry.snapshots.tables import EXPORT_FORMATS, write_batches_to  # lazy: CLI start-up

        if fmt not in set(EXPORT_FORMATS.values()):
            raise InvalidInput(f"cannot export as {fmt!r}; use parquet, csv or jsonl")
        schema, batches = stream(self.ctx, ref)
        return write_batches_to(schema, batches, fmt, sink)

    def diff(self, a: Ref | str, b: Ref | str, rows: int = 10) -> DiffResult:
        from registry.snapshots.diff import diff  # lazy: CLI start-up

        return diff(self.ctx, a, b, rows)

    def changes(self, a: Ref | str, b: Ref | str) -> ChangeSet:
        """Rows to upsert and keys to delete that turn ``a`` into ``b``."""
        from registry.snapshots.diff import change_set  # lazy: CLI start-up

        return change_set(self.ctx, a, b)

    def import_annotations(self, fmt: str, name: str, path: str | os.PathLike[str], *, key: str | None = None,
                           guideline_version: str | None = None, config: str | os.PathLike[str] | None = None,
                           resolve: str = "gt-majority", mapping: str | None = None, message: str = "",
                           author: str | None = None, progress: Callable[[str], None] | None = None,
                           users: str | os.PathLike[str] | None = None) -> ImportResult:
        """Import a labeling tool's export (``label-studio``, ``coco``, ``yolo`` or ``table``) as ``name``'s
        next snapshot with its annotation records; see :func:`registry.provenance.service.import_annotations`."""
        from registry.provenance.service import import_annotations  # lazy: CLI start-up

        return import_annotations(self.ctx, fmt, name, Path(path), key=key, guideline_version=guideline_version,
                                  config=Path(config) if config is not None else None, resolve=resolve,
                                  mapping=mapping, message=message, author=author, progress=progress,
                                  users=Path(users) if users is not None else None)

    def annotations(self, ref: Ref | str) -> pa.Table:
        """Every annotation record of the snapshot ``ref`` names (its full set, one row per labeling act)."""
        from registry.db import transaction  # lazy: CLI start-up
        from registry.provenance.store import records_at  # lazy: CLI start-up

        with transaction(self.ctx.engine, readonly=True) as session:
            _, snapshot = history.resolve_ref(session, ref)
            return records_at(self.ctx, session, snapshot)

    def history(self, name: str, key: str) -> list[HistoryEntry]:
        """Every labeling act and every snapshot that changed sample ``key`` of ``name``, oldest first."""
        from registry.provenance.sample_history import sample_history  # lazy: CLI start-up

        return sample_history(self.ctx, name, key)

    def blame(self, ref: Ref | str, column: str = "label", limit: int | None = None) -> pa.Table:
        """Per row: the snapshot that last changed it and who labeled its current value."""
        from registry.provenance.blame import blame  # lazy: CLI start-up

        return blame(self.ctx, ref, column, limit)

    def label_diff(self, a: Ref | str, b: Ref | str, column: str = "label", rows: int | None = None) -> LabelDiff:
        """The label change matrix between ``a`` and ``b``, with who changed what."""
        from registry.provenance.label_diff import label_diff  # lazy: CLI start-up

        return label_diff(self.ctx, a, b, column, rows)

    def log(self, name: Ref | str, limit: int | None = None) -> list[SnapshotInfo]:
        return history.log(self.ctx, name, limit)

    def show(self, ref: Ref | str) -> SnapshotInfo:
        return history.show(self.ctx, ref)

    def tag(self, ref: Ref | str, tag: str, actor: str | None = None) -> SnapshotInfo:
        return history.tag(self.ctx, ref, tag, actor)

    def schema(self, name: str) -> list[SchemaVersionInfo]:
        return history.schema_versions(self.ctx, name)

    def verify(self, name: str | None = None, progress: Callable[[int, int], None] | None = None) -> VerifyReport:
        """Recompute every object hash, manifest and snapshot id of ``name`` (or every dataset) and cross-check
        the catalog against the audit chain; ``progress(done, total)`` is called per snapshot."""
        from registry.snapshots.verify import verify  # lazy: CLI start-up

        return verify(self.ctx, name, progress=progress)

    def gc(self, dry_run: bool = False, min_age: float = DEFAULT_MIN_AGE, actor: str | None = None) -> GcReport:
        return gc(self.ctx, dry_run, min_age, actor)

    def compact(self, ref: Ref | str, full: bool = True, actor: str | None = None) -> CompactResult:
        """Merge the layers of the snapshot ``ref`` names (all, or with ``full=False`` those above the base)."""
        from registry.snapshots.compact import compact  # lazy: CLI start-up

        return compact(self.ctx, ref, full, actor)

    def compact_auto(self, names: Sequence[str] | None = None, actor: str | None = None) -> list[CompactResult]:
        """Apply the compaction policy to every branch head of ``names`` (default every dataset), as
        ``registry compact --auto`` and the ``registry serve`` worker do; returns what was compacted."""
        from registry.snapshots.compact import auto_compact  # lazy: CLI start-up

        return auto_compact(self.ctx, names, actor)

    def audit_log(self, *, dataset: str | None = None, actor: str | None = None, action: str | None = None,
                  since: str | None = None, until: str | None = None, limit: int | None = None) -> list[AuditEvent]:
        """Audit events matching every filter given, oldest first."""
        from registry.audit.listing import list_events  # lazy: CLI start-up

        return list_events(self.ctx, dataset=dataset, actor=actor, action=action, since=since, until=until,
                           limit=limit)

    def verify_audit(self, checkpoint: str | os.PathLike[str] | None = None) -> AuditVerifyReport:
        """Recompute the audit chain (and compare it with a saved checkpoint file)."""
        from registry.audit.verify import read_checkpoint, verify_audit  # lazy: CLI start-up

        return verify_audit(self.ctx, read_checkpoint(Path(checkpoint)) if checkpoint is not None else None)

    def audit_checkpoint(self, out: str | os.PathLike[str] | None = None) -> Checkpoint:
        """The chain's current (sequence, hash, time), written to ``out`` when given."""
        from registry.audit.verify import write_checkpoint  # lazy: CLI start-up

        return write_checkpoint(self.ctx, Path(out) if out is not None else None)

    def seal_audit(self) -> SealResult | None:
        """Seal the unsealed audit events into a Parquet segment now."""
        from registry.audit.seal import seal  # lazy: CLI start-up

        return seal(self.ctx)

    def query(self, sql: str, dataset: str | None = None) -> pa.Table:
        """Read-only DuckDB SQL over the registry's views (``data`` = the rows of ``dataset``, a NAME@REF)."""
        from registry.query import run_query  # lazy: CLI start-up

        return run_query(self.ctx, sql, dataset)

    def lineage_walk(self, ref: Ref | str, direction: Direction = "both", depth: int = 3) -> LineageGraph:
        """The lineage graph around the snapshot ``ref`` names, ``depth`` steps up, down or both ways."""
        from registry.lineage.graph import walk  # lazy: CLI start-up

        return walk(self.ctx, ref, direction, depth)

    def ingest_lineage(self, text: str) -> list[IngestResult]:
        """Record the consumers that OpenLineage RunEvents (a JSON document, list or JSON lines) name."""
        from registry.lineage.intake import ingest_text  # lazy: CLI start-up

        return ingest_text(self.ctx, text)

    def set_policy(self, name: str, document: str, source: str = "policy", actor: str | None = None) -> PolicyInfo:
        """Store a QA policy (YAML text) as ``name``'s next policy version; owner and maintainers only."""
        from registry.quality.policy_versions import set_policy  # lazy: CLI start-up

        return set_policy(self.ctx, name, document, source, actor)

    def policy(self, name: str, version: int | None = None) -> PolicyInfo:
        """The current QA policy of ``name`` (or one version of it)."""
        from registry.quality.policy_versions import show_policy  # lazy: CLI start-up

        return show_policy(self.ctx, name, version)

    def qa_run(self, ref: Ref | str, actor: str | None = None) -> GateResult:
        """Evaluate the current policy on ``ref``'s snapshot and store the gate result."""
        from registry.quality.evaluate import qa_run  # lazy: CLI start-up

        return qa_run(self.ctx, ref, actor)

    def gate(self, ref: Ref | str) -> GateStatus:
        """Whether ``ref``'s snapshot passes its gate under the current policy (or by waiver)."""
        from registry.quality.gate import check_gate  # lazy: CLI start-up

        return check_gate(self.ctx.engine, ref)

    def gate_check(self, ref: Ref | str, evaluate: bool = False, actor: str | None = None) -> GateStatus:
        """:meth:`gate`; with ``evaluate``, run QA first when no result is current (stale or never evaluated)."""
        status = self.gate(ref)
        if evaluate and status.state in ("stale", "never_evaluated"):
            exact = Ref(status.dataset, status.snapshot_id, "id")
            self.qa_run(exact, actor)
            status = self.gate(exact)
        return status

    def waive(self, ref: Ref | str, reason: str, checks: Sequence[str] | None = None, expires: str | None = None,
              actor: str | None = None) -> Waiver:
        """Let ``ref``'s snapshot pass its gate despite failed checks (audited; owner and maintainers only)."""
        from registry.quality.waivers import waive  # lazy: CLI start-up

        return waive(self.ctx, ref, reason, list(checks) if checks is not None else None, expires, actor)

    def pin(self, ref: Ref | str, lockfile: str | os.PathLike[str] = "registry.lock", job: str | None = None,
            actor: str | None = None) -> LockEntry:
        """Pin ``ref``'s snapshot for training in ``lockfile``; refused unless its gate passes."""
        from registry.training.pins import pin  # lazy: CLI start-up

        return pin(self.ctx, ref, lockfile, job, actor)

    def load(self, ref_or_lock_entry: Ref | str | LockEntry, *, allow_unverified: bool = False, job: str | None = None,
             actor: str | None = None) -> pa.Table:
        """The verified rows of a snapshot for training (``NAME@REF`` or a lockfile entry).

        Raises:
            GateBlocked: its gate does not pass now (unless ``allow_unverified``, which is audited).
            VerifyFailed: the stored bytes or the pinned content hash do not match.
        """
        from registry.training.pins import load  # lazy: CLI start-up

        return load(self.ctx, ref_or_lock_entry, allow_unverified=allow_unverified, job=job, actor=actor)

    def pull(self, lockfile: str | os.PathLike[str] = "registry.lock", outdir: str | os.PathLike[str] = ".",
             job: str | None = None, allow_unverified: bool = False, actor: str | None = None) -> list[PullResult]:
        """Write each pinned snapshot of ``lockfile`` to ``outdir``, verified as :meth:`load` does."""
        from registry.training.pins import pull  # lazy: CLI start-up

        return pull(self.ctx, lockfile, outdir, job, allow_unverified, actor)

    # --- host administration: not part of the service protocol, it runs only where the home lives -----

    def create_token(self, name: str, role: str, datasets: Sequence[str] | None = None, expires: str | None = None,
                     actor: str | None = None) -> tuple[str, TokenInfo]:
        """A new API token: its secret (shown once, only its hash is stored) and what it grants."""
        from registry.auth.tokens import create_token  # lazy: CLI start-up

        return create_token(self.ctx, name, role, list(datasets or []), expires, actor)

    def create_admin_token(self) -> str | None:
        """The first admin token's secret (name ``admin``), or None when an active admin token exists."""
        from registry.auth.tokens import create_token, has_admin_token  # lazy: CLI start-up

        if has_admin_token(self.ctx):
            return None
        secret, _ = create_token(self.ctx, "admin", "admin")
        return secret

    def tokens(self) -> list[TokenInfo]:
        """Every API token (never a secret), by name."""
        from registry.auth.tokens import list_tokens  # lazy: CLI start-up

        return list_tokens(self.ctx)

    def revoke_token(self, name: str, actor: str | None = None) -> TokenInfo:
        """Revoke the token ``name`` (audited)."""
        from registry.auth.tokens import revoke_token  # lazy: CLI start-up

        return revoke_token(self.ctx, name, actor)

    def store_info(self) -> StoreInfo:
        """Where the home's objects live and how many there are."""
        from registry.store_migration import store_info  # lazy: CLI start-up

        return store_info(self.ctx)

    def migrate_store(self, to_url: str, verify_all: bool = False,
                      progress: Callable[[int, int], None] | None = None, actor: str | None = None) -> MigrateResult:
        """Copy every referenced object to ``to_url``, verified, then switch the home over to it."""
        from registry.store_migration import migrate  # lazy: CLI start-up

        return migrate(self.ctx, to_url, verify_all=verify_all, progress=progress, actor=actor)

    def export_training(self, ref: Ref | str, out: str | os.PathLike[str], fmt: str) -> ExportResult:
        """Write ``ref``'s rows in a training format (``coco``, ``yolo`` or ``hf``) to ``out``."""
        from registry.training.export import export_training  # lazy: CLI start-up

        return export_training(self.ctx, ref, Path(out), fmt)

    def lineage_namespace(self, fix: str | None = None) -> tuple[str, bool]:
        """This registry's OpenLineage namespace, and whether it is fixed (stored); ``fix`` stores it first
        when none is stored yet."""
        from registry.lineage.namespace import (  # lazy: CLI start-up
            fix_namespace,
            registry_namespace,
            stored_namespace,
        )

        value = fix_namespace(self.ctx, fix) if fix else registry_namespace(self.ctx)
        return value, fix is not None or stored_namespace(self.ctx.engine) is not None

    def lineage_flush(self, *, retry_failed: bool = False, respect_backoff: bool = False,
                      wait: float = 0.0) -> DeliveryReport:
        """Deliver pending OpenLineage events now, in order (``retry_failed``: give failed ones another go)."""
        from registry.lineage import outbox  # lazy: CLI start-up

        if retry_failed:
            outbox.retry_failed(self.ctx)
        return outbox.deliver(self.ctx, respect_backoff=respect_backoff, wait=wait)

    def lineage_status(self) -> OutboxStatus:
        """Pending, retrying, failed and delivered event counts, and where events go."""
        from registry.lineage.outbox import outbox_status  # lazy: CLI start-up

        return outbox_status(self.ctx)

    # --- the labeling loop (Label Studio), with this host's LABEL_STUDIO_API_KEY -------------------------
    def sync_label_studio(self, name: str, *, url: str, project: int, key: str | None = None,
                          guideline_version: str | None = None, author: str | None = None, evaluate: bool = False,
                          progress: Callable[[str], None] | None = None) -> SyncResult:
        """Commit what changed in Label Studio project ``project`` since the last sync as ``name``'s next
        snapshot, or nothing when nothing changed (:func:`registry.sync.service.sync_label_studio`)."""
        from registry.sync.service import sync_label_studio  # lazy: CLI start-up

        return sync_label_studio(self.ctx, name, url=url, project=project, token=self.ctx.settings.labeling.api_key,
                                 key=key, guideline_version=guideline_version, author=author, evaluate=evaluate,
                                 progress=progress)

    def register_label_studio_webhook(self, name: str, *, url: str, project: int, hook_url: str) -> WebhookInfo:
        """Register the webhook of project ``project`` that calls the registry service at ``hook_url`` to
        sync ``name`` (:func:`registry.sync.hooks.register_webhook`)."""
        from registry.sync.client import LabelStudioClient  # lazy: CLI start-up
        from registry.sync.hooks import WebhookInfo, register_webhook  # lazy: CLI start-up

        with LabelStudioClient(url, self.ctx.settings.labeling.api_key) as client:
            return WebhookInfo(register_webhook(self.ctx, name, client, project, hook_url), project)

    def requeue(self, ref: Ref | str, *, url: str, project: int, where: str, prediction_column: str | None = None,
                score_column: str | None = None, model_version: str | None = None, limit: int | None = None,
                dry_run: bool = False) -> RequeueResult:
        """Send the rows of ``ref`` matching ``where`` back to Label Studio for relabeling, with the model's
        prediction (:func:`registry.sync.requeue.requeue`)."""
        from registry.sync.requeue import MAX_REQUEUE, requeue  # lazy: CLI start-up

        return requeue(self.ctx, ref, url=url, project=project, token=self.ctx.settings.labeling.api_key,
                       where=where, prediction_column=prediction_column, score_column=score_column,
                       model_version=model_version, limit=MAX_REQUEUE if limit is None else limit, dry_run=dry_run)
