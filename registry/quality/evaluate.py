"""The ``qa run`` use case: evaluate the current policy on one snapshot and store an immutable gate result.

A check that cannot be evaluated (a missing column, gold dataset or annotation records) fails with
the reason in its details: a gate never passes because something was not there to look at.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlmodel import Session, col, select

from registry import catalog
from registry.audit import log as audit
from registry.context import Context, resolve_actor
from registry.db import transaction
from registry.errors import Hint, InvalidInput, NotFound
from registry.lineage import emit as lineage_emit
from registry.lineage.events import JobRef, new_run_id
from registry.models import DatasetRow, SchemaVersionRow, SnapshotRow
from registry.quality import checks_records, checks_table
from registry.quality.gate import GateStatus, gate_status
from registry.quality.measure import CheckOutcome, Measure
from registry.quality.models import GateResultRow
from registry.quality.policy_document import Policy
from registry.quality.store import current_policy
from registry.quality.subject import Subject
from registry.refs import Ref
from registry.snapshots.history import resolve_ref
from registry.timeutil import utc_now

__all__ = ["GateResult", "RUNNERS", "audit_facts", "gate_results", "last_passed", "qa_run", "run_check"]

RUNNERS: dict[str, Callable[[Any, Subject], Measure]] = {
    "row_count": checks_table.row_count,
    "unique_key": checks_table.unique_key,
    "not_null": checks_table.not_null,
    "allowed_values": checks_table.allowed_values,
    "schema_compatible": checks_table.schema_compatible,
    "max_changed_fraction": checks_table.max_changed_fraction,
    "class_balance": checks_table.class_balance,
    "distribution_shift": checks_table.distribution_shift,
    "gold_accuracy": checks_table.gold_accuracy,
    "agreement": checks_records.agreement,
    "annotator_accuracy": checks_records.annotator_accuracy,
    "provenance_complete": checks_records.provenance_complete,
}


@dataclass(frozen=True)
class GateResult:
    """One stored evaluation of a policy on a snapshot."""

    id: str
    dataset: str
    snapshot_id: str
    policy_version: int
    policy_hash: str
    status: str
    checks: list[dict[str, Any]]
    created_at: str
    created_by: str
    duration_ms: int
    gate: dict[str, Any] | None = None
    """The snapshot's gate right after this evaluation (it may pass by waiver although this result failed)."""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: GateResultRow, dataset: str, gate: GateStatus | None = None) -> GateResult:
        return cls(row.id, dataset, row.snapshot_id, row.policy_version, row.policy_hash, row.status,
                   json.loads(row.checks), row.created_at, row.created_by, row.duration_ms,
                   gate.to_dict() if gate is not None else None)


def run_check(check: Any, subject: Subject) -> CheckOutcome:
    """Evaluate one validated check; one that cannot be evaluated fails, saying why."""
    try:
        measure = RUNNERS[check.check](check, subject)
    except (InvalidInput, NotFound) as exc:
        measure = Measure(False, None, "", {"error": f"cannot evaluate: {exc.message}"})
    return CheckOutcome(check.check_name, check.check, check.severity, measure.passed, measure.metric,
                        measure.threshold, measure.details)


def last_passed(session: Session, dataset: DatasetRow, snapshot: SnapshotRow) -> SnapshotRow | None:
    """The newest earlier snapshot of ``dataset`` with a passed gate result (under any policy)."""
    return session.exec(
        select(SnapshotRow).join(GateResultRow, col(GateResultRow.snapshot_id) == col(SnapshotRow.id))
        .where(GateResultRow.dataset_id == dataset.id, GateResultRow.status == "passed",
               SnapshotRow.seq < snapshot.seq)
        .order_by(col(SnapshotRow.seq).desc())).first()


def _schema(session: Session, dataset: DatasetRow, snapshot: SnapshotRow) -> list[dict[str, Any]]:
    version = session.get(SchemaVersionRow, (dataset.id, snapshot.schema_version))
    return json.loads(version.arrow_schema) if version else []


def _subject(ctx: Context, session: Session, dataset: DatasetRow, snapshot: SnapshotRow) -> Subject:
    parents = catalog.parents_of(snapshot)
    baseline = last_passed(session, dataset, snapshot)
    return Subject(ctx, dataset.name, catalog.key_columns(dataset), snapshot, _schema(session, dataset, snapshot),
                   parent=catalog.get_snapshot(session, parents[0]) if parents else None, baseline=baseline,
                   baseline_schema=_schema(session, dataset, baseline) if baseline else None)


