"""The audit log, read-only SQL and OpenLineage intake."""

from __future__ import annotations

import asyncio
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel
from registry_client.models import AuditEventsPublic, LineageIngestPublic, QueryResultPublic
from starlette.concurrency import run_in_threadpool

from registry.api.deps import Access, require
from registry.api.wire import JSONBody, wire, wire_list
from registry.audit.listing import list_events
from registry.errors import InvalidInput, PermissionDenied
from registry.lineage.emit import registry_namespace
from registry.lineage.intake import ingest_run_event
from registry.query import QueryLimits, run_query

__all__ = ["router"]

router = APIRouter(tags=["audit"])


class Query(BaseModel):
    sql: str
    dataset: str | None = None
    """``NAME[@REF]`` whose rows the ``data`` view holds."""


@router.get("/audit/events", response_model=AuditEventsPublic)
def audit_events(access: Annotated[Access, Depends(require("audit"))], dataset: str | None = None,
                 actor: str | None = None, action: str | None = None, since: str | None = None,
                 until: str | None = None, limit: int | None = None) -> JSONBody:
    """Audit events matching every filter, oldest first. A dataset-scoped token must name its dataset."""
    if access.principal.datasets:
        if dataset is None:
            raise InvalidInput("a dataset-scoped token must name a dataset (?dataset=NAME)")
        access.principal.require_dataset(dataset)
    events = list_events(access.ctx, dataset=dataset, actor=actor, action=action, since=since, until=until,
                         limit=limit)
    return wire_list(AuditEventsPublic, [e.to_dict() for e in events])


@router.post("/query", response_model=QueryResultPublic)
async def query(body: Query, request: Request, access: Annotated[Access, Depends(require("query"))]
                ) -> JSONBody:
    """Read-only DuckDB SQL over the registry's views; the rows as JSON objects. The query is held to
    the configured time and memory limits, stopped if the client disconnects, and refused (422) if it
    returns more than ``api_max_query_rows`` rows."""
    if access.principal.datasets:
        raise PermissionDenied(f"token {access.principal.name!r} is limited to some datasets and the query "
                               "views span all of them")
    settings = access.ctx.settings
    limits = QueryLimits.from_settings(settings, max_rows=settings.api.max_query_rows)
    cancel = threading.Event()

    def rows() -> dict[str, object]:
        table = run_query(access.ctx, body.sql, body.dataset, limits=limits, cancel=cancel)
        return {"columns": table.column_names, "rows": table.to_pylist()}

    running = asyncio.ensure_future(run_in_threadpool(rows))
    try:
        while not running.done():
            await asyncio.wait({running}, timeout=_DISCONNECT_POLL)
            if not running.done() and await request.is_disconnected():
                cancel.set()  # the worker thread stops at DuckDB's next interrupt check
    except asyncio.CancelledError:
        cancel.set()  # the server is shutting down past its grace period
        raise
    return wire(QueryResultPublic, running.result())


_DISCONNECT_POLL = 0.25
"""Seconds between checks whether the client of a running query is still connected."""


@router.post("/lineage", response_model=LineageIngestPublic)
def lineage(event: Annotated[dict[str, Any], Body()],
            access: Annotated[Access, Depends(require("lineage_ingest"))]) -> JSONBody:
    """Accept an OpenLineage RunEvent: the registry snapshots it read or produced become graph edges."""
    if access.principal.datasets:
        for name in _registry_datasets(access, event):
            access.principal.require_dataset(name)  # the same 404 as a dataset that does not exist
    return wire(LineageIngestPublic, ingest_run_event(access.ctx, event).to_dict())


def _registry_datasets(access: Access, event: object) -> set[str]:
    """Every dataset of this registry's namespace that an event names as an input or output."""
    if not isinstance(event, dict):
        return set()
    ours = registry_namespace(access.ctx)
    named = set()
    for key in ("inputs", "outputs"):
        datasets = event.get(key)
        for dataset in datasets if isinstance(datasets, list) else []:
            if isinstance(dataset, dict) and dataset.get("namespace") == ours:
                named.add(str(dataset.get("name")))
    return named
