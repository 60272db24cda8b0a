"""Who the token is, cheap ref resolution, and store verification."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from registry_client.models import ResolvedRefPublic, VerifyReportPublic, WhoamiPublic

from registry.api.deps import Access, authenticated, require
from registry.api.wire import JSONBody, wire
from registry.auth.roles import ACTIONS
from registry.errors import InvalidInput
from registry.snapshots.history import resolve
from registry.snapshots.verify import verify

__all__ = ["router"]

router = APIRouter(tags=["meta"])


@router.get("/whoami", response_model=WhoamiPublic)
def whoami(access: Annotated[Access, Depends(authenticated)]) -> JSONBody:
    """The token's name, role, dataset scope (empty: every dataset) and the actions it may perform."""
    principal = access.principal
    return wire(WhoamiPublic, {"name": principal.name, "role": principal.role, "datasets": list(principal.datasets),
                               "actions": [action for action in ACTIONS if principal.may(action)]})


@router.get("/refs/{ref}", response_model=ResolvedRefPublic)
def ref_resolve(ref: str, access: Annotated[Access, Depends(require("read"))]) -> JSONBody:
    """The full snapshot id ``NAME[@REF]`` names now, from the catalog alone (cheap: no data is read)."""
    access.principal.require_ref(ref)
    return wire(ResolvedRefPublic, resolve(access.ctx, ref).to_dict())


@router.post("/verify", response_model=VerifyReportPublic)
def verify_store(access: Annotated[Access, Depends(require("audit"))], dataset: str | None = None
                 ) -> JSONBody:
    """Re-hash the objects and recompute the snapshot ids of ``dataset`` (or of every dataset). 200 even
    when problems are found: the body's ``ok`` says. A dataset-scoped token must name its dataset."""
    if access.principal.datasets:
        if dataset is None:
            raise InvalidInput("a dataset-scoped token must name a dataset (?dataset=NAME)")
        access.principal.require_dataset(dataset)
    return wire(VerifyReportPublic, verify(access.ctx, dataset).to_dict())
