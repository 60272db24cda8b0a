"""What the web console needs beyond the CLI's endpoints: the changed rows of a label diff, a page at a time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from registry_client.models import LabelDiffRowsPublic

from registry.api.deps import Access, require
from registry.api.wire import JSONBody, wire
from registry.provenance.label_diff import label_diff

__all__ = ["MAX_PAGE", "router"]

router = APIRouter(tags=["console"])

MAX_PAGE = 1000
"""The most changed rows one request returns."""


@router.get("/diff/labels/rows", response_model=LabelDiffRowsPublic)
def label_diff_rows(a: str, b: str, access: Annotated[Access, Depends(require("read"))], column: str = "label",
                    offset: Annotated[int, Query(ge=0)] = 0,
                    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50) -> JSONBody:
    """Relabeled rows ``offset`` to ``offset + limit`` of the label diff from ``a`` to ``b`` (in the order of
    ``GET /diff?labels=true``), with ``total``: how many rows were relabeled in all."""
    access.principal.require_ref(a)
    access.principal.require_ref(b)
    result = label_diff(access.ctx, a, b, column, rows=limit, offset=offset)
    return wire(LabelDiffRowsPublic, {"total": result.relabeled, "offset": offset, "rows": result.changes})
