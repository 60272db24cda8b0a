"""Gate status and QA runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from registry_client.models import GateResultPublic, GateStatusPublic

from registry.api.deps import Access, require
from registry.api.wire import JSONBody, wire
from registry.quality.evaluate import qa_run
from registry.quality.gate import check_gate

__all__ = ["router"]

router = APIRouter(tags=["quality"])


@router.get("/gates/{ref}", response_model=GateStatusPublic)
def gate(ref: str, access: Annotated[Access, Depends(require("gate_check"))]) -> JSONBody:
    """Whether the snapshot passes its gate under the current policy (``passes``), and why."""
    access.principal.require_ref(ref)
    return wire(GateStatusPublic, check_gate(access.ctx.engine, ref).to_dict())


@router.post("/qa/{ref}", response_model=GateResultPublic)
def qa(ref: str, access: Annotated[Access, Depends(require("qa_run"))]) -> JSONBody:
    """Evaluate the dataset's current policy on the snapshot and store the gate result."""
    access.principal.require_ref(ref)
    return wire(GateResultPublic, qa_run(access.ctx, ref).to_dict())
