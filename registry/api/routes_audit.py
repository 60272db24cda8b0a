"""The audit log, read-only SQL and OpenLineage intake."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel

from registry.api.deps import Access, require
from registry.errors import InvalidInput, PermissionDenied

__all__ = ["router"]

router = APIRouter(tags=["audit"])


class Query(BaseModel):
    sql: str
    dataset: str | None = None
    """``NAME[@REF]`` whose rows the ``data`` view holds."""


@router.get("/audit/events")
def audit_events(access: Annotated[Access, Depends(require("audit"))], dataset: str | None = None,
                 actor: str | None = None, action: str | None = None, since: str | None = None,
                 until: str | None = None, limit: int | None = None) -> list[dict[str, object]]:
    """Audit events matching every filter, oldest first. A dataset-scoped token must name its dataset."""
    from registry.audit.listing import list_events

    if access.principal.datasets:
        if dataset is None:
            raise InvalidInput("a dataset-scoped token must name a dataset (?dataset=NAME)")
        access.principal.require_dataset(dataset)
    events = list_events(access.ctx, dataset=dataset, actor=actor, action=action, since=since, until=until,
                         limit=limit)
    return [e.to_dict() for e in events]


@router.post("/query")
def query(body: Query, access: Annotated[Access, Depends(require("query"))]) -> dict[str, object]:
    """Read-only DuckDB SQL over the registry's views; the rows as JSON objects."""
    from registry.query import run_query

    if access.principal.datasets:
        raise PermissionDenied(f"token {access.principal.name!r} is limited to some datasets and the query "
                               "views span all of them")
    table = run_query(access.ctx, body.sql, body.dataset)
    return {"columns": table.column_names, "rows": table.to_pylist()}


@router.post("/lineage")
def lineage(event: Annotated[dict[str, Any], Body()],
            access: Annotated[Access, Depends(require("lineage_ingest"))]) -> dict[str, object]:
    """Accept an OpenLineage RunEvent: the registry snapshots it read or produced become graph edges."""
    from registry.lineage.intake import ingest_run_event

    return ingest_run_event(access.ctx, event).to_dict()
