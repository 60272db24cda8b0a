"""Queueing the OpenLineage runs of registry operations, and the graph edges they imply.

Service functions call these inside their own catalog transaction, just before the audit
``record`` call; the events then commit or roll back with the operation and are delivered after
it (see :mod:`registry.lineage.outbox` and :mod:`registry.lineage.dispatch`):

- commits: :func:`begin_commit` before the work, :func:`enqueue_commit` in the transaction,
  :func:`fail_commit` / :func:`complete_unchanged` in their own short transactions;
- QA runs: :func:`enqueue_qa_run` (a failed gate is a COMPLETE run with ``success: false``
  assertions) and :func:`enqueue_failed_run` for a crash;
- training reads (pin, pull, load): :func:`enqueue_training_read`.

With ``OPENLINEAGE_DISABLED=true`` no events are queued; graph edges are still recorded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import event as sa_event
from sqlmodel import Session

from registry import catalog
from registry.context import Context
from registry.db import transaction
from registry.lineage import dispatch, metrics, outbox
from registry.lineage.events import (
    CUSTOM_FACET,
    DatasetRef,
    JobRef,
    ParentRef,
    check_run_id,
    custom_facet,
    error_facet,
    facet,
    new_run_id,
    run_event,
)
from registry.lineage.graph import Node, record_edge
from registry.lineage.namespace import registry_namespace
from registry.lineage.naming import dataset_name as outside_dataset
from registry.models import DatasetRow, SnapshotRow
from registry.timeutil import utc_now

if TYPE_CHECKING:
    import pyarrow as pa

    from registry.snapshots.manifest import Layer

__all__ = ["Assertion", "CommitRun", "LineageRun", "RunInfo", "begin_commit", "commit_metrics", "complete_unchanged",
           "enqueue_commit", "enqueue_export_run", "enqueue_failed_run", "enqueue_qa_run", "enqueue_training_read",
           "fail_commit", "registry_namespace", "snapshot_input"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LineageRun:
    """The caller's say in a commit's lineage (CLI ``--job``, ``--run-id``, ``--parent-run``, ``--source``).

    ``job``: ``NAMESPACE/NAME`` (default ``registry`` / ``commit/<dataset>``); ``run_id``: a UUID
    (default a new UUIDv7); ``parent_run``: ``NAMESPACE/NAME/RUN_ID`` of the run this one belongs to;
    ``sources``: inputs besides the parent snapshot, each ``DATASET@REF`` (a registry snapshot) or
    ``NAMESPACE:NAME`` (any other dataset, e.g. ``s3://raw-bucket:images/2026-11``).
    """

    job: str | None = None
    run_id: str | None = None
    parent_run: str | None = None
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunInfo:
    """The job and run an operation's events were queued under."""

    job: JobRef
    run_id: str

    def to_dict(self) -> dict[str, str]:
        return {"job_namespace": self.job.namespace, "job_name": self.job.name, "run_id": self.run_id}


@dataclass
class CommitRun:
    """A commit's run, resolved before the work starts (:func:`begin_commit`)."""

    job: JobRef
    run_id: str
    parent: ParentRef | None
    sources: list[tuple[DatasetRef, Node]]
    namespace: str
    started_at: str
    completed: bool = False
    """Set once the transaction that queued COMPLETE has committed: a later error is no FAIL."""

    @property
    def run_facets(self) -> dict[str, Any]:
        return {"parent": self.parent.facet()} if self.parent else {}


@dataclass(frozen=True)
class Assertion:
    """One data-quality check's outcome, as the ``dataQualityAssertions`` facet lists it."""

    assertion: str
    success: bool
    column: str | None = None
    severity: str | None = None
    """``error`` (blocks the gate) or ``warn``."""
    expected: str | None = None
    actual: str | None = None
    name: str | None = None
    description: str | None = None

    def to_facet_item(self) -> dict[str, Any]:
        item = {"assertion": self.assertion, "success": self.success, "column": self.column,
                "severity": self.severity, "expected": self.expected, "actual": self.actual, "name": self.name,
                "description": self.description}
        return {k: v for k, v in item.items() if v is not None}


def _version_facets(snapshot_id: str) -> dict[str, Any]:
    return {"version": facet("version", datasetVersion=snapshot_id)}


def snapshot_input(ctx: Context, dataset: str, snapshot_id: str, **input_facets: Any) -> DatasetRef:
    """A registry snapshot as an event input: this registry's namespace, the dataset name, and the
    full snapshot id in the ``version`` facet."""
    return DatasetRef(registry_namespace(ctx), dataset, _version_facets(snapshot_id), dict(input_facets))


def _job(text: str | JobRef | None, default: JobRef) -> JobRef:
    if text is None:
        return default
    return text if isinstance(text, JobRef) else JobRef.parse(text)


def _parse_source(session: Session, ctx: Context, text: str) -> tuple[DatasetRef, Node]:
    """``DATASET@REF`` (resolved to a snapshot now) or an outside dataset's URI (see
    :mod:`registry.lineage.naming`)."""
    if ":" in text:
        namespace, name = outside_dataset(text)
        return DatasetRef(namespace, name), Node("dataset", name, "", namespace)
    dataset, snapshot = catalog.resolve_ref(session, text)
    return snapshot_input(ctx, dataset.name, snapshot.id), Node("snapshot", dataset.name, snapshot.id)


def begin_commit(ctx: Context, dataset: str, lineage: LineageRun | None) -> CommitRun:
    """Resolve a commit's job, run and sources before any work (the START time is now).

    Raises:
        InvalidInput: a malformed job, run id, parent run or source.
        NotFound: a ``DATASET@REF`` source names nothing.
    """
    lineage = lineage or LineageRun()
    settings = ctx.settings.lineage
    job = _job(lineage.job, JobRef(settings.job_namespace, f"commit/{dataset}"))
    run_id = check_run_id(lineage.run_id) if lineage.run_id else new_run_id()
    parent = ParentRef.parse(lineage.parent_run) if lineage.parent_run else None
    sources: list[tuple[DatasetRef, Node]] = []
    if lineage.sources:
        with transaction(ctx.engine, readonly=True) as session:
            sources = [_parse_source(session, ctx, text) for text in lineage.sources]
    return CommitRun(job, run_id, parent, sources, registry_namespace(ctx), utc_now())


def _queue(session: Session, ctx: Context, events: list[dict[str, Any]]) -> None:
    """Queue events in the caller's transaction and deliver them once it commits."""
    if ctx.settings.lineage.openlineage.disabled:
        return
    outbox.enqueue(session, events)
    dispatch.deliver_after_commit(session, ctx)


def _lifecycle(compatibility: str) -> str:
    return {"initial": "CREATE", "breaking": "ALTER", "compatible": "ALTER"}.get(compatibility, "OVERWRITE")


def _snapshot_bytes(ctx: Context, layers: Sequence[Layer]) -> int | None:
    try:
        return sum(ctx.store.size(sha) for layer in layers for sha in (layer.rows, layer.deletes) if sha)
    except Exception:  # noqa: BLE001 - a size is a nicety; never fail a commit over it
        return None


def commit_metrics(ctx: Context, table: pa.Table | None) -> dict[str, dict[str, Any]]:
    """Per-column metrics of a commit, computed before its transaction so they hold no lock.

    ``table``: the snapshot's full content when the commit had it (replace mode), else None: upserts
    hold only the change, and reading the rest would make the commit cost follow n (invariant 4).
    """
    if table is None or ctx.settings.lineage.openlineage.disabled:
        return {}
    return metrics.column_metrics(table, ctx.settings.lineage.metrics_max_rows)


def enqueue_commit(session: Session, ctx: Context, run: CommitRun, *, dataset: DatasetRow, snapshot: SnapshotRow,
                   schema: list[dict[str, Any]], mode: str, compatibility: str,
                   column_metrics: dict[str, dict[str, Any]], layers: Sequence[Layer]) -> None:
    """Queue the commit's START and COMPLETE and record its edges, in the commit's transaction
    (``column_metrics`` from :func:`commit_metrics`)."""
    name = dataset.name
    parents: list[str] = json.loads(snapshot.parents)
    inputs = [snapshot_input(ctx, name, p) for p in parents] + [ref for ref, _node in run.sources]
    settings = ctx.settings.lineage
    owner = dataset.owner or dataset.created_by
    facets: dict[str, Any] = {
        **_version_facets(snapshot.id),
        "schema": facet("schema", fields=[{"name": c["name"], "type": c["type"]} for c in schema]),
        "dataSource": facet("dataSource", name=run.namespace, uri=run.namespace),
        "lifecycleStateChange": facet("lifecycleStateChange", lifecycleStateChange=_lifecycle(compatibility)),
        "dataQualityMetrics": facet("dataQualityMetrics", rowCount=snapshot.rows,
                                    bytes=_snapshot_bytes(ctx, layers), columnMetrics=column_metrics),
        "ownership": facet("ownership", owners=[{"name": f"user:{owner}", "type": "OWNER"}]),
        CUSTOM_FACET: custom_facet(
            settings.schema_base_url, snapshotId=snapshot.id, parents=parents, mode=mode,
            change={"added": snapshot.added, "changed": snapshot.changed, "removed": snapshot.removed,
                    "rows": snapshot.rows, "bytesWritten": snapshot.bytes_written, "summary": snapshot.summary},
            schemaVersion={"version": snapshot.schema_version, "fingerprint": snapshot.schema_fingerprint,
                           "compatibility": compatibility},
            provenance={"author": snapshot.author, "committedAt": snapshot.created_at,
                        "client": {"kind": ctx.client.kind, "host": ctx.client.host},
                        "sources": [node.key for _ref, node in run.sources],
                        **({"annotationRecords": snapshot.annotations_sha256} if snapshot.annotations_sha256 else {})}),
    }
    if snapshot.message:
        facets["documentation"] = facet("documentation", description=snapshot.message)
    output = DatasetRef(run.namespace, name, facets)
    start_output = DatasetRef(run.namespace, name, _version_facets(snapshot.id))
    _queue(session, ctx, [
        run_event("START", run.started_at, run.run_id, run.job, inputs=inputs, outputs=[start_output],
                  run_facets=run.run_facets),
        run_event("COMPLETE", snapshot.created_at, run.run_id, run.job, inputs=inputs, outputs=[output],
                  run_facets=run.run_facets),
    ])
    child = Node("snapshot", name, snapshot.id)
    for parent_id in parents:
        record_edge(session, "parent", Node("snapshot", name, parent_id), child, run.run_id)
    for _ref, node in run.sources:
        record_edge(session, "source", node, child, run.run_id)

    def _completed(_session: Session) -> None:
        run.completed = True

    sa_event.listen(session, "after_commit", _completed, once=True)


def enqueue_failed_run(ctx: Context, job: JobRef, run_id: str, error: BaseException, *,
                       inputs: Sequence[DatasetRef] = (), started_at: str | None = None,
                       parent: ParentRef | None = None) -> bool:
    """Queue START and FAIL (with the ``errorMessage`` facet) in a short transaction of its own.

    Best effort: it never raises, so it cannot mask the error being reported; True if queued.
    """
    run_facets = {"parent": parent.facet()} if parent else {}
    try:
        with transaction(ctx.engine) as session:
            _queue(session, ctx, [
                run_event("START", started_at or utc_now(), run_id, job, inputs=list(inputs), run_facets=run_facets),
                run_event("FAIL", utc_now(), run_id, job, inputs=list(inputs),
                          run_facets={**run_facets, "errorMessage": error_facet(error)}),
            ])
        return True
    except Exception:  # noqa: BLE001 - never mask the original error
        log.warning("could not queue the FAIL event of run %s", run_id, exc_info=True)
        return False


def fail_commit(ctx: Context, run: CommitRun, error: BaseException) -> None:
    """Queue the FAIL of a commit that raised before its transaction committed."""
    if not run.completed:
        enqueue_failed_run(ctx, run.job, run.run_id, error, inputs=[ref for ref, _node in run.sources],
                           started_at=run.started_at, parent=run.parent)


def complete_unchanged(ctx: Context, run: CommitRun, dataset: str, head: str) -> None:
    """A commit that changed nothing still ran: START and COMPLETE with the head as input, no output."""
    if ctx.settings.lineage.openlineage.disabled:
        return
    try:
        inputs = [snapshot_input(ctx, dataset, head)] + [ref for ref, _node in run.sources]
        with transaction(ctx.engine) as session:
            _queue(session, ctx, [
                run_event("START", run.started_at, run.run_id, run.job, inputs=inputs, run_facets=run.run_facets),
                run_event("COMPLETE", utc_now(), run.run_id, run.job, inputs=inputs, run_facets=run.run_facets),
            ])
    except Exception:  # noqa: BLE001 - lineage never breaks the operation
        log.warning("could not queue the events of unchanged commit run %s", run.run_id, exc_info=True)


def _dataset_name(session: Session, snapshot: SnapshotRow) -> str:
    row = session.get(DatasetRow, snapshot.dataset_id)
    assert row is not None, "snapshot without dataset"
    return row.name


@dataclass(frozen=True)
class _RunSpec:
    job: JobRef
    run_id: str
    run_facets: dict[str, Any] = field(default_factory=dict)


def _spec(job: str | JobRef | None, default: JobRef, run_id: str | None, parent: str | ParentRef | None) -> _RunSpec:
    parent_ref = ParentRef.parse(parent) if isinstance(parent, str) else parent
    return _RunSpec(_job(job, default), check_run_id(run_id) if run_id else new_run_id(),
                    {"parent": parent_ref.facet()} if parent_ref else {})


def enqueue_qa_run(session: Session, ctx: Context, snapshot: SnapshotRow, assertions: Sequence[Assertion], *,
                   column_metrics: dict[str, dict[str, Any]] | None = None, job: str | JobRef | None = None,
                   run_id: str | None = None, parent: str | ParentRef | None = None,
                   started_at: str | None = None) -> RunInfo:
    """Queue a QA run (START, COMPLETE) of ``snapshot`` in the caller's transaction.

    The input carries the ``dataQualityAssertions`` input facet (one item per check) and
    ``dataQualityMetrics`` (row count and bytes of the snapshot plus ``column_metrics`` if the checks
    computed them). A failed gate is still a COMPLETE run whose assertions say ``success: false``;
    for a crash call :func:`enqueue_failed_run` instead. Default job: ``registry`` / ``qa/<dataset>``.

    Raises:
        InvalidInput: a malformed job, run id or parent run.
    """
    name = _dataset_name(session, snapshot)
    spec = _spec(job, JobRef(ctx.settings.lineage.job_namespace, f"qa/{name}"), run_id, parent)
    data = snapshot_input(ctx, name, snapshot.id,
                          dataQualityAssertions=facet("dataQualityAssertions",
                                                      assertions=[a.to_facet_item() for a in assertions]),
                          dataQualityMetrics=_input_metrics(snapshot, column_metrics or {}))
    _queue(session, ctx, [
        run_event("START", started_at or utc_now(), spec.run_id, spec.job, inputs=[data], run_facets=spec.run_facets),
        run_event("COMPLETE", utc_now(), spec.run_id, spec.job, inputs=[data], run_facets=spec.run_facets),
    ])
    return RunInfo(spec.job, spec.run_id)


def _input_metrics(snapshot: SnapshotRow, columns: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return facet("inputDataQualityMetrics", rowCount=snapshot.rows, columnMetrics=columns)


def enqueue_training_read(session: Session, ctx: Context, snapshot: SnapshotRow, job: str | JobRef | None = None,
                          run_id: str | None = None, *, parent: str | ParentRef | None = None,
                          operation: str = "read") -> RunInfo:
    """Queue a training job's read (pin, pull, load) of ``snapshot`` and record the
    ``snapshot -> job run`` edge, in the caller's transaction.

    The run (START, COMPLETE) has the snapshot as its input with the full id in the ``version``
    facet. ``job`` is ``NAMESPACE/NAME`` (default ``registry`` / ``<operation>/<dataset>``); without
    ``run_id`` a new run is made (pass ``parent`` to hang it under the training job's own run).

    Raises:
        InvalidInput: a malformed job, run id or parent run.
    """
    name = _dataset_name(session, snapshot)
    spec = _spec(job, JobRef(ctx.settings.lineage.job_namespace, f"{operation}/{name}"), run_id, parent)
    data = snapshot_input(ctx, name, snapshot.id)
    _queue(session, ctx, [
        run_event("START", utc_now(), spec.run_id, spec.job, inputs=[data], run_facets=spec.run_facets),
        run_event("COMPLETE", utc_now(), spec.run_id, spec.job, inputs=[data], run_facets=spec.run_facets),
    ])
    record_edge(session, "read", Node("snapshot", name, snapshot.id),
                Node("run", spec.job.name, spec.run_id, spec.job.namespace), spec.run_id)
    return RunInfo(spec.job, spec.run_id)


def enqueue_export_run(session: Session, ctx: Context, snapshot: SnapshotRow, output: DatasetRef,
                       operation: str) -> RunInfo:
    """Queue a run (START, COMPLETE) that sends ``snapshot``'s rows to an outside dataset ``output``
    (e.g. samples requeued to a labeling project), job ``registry`` / ``<operation>/<dataset>``, in the
    caller's transaction."""
    name = _dataset_name(session, snapshot)
    spec = _spec(None, JobRef(ctx.settings.lineage.job_namespace, f"{operation}/{name}"), None, None)
    data = snapshot_input(ctx, name, snapshot.id)
    _queue(session, ctx, [
        run_event(kind, utc_now(), spec.run_id, spec.job, inputs=[data], outputs=[output])
        for kind in ("START", "COMPLETE")])
    return RunInfo(spec.job, spec.run_id)
