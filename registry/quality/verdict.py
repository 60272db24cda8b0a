"""The gate verdict: from a snapshot's current policy, results and waivers to pass or not (invariants 7, 8).

A snapshot passes when its newest gate result under the *current* policy hash passed, or when a
valid (unexpired) waiver covers it: a waiver without named checks covers everything, one with
named checks covers a current result whose failed error checks are all named. Otherwise the gate
is ``failed``, ``stale`` (results exist only for older policies), ``never_evaluated`` or
``no_policy``.

Pure Python over plain facts (no database, no data stack): both the SQLModel path
(:func:`registry.quality.gate.gate_status`) and the fast SQLite path of ``registry gate check``
(:mod:`registry.quality.gatecheck`) decide here, so they cannot disagree.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from registry.errors import Hint

__all__ = ["GateState", "GateStatus", "PolicyFacts", "ResultFacts", "WaiverFacts", "decide"]

GateState = Literal["passed", "waived", "failed", "stale", "never_evaluated", "no_policy"]


class PolicyFacts(Protocol):
    @property
    def version(self) -> int: ...
    @property
    def policy_hash(self) -> str: ...


class ResultFacts(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def created_at(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def checks(self) -> str: ...


class WaiverFacts(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def checks(self) -> str | None: ...
    @property
    def reason(self) -> str: ...
    @property
    def expires_at(self) -> str | None: ...
    @property
    def created_by(self) -> str: ...
    @property
    def created_at(self) -> str: ...


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

    @property
    def reason(self) -> str:
        """:attr:`message` with its advice in plain words instead of a command line (errors raised for a
        gate carry that advice as :attr:`hint`)."""
        where = f"{self.dataset}@{self.snapshot_id[:12]}"
        version = f"policy v{self.policy_version}" if self.policy_version else "no policy"
        if self.state == "stale":
            return (f"{where}: gate result is stale: the policy changed since it was evaluated (now {version}); "
                    "evaluate it again")
        if self.state == "never_evaluated":
            return f"{where}: never evaluated under {version}; evaluate it first"
        if self.state == "no_policy":
            return f"{where}: dataset {self.dataset} has no QA policy; set one first"
        return self.message

    @property
    def hint(self) -> Hint | None:
        """What to run to get a gate at all: evaluate the snapshot, or set a policy."""
        if self.state in ("stale", "never_evaluated"):
            return Hint("command", "qa run", f"{self.dataset}@{self.snapshot_id[:12]}")
        if self.state == "no_policy":
            return Hint("command", "policy set", f"{self.dataset} FILE")
        return None

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "passes": self.passes, "message": self.message}


def _failure(check: dict[str, Any]) -> str:
    """``name: metric vs threshold``, or why the check could not be evaluated."""
    if check.get("error"):
        return f"{check['name']}: {check['error']}"
    metric = check["metric"]
    figure = f"{metric:.6g}" if isinstance(metric, float) else str(metric)
    return f"{check['name']}: {figure} vs {check['threshold']}"


def decide(dataset: str, snapshot_id: str, policy: PolicyFacts | None, result: ResultFacts | None,
           waivers: Sequence[WaiverFacts], has_older_result: Callable[[], bool]) -> GateStatus:
    """The verdict for one snapshot: ``result`` is its newest under the current policy (None if none),
    ``waivers`` its unexpired waivers (newest first), ``has_older_result`` asked only to tell stale
    from never evaluated."""
    base: dict[str, Any] = {"dataset": dataset, "snapshot_id": snapshot_id,
                            "policy_version": policy.version if policy else None,
                            "policy_hash": policy.policy_hash if policy else None,
                            "result_id": result.id if result else None,
                            "evaluated_at": result.created_at if result else None}
    failed: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    for check in json.loads(result.checks) if result is not None else []:
        if not check["passed"]:
            summary = {**{k: check[k] for k in ("name", "check", "metric", "threshold")},
                       "error": check["details"].get("error")}
            (failed if check["severity"] == "error" else warnings).append(summary)
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
    return GateStatus(**base, state="stale" if has_older_result() else "never_evaluated")
