"""QA policies, gate results, waivers, pins, and the audit chain's verification and checkpoints."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, status
from pydantic import BaseModel
from registry_client.models import (
    AuditCheckpointPublic,
    AuditVerifyPublic,
    GateResultsPublic,
    LockEntryPublic,
    PolicyPublic,
    WaiverPublic,
)

from registry.api.deps import Access, require
from registry.api.wire import JSONBody, wire, wire_list
from registry.audit.verify import parse_checkpoint, verify_audit, write_checkpoint
from registry.errors import PermissionDenied
from registry.quality.evaluate import gate_results as stored_gate_results
from registry.quality.policy_versions import set_policy, show_policy
from registry.quality.waivers import waive
from registry.training.pins import pin_entry

__all__ = ["router"]

router = APIRouter(tags=["governance"])


class PolicyDocument(BaseModel):
    document: str
    """The policy as YAML text, stored as given."""
    source: str = "policy"
    """What to call the document in error messages (e.g. its file name)."""


class NewWaiver(BaseModel):
    reason: str
    checks: list[str] | None = None
    """The failed checks it covers; null: every check."""
    expires: str | None = None
    """An ISO time or a duration (``7d``); null: never."""


class NewPin(BaseModel):
    ref: str
    job: str | None = None


class AuditVerify(BaseModel):
    checkpoint: dict[str, Any] | None = None
    """A checkpoint (as ``POST /audit/checkpoints`` returned it) the chain must still extend."""


@router.get("/policies/{name}", response_model=PolicyPublic)
def policy_show(name: str, access: Annotated[Access, Depends(require("read"))],
                version: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None) -> JSONBody:
    """The dataset's current QA policy (or one version of it)."""
    access.principal.require_dataset(name)
    return wire(PolicyPublic, show_policy(access.ctx, name, version).to_dict())


@router.put("/policies/{name}", response_model=PolicyPublic)
def policy_set(name: str, body: PolicyDocument, access: Annotated[Access, Depends(require("policy"))]
               ) -> JSONBody:
    """Store the document as the dataset's next policy version (the token's name must be the dataset's
    owner or a maintainer its current policy lists); the same document again stores nothing."""
    access.principal.require_dataset(name)
    return wire(PolicyPublic, set_policy(access.ctx, name, body.document, body.source).to_dict())


@router.get("/gates/{ref}/results", response_model=GateResultsPublic)
def gate_results(ref: str, access: Annotated[Access, Depends(require("gate_check"))]) -> JSONBody:
    """Every stored gate result of the snapshot, under any policy version, newest first."""
    access.principal.require_ref(ref)
    return wire_list(GateResultsPublic, [r.to_dict() for r in stored_gate_results(access.ctx, ref)])


@router.post("/gates/{ref}/waivers", status_code=status.HTTP_201_CREATED, response_model=WaiverPublic)
def gate_waive(ref: str, body: NewWaiver, access: Annotated[Access, Depends(require("waive"))]) -> JSONBody:
    """Let the snapshot pass its gate despite failed checks (the token's name must be the dataset's owner
    or a maintainer)."""
    access.principal.require_ref(ref)
    return wire(WaiverPublic, waive(access.ctx, ref, body.reason, body.checks, body.expires).to_dict(),
                status.HTTP_201_CREATED)


@router.post("/pins", status_code=status.HTTP_201_CREATED, response_model=LockEntryPublic)
def pin(body: NewPin, access: Annotated[Access, Depends(require("pin"))], request: Request) -> JSONBody:
    """Pin the snapshot for training (refused with 409 unless its gate passes); the lockfile entry to
    write, which the client keeps (naming this server and its lineage namespace)."""
    access.principal.require_ref(body.ref)
    origin = str(request.base_url).rstrip("/")
    return wire(LockEntryPublic, pin_entry(access.ctx, body.ref, body.job, origin=origin).to_dict(),
                status.HTTP_201_CREATED)


def _whole_chain(access: Access) -> None:
    if access.principal.datasets:
        raise PermissionDenied(f"token {access.principal.name!r} is limited to some datasets and the audit chain "
                               "spans all of them")


@router.post("/audit/verify", response_model=AuditVerifyPublic)
def audit_verify(access: Annotated[Access, Depends(require("audit"))],
                 body: Annotated[AuditVerify | None, Body()] = None) -> JSONBody:
    """Recompute the audit chain (and check it extends ``checkpoint``). 200 even when it does not: the
    body's ``ok`` says."""
    _whole_chain(access)
    checkpoint = body.checkpoint if body is not None else None
    report = verify_audit(access.ctx, parse_checkpoint(checkpoint) if checkpoint is not None else None)
    return wire(AuditVerifyPublic, report.to_dict())


@router.post("/audit/checkpoints", response_model=AuditCheckpointPublic)
def audit_checkpoint(access: Annotated[Access, Depends(require("audit"))]) -> JSONBody:
    """The chain's current head (sequence, hash, time) for an auditor to keep outside the registry."""
    _whole_chain(access)
    return wire(AuditCheckpointPublic, write_checkpoint(access.ctx).to_dict())
