"""The ``gate waive`` use case: an audited exception that lets a snapshot pass its gate.

Only the dataset's owner and maintainers may waive (the committer of a failing snapshot cannot
let it through alone). A waiver names the checks it covers (default: all) and may expire.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass

from registry import catalog
from registry.audit import log as audit
from registry.context import Context, resolve_actor
from registry.db import transaction
from registry.errors import Hint, InvalidInput
from registry.quality.models import WaiverRow
from registry.quality.store import current_policy, require_maintainer
from registry.refs import Ref
from registry.snapshots.history import resolve_ref
from registry.timeutil import parse_expiry, utc_now

__all__ = ["Waiver", "waive"]


@dataclass(frozen=True)
class Waiver:
    id: str
    dataset: str
    snapshot_id: str
    checks: list[str] | None
    reason: str
    expires_at: str | None
    created_at: str
    created_by: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def waive(ctx: Context, ref: Ref | str, reason: str, checks: list[str] | None = None, expires: str | None = None,
          actor: str | None = None) -> Waiver:
    """Record a waiver for the snapshot ``ref`` names, with an audit event.

    Raises:
        InvalidInput: no reason, a check the current policy does not have, or a bad expiry.
        PermissionDenied: the actor is neither the dataset's owner nor a maintainer.
        NotFound: no such dataset or ref.
    """
    if not reason.strip():
        raise InvalidInput("a waiver needs a reason saying why the snapshot may be used anyway",
                           hint=Hint("option", "reason"))
    expires_at = parse_expiry(expires) if expires else None
    names = sorted({c.strip() for c in checks if c.strip()}) if checks else None
    who = resolve_actor(ctx, actor)
    with transaction(ctx.engine) as session:
        dataset, snapshot = resolve_ref(session, ref)
        require_maintainer(session, dataset, who.name, "waive the gate")
        policy = current_policy(session, dataset)
        if names is not None:
            known = {c["name"] for c in json.loads(policy.checks)} if policy else set()
            unknown = [n for n in names if n not in known]
            if unknown:
                raise InvalidInput(f"the current policy of {dataset.name} has no check {', '.join(map(repr, unknown))}"
                                   f" (checks: {', '.join(sorted(known)) or 'none'})")
        row = WaiverRow(id=uuid.uuid4().hex, dataset_id=catalog.dataset_id(dataset), snapshot_id=snapshot.id,
                        checks=json.dumps(names) if names is not None else None, reason=reason.strip(),
                        expires_at=expires_at, created_at=utc_now(), created_by=who.name)
        session.add(row)
        session.flush()
        audit.record(session, ctx, "gate.waive", "waiver", row.id, dataset=dataset.name, snapshot=snapshot.id,
                     details={"checks": names, "reason": row.reason, "expires_at": expires_at,
                              "policy_version": policy.version if policy else None},
                     actor=who)
        return Waiver(row.id, dataset.name, snapshot.id, names, row.reason, expires_at, row.created_at, who.name)
