"""Whether a snapshot's gate passes now (design invariants 7 and 8), and the lean ``gate check`` path.

A snapshot passes when its newest gate result under the *current* policy hash passed, or when a
valid (unexpired) waiver covers it: a waiver without named checks covers everything, one with
named checks covers a current result whose failed error checks are all named. Otherwise the
gate is ``failed``, ``stale`` (results exist only for older policies), ``never_evaluated`` or
``no_policy``.

This module imports only SQLModel and the catalog: the CLI's ``gate check`` opens the catalog
engine alone (:func:`check_gate_at`) so the whole process stays well under a second.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy.engine import Engine
from sqlmodel import Session

from registry import catalog
from registry.db import transaction
from registry.models import DatasetRow, SnapshotRow
from registry.quality.store import current_policy, latest_result, valid_waivers
from registry.timeutil import utc_now

if TYPE_CHECKING:
    from registry.context import ClientInfo

__all__ = ["GateState", "GateStatus", "check_gate", "check_gate_at", "gate_status"]

GateState = Literal["passed", "waived", "failed", "stale", "never_evaluated", "no_policy"]


@dataclass(frozen=True)
class GateStatus:
    """The gate of one snapshot under the current policy."""

    dataset: str
    snapshot_id: str
    state: GateState
    policy_version: int | None
    policy_hash: str | None
    result_id: str | None
    evaluated_at: str | None
    failed: list[dict[str, Any]] = field(default_factory=list)
    """Failed error-severity checks: name, check, metric, threshold."""
    warnings: list[dict[str, Any]] = field(default_factory=list)
    """Failed warn-severity checks (never block)."""
    waiver: dict[str, Any] | None = None
    """The waiver the gate passes by (id, reason, checks, expires_at, created_by)."""

    @property
    def passes(self) -> bool:
        return self.state in ("passed", "waived")

    @property
    def message(self) -> str:
        """One line saying why it passes or not."""
        where = f"{self.dataset}@{self.snapshot_id[:12]}"
        version = f"policy v{self.policy_version}" if self.policy_version else "no policy"
        if self.state == "passed":
            return f"{where}: gate passed under {version} (result {self.result_id})"
        failing = "; ".join(_failure(c) for c in self.failed)
        names = ", ".join(c["name"] for c in self.failed)
        if self.state == "waived":
            assert self.waiver is not None
            covered = ", ".join(self.waiver["checks"]) if self.waiver["checks"] else "all checks"
            return (f"{where}: gate passes BY WAIVER {self.waiver['id']} ({covered}; reason: {self.waiver['reason']}; "
                    f"by {self.waiver['created_by']}, expires {self.waiver['expires_at'] or 'never'})"
                    + (f"; failed: {failing}" if failing else ""))
        if self.state == "failed":
            return f"{where}: gate FAILED under {version}: {len(self.failed)} check(s) failed: {names}"
        if self.state == "stale":
            return (f"{where}: gate result is stale: the policy changed since it was evaluated (now {version}); "
                    f"run `registry qa run {self.dataset}@{self.snapshot_id[:12]}`")
        if self.state == "never_evaluated":
            return (f"{where}: never evaluated under {version}; "
                    f"run `registry qa run {self.dataset}@{self.snapshot_id[:12]}`")
        return f"{where}: dataset {self.dataset} has no QA policy; set one with `registry policy set`"

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "passes": self.passes, "message": self.message}


def _failure(check: dict[str, Any]) -> str:
    """``name: metric vs threshold``, or why the check could not be evaluated."""
    if check.get("error"):
        return f"{check['name']}: {check['error']}"
    metric = check["metric"]
    figure = f"{metric:.6g}" if isinstance(metric, float) else str(metric)
    return f"{check['name']}: {figure} vs {check['threshold']}"


def gate_status(session: Session, dataset: DatasetRow, snapshot: SnapshotRow) -> GateStatus:
    """The gate of ``snapshot`` now, read in the caller's transaction."""
    policy = current_policy(session, dataset)
    waivers = valid_waivers(session, snapshot.id, utc_now())
    result = latest_result(session, snapshot.id, policy.policy_hash) if policy else None
    base: dict[str, Any] = {"dataset": dataset.name, "snapshot_id": snapshot.id,
                            "policy_version": policy.version if policy else None,
                            "policy_hash": policy.policy_hash if policy else None}
    failed: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    if result is not None:
        base.update(result_id=result.id, evaluated_at=result.created_at)
        for check in json.loads(result.checks):
            if not check["passed"]:
                summary = {**{k: check[k] for k in ("name", "check", "metric", "threshold")},
                           "error": check["details"].get("error")}
                (failed if check["severity"] == "error" else warnings).append(summary)
    else:
        base.update(result_id=None, evaluated_at=None)
    if result is not None and result.status == "passed":
        return GateStatus(**base, state="passed", warnings=warnings)
    failed_names = {c["name"] for c in failed}
    for waiver in waivers:
        checks = json.loads(waiver.checks) if waiver.checks is not None else None
        if checks is None or (result is not None and failed_names <= set(checks)):
            info = {"id": waiver.id, "reason": waiver.reason, "checks": checks, "expires_at": waiver.expires_at,
                    "created_by": waiver.created_by, "created_at": waiver.created_at}
            return GateStatus(**base, state="waived", failed=failed, warnings=warnings, waiver=info)
    if policy is None:
        return GateStatus(**base, state="no_policy")
    if result is not None:
        return GateStatus(**base, state="failed", failed=failed, warnings=warnings)
    stale = latest_result(session, snapshot.id) is not None
    return GateStatus(**base, state="stale" if stale else "never_evaluated")


def check_gate(engine: Engine, ref: str) -> GateStatus:
    """The gate of the snapshot ``NAME@REF`` names (read-only)."""
    with transaction(engine, readonly=True) as session:
        name, at = catalog.split_ref(ref)
        dataset = catalog.get_dataset(session, name)
        return gate_status(session, dataset, catalog.resolve(session, dataset, at))


def check_gate_at(home: str | os.PathLike[str] | None, ref: str, evaluate: bool = False, actor: str | None = None,
                  client: ClientInfo | None = None) -> GateStatus:
    """``registry gate check``: open only the catalog of ``home``, and with ``evaluate`` run QA first
    (as ``actor``, audited with ``client``) when the snapshot has no result under the current policy.

    Raises:
        HomeNotFound, CatalogOutOfDate, NotFound: as opening the home and resolving ``ref`` do.
    """
    from registry.config import RegistryPaths, Settings, find_home
    from registry.db import check_up_to_date, make_engine

    settings = Settings()
    home_path = find_home(home)
    engine = make_engine(RegistryPaths.for_home(home_path, settings).database_url)
    try:
        check_up_to_date(engine)
        status = check_gate(engine, ref)
    finally:
        engine.dispose()
    if evaluate and status.state in ("stale", "never_evaluated"):
        from registry.context import open_context
        from registry.quality.evaluate import qa_run

        ctx = open_context(home_path, settings)
        if client is not None:
            ctx.client = client
        try:
            qa_run(ctx, f"{status.dataset}@{status.snapshot_id}", actor)
            return check_gate(ctx.engine, f"{status.dataset}@{status.snapshot_id}")
        finally:
            ctx.close()
    return status
