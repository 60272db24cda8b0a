"""Who the token is, cheap ref resolution, and store verification."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from registry.api.deps import Access, authenticated, require
from registry.auth.roles import ACTIONS
from registry.errors import InvalidInput
from registry.snapshots.history import resolve
from registry.snapshots.verify import verify

__all__ = ["router"]

router = APIRouter(tags=["meta"])


@router.get("/whoami")
def whoami(access: Annotated[Access, Depends(authenticated)]) -> dict[str, object]:
    """The token's name, role, dataset scope (empty: every dataset) and the actions it may perform."""
    principal = access.principal
    return {"name": principal.name, "role": principal.role, "datasets": list(principal.datasets),
            "actions": [action for action in ACTIONS if principal.may(action)]}


@router.get("/refs/{ref}")
def ref_resolve(ref: str, access: Annotated[Access, Depends(require("read"))]) -> dict[str, object]:
    """The full snapshot id ``NAME[@REF]`` names now, from the catalog alone (cheap: no data is read)."""
    access.principal.require_ref(ref)
    return resolve(access.ctx, ref).to_dict()


@router.post("/verify")
def verify_store(access: Annotated[Access, Depends(require("audit"))], dataset: str | None = None
                 ) -> dict[str, object]:
    """Re-hash the objects and recompute the snapshot ids of ``dataset`` (or of every dataset). 200 even
    when problems are found: the body's ``ok`` says. A dataset-scoped token must name its dataset."""
    if access.principal.datasets:
        if dataset is None:
            raise InvalidInput("a dataset-scoped token must name a dataset (?dataset=NAME)")
        access.principal.require_dataset(dataset)
    return verify(access.ctx, dataset).to_dict()
