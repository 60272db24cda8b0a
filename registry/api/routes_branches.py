"""Branches, merges (``If-Match`` on the target) and the conflicts of a merge."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from registry_client.models import BranchesPublic, BranchPublic, MergeConflictsPublic, MergePublic
from starlette.concurrency import run_in_threadpool

from registry.api.deps import Access, require
from registry.api.wire import JSONBody, wire, wire_list
from registry.branching.branches import create_branch, delete_branch, list_branches, protect_branch
from registry.branching.merge import merge
from registry.errors import UnresolvedConflicts

__all__ = ["router"]

router = APIRouter(tags=["branches"])

Reader = Annotated[Access, Depends(require("read"))]
MAX_RESOLUTIONS = 100_000


class NewBranch(BaseModel):
    branch: str = Field(max_length=200)
    from_ref: str | None = Field(default=None, alias="from", max_length=300)


class Resolution(BaseModel):
    key: dict[str, Any]
    column: str = Field(max_length=200)
    value: Any


class MergeRequest(BaseModel):
    source: str = Field(max_length=300, description="NAME@BRANCH, a tag or a snapshot id of the dataset")
    into: str = Field(default="main", max_length=200)
    strategy: Literal["fail", "ours", "theirs"] = "fail"
    prefer: Literal["ground-truth", "reviewer", "majority"] | None = None
    resolutions: list[Resolution] = Field(default_factory=list, max_length=MAX_RESOLUTIONS)
    dry_run: bool = False
    message: str = Field(default="", max_length=10_000)
    retry: int = Field(default=0, ge=0, le=10)
    expect_target: str | None = Field(default=None, max_length=64, description="as If-Match (the header wins)")


@router.get("/datasets/{name}/branches", response_model=BranchesPublic)
def branches(name: str, access: Reader) -> JSONBody:
    """The dataset's branches, ``main`` first."""
    access.principal.require_dataset(name)
    return wire_list(BranchesPublic, [b.to_dict() for b in list_branches(access.ctx, name)])


@router.post("/datasets/{name}/branches", status_code=status.HTTP_201_CREATED, response_model=BranchPublic)
def branch_create(name: str, body: NewBranch, access: Annotated[Access, Depends(require("branch"))]
                  ) -> JSONBody:
    """Create a branch at ``from`` (default ``main``); no data is copied."""
    access.principal.require_dataset(name)
    return wire(BranchPublic, create_branch(access.ctx, f"{name}@{body.branch}", body.from_ref).to_dict(),
                status.HTTP_201_CREATED)


@router.delete("/datasets/{name}/branches/{branch}", response_model=BranchPublic)
def branch_delete(name: str, branch: str, access: Annotated[Access, Depends(require("branch"))],
                  force: bool = False) -> JSONBody:
    """Delete a branch (never ``main`` or a protected one; unmerged work needs ``force=true``)."""
    access.principal.require_dataset(name)
    return wire(BranchPublic, delete_branch(access.ctx, f"{name}@{branch}", force).to_dict())


@router.put("/datasets/{name}/branches/{branch}/protection", response_model=BranchPublic)
def branch_protect(name: str, branch: str, access: Annotated[Access, Depends(require("protect"))]
                   ) -> JSONBody:
    """Protect a branch: direct commits are refused, changes arrive only by merge."""
    access.principal.require_dataset(name)
    return wire(BranchPublic, protect_branch(access.ctx, f"{name}@{branch}", True).to_dict())


@router.delete("/datasets/{name}/branches/{branch}/protection", response_model=BranchPublic)
def branch_unprotect(name: str, branch: str, access: Annotated[Access, Depends(require("protect"))]
                     ) -> JSONBody:
    """Unprotect a branch: direct commits are accepted again."""
    access.principal.require_dataset(name)
    return wire(BranchPublic, protect_branch(access.ctx, f"{name}@{branch}", False).to_dict())


def _resolutions_file(folder: Path, resolutions: list[Resolution]) -> Path | None:
    if not resolutions:
        return None
    path = folder / "resolutions.jsonl"
    with path.open("w") as out:
        for item in resolutions:
            out.write(json.dumps({**item.key, "column": item.column, "value": item.value}) + "\n")
    return path


@router.post("/datasets/{name}/merges", response_model=MergePublic)
async def merge_into(name: str, body: MergeRequest, access: Annotated[Access, Depends(require("merge"))],
                     if_match: Annotated[str | None, Header()] = None) -> JSONResponse:
    """Merge ``source`` into branch ``into``. ``If-Match`` names the snapshot the target must still be at.

    409 with every unresolved conflict (``error.conflicts``), 409 when the target moved or the gate
    of the target's policy fails."""
    access.principal.require_dataset(name)
    expect = if_match.strip().strip('"') if if_match else body.expect_target
    source = body.source if body.source.startswith(f"{name}@") else f"{name}@{body.source}"
    try:
        with tempfile.TemporaryDirectory(prefix="registry-merge-") as folder:
            path = _resolutions_file(Path(folder), body.resolutions)
            result = await run_in_threadpool(lambda: merge(
                access.ctx, source, body.into, strategy=body.strategy, prefer=body.prefer, resolutions=path,
                dry_run=body.dry_run, message=body.message, expect_target=expect, retry=body.retry))
    except UnresolvedConflicts as exc:
        return JSONResponse(exc.to_dict(), status_code=status.HTTP_409_CONFLICT)
    return wire(MergePublic, result.to_dict())


@router.get("/datasets/{name}/conflicts", response_model=MergeConflictsPublic)
def conflicts(name: str, source: str, access: Reader, into: str = "main") -> JSONBody:
    """Every conflict merging ``source`` into ``into`` would meet now (a dry run; nothing changes)."""
    access.principal.require_dataset(name)
    ref = source if source.startswith(f"{name}@") else f"{name}@{source}"
    result = merge(access.ctx, ref, into, dry_run=True)
    return wire(MergeConflictsPublic, {"dataset": name, "source": result.source_snapshot,
                                       "target": result.target_before, "base": result.base,
                                       "conflicts": result.conflicts})
