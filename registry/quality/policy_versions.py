"""Policy use cases: set (a new version, maintainers only) and show; the current policy of a dataset.

Who may change a dataset's policy or waive its gate (design invariant 7): the dataset's owner and
the maintainers listed in its current policy. A committer who is neither cannot weaken the gate
of what they commit. The API maps tokens to actors; here the actor is resolved once per call.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from registry import catalog
from registry.audit import log as audit
from registry.context import Context, resolve_actor
from registry.db import transaction
from registry.errors import Hint, NotFound
from registry.models import DatasetRow
from registry.quality.models import PolicyRow
from registry.quality.policy_document import parse_policy, policy_hash
from registry.quality.store import current_policy, require_maintainer
from registry.timeutil import utc_now

__all__ = ["PolicyInfo", "set_policy", "show_policy"]


@dataclass(frozen=True)
class PolicyInfo:
    """One stored policy version."""

    dataset: str
    version: int
    policy_hash: str
    maintainers: list[str]
    checks: list[dict[str, Any]]
    document: str
    created_at: str
    created_by: str
    created: bool = True
    """False when ``set`` found the same document already current and stored nothing."""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _info(row: PolicyRow, dataset: DatasetRow, created: bool = True) -> PolicyInfo:
    return PolicyInfo(dataset.name, row.version, row.policy_hash, json.loads(row.maintainers), json.loads(row.checks),
                      row.document, row.created_at, row.created_by, created)


def set_policy(ctx: Context, name: str, document: str, source: str = "policy", actor: str | None = None
               ) -> PolicyInfo:
    """Store ``document`` as the next policy version of dataset ``name``, with an audit event.

    Setting the document that is already current stores nothing (``created`` is False).

    Raises:
        NotFound: no such dataset.
        InvalidInput: the YAML is malformed or invalid (the message names line and field).
        PermissionDenied: the actor is neither the owner nor a maintainer.
    """
    policy = parse_policy(document, source)
    checks = policy.canonical_checks()
    digest = policy_hash(checks)
    who = resolve_actor(ctx, actor)
    with transaction(ctx.engine) as session:
        dataset = catalog.get_dataset(session, catalog.check_dataset_name(name))
        require_maintainer(session, dataset, who.name, "change the QA policy")
        current = current_policy(session, dataset)
        if current is not None and current.document == document:
            return _info(current, dataset, created=False)
        row = PolicyRow(dataset_id=catalog.dataset_id(dataset), version=(current.version + 1) if current else 1,
                        policy_hash=digest, document=document, checks=json.dumps(checks, sort_keys=True),
                        maintainers=json.dumps(policy.maintainers), created_at=utc_now(), created_by=who.name)
        session.add(row)
        session.flush()
        audit.record(session, ctx, "policy.set", "policy", f"{dataset.name}#{row.version}", dataset=dataset.name,
                     details={"version": row.version, "policy_hash": digest,
                              "previous_hash": current.policy_hash if current else None,
                              "checks": [c["name"] for c in checks], "maintainers": policy.maintainers,
                              "document_sha256": hashlib.sha256(document.encode()).hexdigest()},
                     actor=who)
        return _info(row, dataset)


def show_policy(ctx: Context, name: str, version: int | None = None) -> PolicyInfo:
    """The current policy of ``name`` (or version ``version``).

    Raises:
        NotFound: no such dataset, no policy yet, or no such version.
    """
    with transaction(ctx.engine, readonly=True) as session:
        dataset = catalog.get_dataset(session, catalog.check_dataset_name(name))
        if version is None:
            row = current_policy(session, dataset)
            if row is None:
                raise NotFound(f"dataset {name!r} has no QA policy yet; set one first",
                               hint=Hint("command", "policy set", f"{name} FILE"))
        else:
            row = session.get(PolicyRow, (dataset.id, version))
            if row is None:
                raise NotFound(f"dataset {name!r} has no policy version {version}")
        return _info(row, dataset)
