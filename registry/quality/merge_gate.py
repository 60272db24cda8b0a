"""The gate at a merge (write-audit-publish): the target's policy evaluated on the merge result
before the branch moves. The source's results and policy never decide for the target."""

from __future__ import annotations

import json
import time
import uuid

from sqlmodel import Session

from registry import catalog
from registry.context import Context
from registry.db import transaction
from registry.models import DatasetRow, SnapshotRow
from registry.quality.evaluate import _subject, audit_facts, run_check
from registry.quality.gate import GateStatus, gate_status
from registry.quality.models import GateResultRow
from registry.quality.policy_document import Policy
from registry.quality.store import current_policy
from registry.timeutil import utc_now

__all__ = ["audit_facts", "evaluate_result", "record_and_decide"]


def evaluate_result(ctx: Context, dataset_name: str, snapshot: SnapshotRow, actor: str) -> GateResultRow | None:
    """Evaluate the dataset's current policy on ``snapshot`` (stored or not yet stored) and return
    the gate result row to insert with it, or None when the dataset has no policy."""
    started = time.perf_counter()
    with transaction(ctx.engine, readonly=True) as session:
        dataset = catalog.get_dataset(session, dataset_name)
        policy = current_policy(session, dataset)
        if policy is None:
            return None
        subject = _subject(ctx, session, dataset, snapshot)
    checks = Policy.model_validate({"checks": json.loads(policy.checks)}).checks
    outcomes = [run_check(check, subject) for check in checks]
    status = "failed" if any(not o.passed and o.severity == "error" for o in outcomes) else "passed"
    return GateResultRow(id=uuid.uuid4().hex, dataset_id=catalog.dataset_id(dataset), snapshot_id=snapshot.id,
                         policy_version=policy.version, policy_hash=policy.policy_hash, status=status,
                         checks=json.dumps([o.to_dict() for o in outcomes], sort_keys=True, allow_nan=False),
                         created_at=utc_now(), created_by=actor,
                         duration_ms=int((time.perf_counter() - started) * 1000))


def record_and_decide(session: Session, dataset: DatasetRow, snapshot: SnapshotRow, row: GateResultRow
                      ) -> GateStatus:
    """Insert the gate result in the merge's transaction and decide the gate (waivers apply as for any
    snapshot); the caller rolls back when it does not pass."""
    session.add(row)
    session.flush()
    return gate_status(session, dataset, snapshot)