def audit_facts(row: GateResultRow | None) -> dict[str, object] | None:
    """What the audit event storing gate result ``row`` records of it, for ``verify`` to compare the row with:
    in ``gate.evaluate``'s details, and as a merge's ``details.gate_result``."""
    if row is None:
        return None
    return {"gate_result": row.id, "status": row.status, "policy_version": row.policy_version,
            "policy_hash": row.policy_hash, "checks_sha256": hashlib.sha256(row.checks.encode()).hexdigest(),
            "duration_ms": row.duration_ms}


def qa_run(ctx: Context, ref: Ref | str, actor: str | None = None) -> GateResult:
    """Evaluate the current policy of ``ref``'s dataset on its snapshot; store and audit the result.

    Raises:
        NotFound: no such dataset or ref, or the dataset has no policy.
    """
    started = time.perf_counter()
    with transaction(ctx.engine, readonly=True) as session:
        dataset, snapshot = resolve_ref(session, ref)
        policy = current_policy(session, dataset)
        if policy is None:
            raise NotFound(f"dataset {dataset.name!r} has no QA policy; set one first",
                           hint=Hint("command", "policy set", f"{dataset.name} FILE"))
        subject = _subject(ctx, session, dataset, snapshot)
    checks = Policy.model_validate({"checks": json.loads(policy.checks)}).checks
    started_at = utc_now()
    try:
        outcomes = [run_check(check, subject) for check in checks]
    except Exception as exc:  # a crash of the evaluation itself (not a failed check) is a FAIL run
        lineage_emit.enqueue_failed_run(
            ctx, JobRef(ctx.settings.lineage.job_namespace, f"qa/{dataset.name}"), new_run_id(), exc,
            inputs=[lineage_emit.snapshot_input(ctx, dataset.name, snapshot.id)], started_at=started_at)
        raise
    status = "failed" if any(not o.passed and o.severity == "error" for o in outcomes) else "passed"
    who = resolve_actor(ctx, actor)
    row = GateResultRow(id=uuid.uuid4().hex, dataset_id=catalog.dataset_id(dataset), snapshot_id=snapshot.id,
                        policy_version=policy.version, policy_hash=policy.policy_hash, status=status,
                        checks=json.dumps([o.to_dict() for o in outcomes], sort_keys=True, allow_nan=False),
                        created_at=utc_now(), created_by=who.name,
                        duration_ms=int((time.perf_counter() - started) * 1000))
    with transaction(ctx.engine) as session:
        session.add(row)
        session.flush()
        gate = gate_status(session, dataset, snapshot)
        lineage_emit.enqueue_qa_run(session, ctx, snapshot, _assertions(checks, outcomes), started_at=started_at)
        audit.record(session, ctx, "gate.evaluate", "gate_result", row.id, dataset=dataset.name, snapshot=snapshot.id,
                     details={"status": status, "policy_version": policy.version, "policy_hash": policy.policy_hash,
                              "failed": [o.name for o in outcomes if not o.passed and o.severity == "error"],
                              "warnings": [o.name for o in outcomes if not o.passed and o.severity == "warn"],
                              **(audit_facts(row) or {})},
                     actor=who)
    return GateResult.from_row(row, dataset.name, gate)


def gate_results(ctx: Context, ref: Ref | str) -> list[GateResult]:
    """Every stored gate result of the snapshot ``ref`` names, under any policy version, newest first.

    Raises:
        NotFound: no such dataset or ref.
    """
    with transaction(ctx.engine, readonly=True) as session:
        dataset, snapshot = resolve_ref(session, ref)
        rows = session.exec(select(GateResultRow).where(GateResultRow.snapshot_id == snapshot.id)
                            .order_by(col(GateResultRow.created_at).desc(), col(GateResultRow.id))).all()
        return [GateResult.from_row(row, dataset.name) for row in rows]


def _assertions(checks: list[Any], outcomes: list[CheckOutcome]) -> list[lineage_emit.Assertion]:
    """The ``dataQualityAssertions`` items of a gate result: one per check, metric vs threshold."""
    return [lineage_emit.Assertion(o.check, o.passed, column=getattr(check, "column", None), severity=o.severity,
                                   expected=o.threshold or None,
                                   actual=None if o.metric is None else str(o.metric), name=o.name)
            for check, o in zip(checks, outcomes, strict=True)]
