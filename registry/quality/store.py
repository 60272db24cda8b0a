"""Catalog queries of the quality tables inside a caller's transaction. Nothing here commits.

Only SQLModel and the catalog are imported, so ``registry gate check`` answers without loading
pyarrow or numpy.
"""

from __future__ import annotations

import json

from sqlmodel import Session, col, select

from registry.errors import PermissionDenied
from registry.models import DatasetRow
from registry.quality.models import GateResultRow, PolicyRow, WaiverRow

__all__ = ["current_policy", "latest_result", "maintainers_of", "require_maintainer", "valid_waivers"]


def current_policy(session: Session, dataset: DatasetRow) -> PolicyRow | None:
    """The newest policy version of ``dataset``, or None if it never had one."""
    return session.exec(select(PolicyRow).where(PolicyRow.dataset_id == dataset.id)
                        .order_by(col(PolicyRow.version).desc())).first()


def maintainers_of(session: Session, dataset: DatasetRow) -> list[str]:
    """The owner, then the maintainers the current policy lists."""
    policy = current_policy(session, dataset)
    listed: list[str] = json.loads(policy.maintainers) if policy else []
    return list(dict.fromkeys([*([dataset.owner] if dataset.owner else []), *listed]))


def require_maintainer(session: Session, dataset: DatasetRow, actor: str, what: str) -> None:
    """Refuse unless ``actor`` owns or maintains ``dataset``.

    Raises:
        PermissionDenied: they do not (the message names who may).
    """
    allowed = maintainers_of(session, dataset)
    if actor not in allowed:
        raise PermissionDenied(f"{actor!r} may not {what} of {dataset.name}: only its owner and maintainers may "
                               f"({', '.join(allowed) or 'none listed'})")


def latest_result(session: Session, snapshot_id: str, policy_hash: str | None = None) -> GateResultRow | None:
    """The newest gate result of a snapshot (under ``policy_hash`` if given)."""
    query = select(GateResultRow).where(GateResultRow.snapshot_id == snapshot_id)
    if policy_hash is not None:
        query = query.where(GateResultRow.policy_hash == policy_hash)
    return session.exec(query.order_by(col(GateResultRow.created_at).desc(), col(GateResultRow.id))).first()


def valid_waivers(session: Session, snapshot_id: str, now: str) -> list[WaiverRow]:
    """Waivers of a snapshot that have not expired at ``now`` (newest first)."""
    return list(session.exec(
        select(WaiverRow).where(WaiverRow.snapshot_id == snapshot_id)
        .where((col(WaiverRow.expires_at).is_(None)) | (col(WaiverRow.expires_at) > now))
        .order_by(col(WaiverRow.created_at).desc())).all())
