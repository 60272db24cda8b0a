"""Schema versions, annotation imports, sample history and blame."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, status
from registry_client.models import BlamePublic, HistoryEntriesPublic, ImportPublic, SchemaVersionsPublic
from starlette.concurrency import run_in_threadpool

from registry.api.deps import Access, require
from registry.api.uploads import spool_files, upload_folder
from registry.api.wire import JSONBody, wire, wire_list
from registry.provenance.blame import blame as blame_rows
from registry.provenance.sample_history import sample_history as sample_events
from registry.provenance.service import import_annotations
from registry.snapshots.history import schema_versions

__all__ = ["router"]

router = APIRouter(tags=["provenance"])

Reader = Annotated[Access, Depends(require("read"))]


@router.get("/datasets/{name}/schema", response_model=SchemaVersionsPublic)
def dataset_schema(name: str, access: Reader) -> JSONBody:
    """Every schema version of the dataset, oldest first, each classified against the one before."""
    access.principal.require_dataset(name)
    return wire_list(SchemaVersionsPublic, [v.to_dict() for v in schema_versions(access.ctx, name)])


@router.post("/datasets/{name}/imports", status_code=status.HTTP_201_CREATED, response_model=ImportPublic)
async def dataset_import(
        name: str, request: Request, access: Annotated[Access, Depends(require("import"))],
        format: Literal["label-studio", "coco", "yolo", "table"], key: str | None = None,
        guideline_version: str | None = None, resolve: Literal["gt-majority", "majority"] = "gt-majority",
        mapping: Annotated[str | None, Query(alias="map", description="table: field=column pairs")] = None,
        message: str = "") -> JSONBody:
    """Import a labeling tool's export (multipart part ``file``; ``config``: the Label Studio labeling
    config; ``users``: its ``/api/users/`` answer) as the dataset's next snapshot with its annotation
    records; creates the dataset if needed. Errors name the sent files, never where the server kept them."""
    access.principal.require_dataset(name)
    with upload_folder() as folder:
        parts = await spool_files(request, request.app.state.max_upload_bytes, folder, "file", ("config", "users"))
        result = await run_in_threadpool(
            lambda: import_annotations(access.ctx, format, name, parts["file"], key=key,
                                       guideline_version=guideline_version, config=parts.get("config"),
                                       resolve=resolve, mapping=mapping, message=message,
                                       users=parts.get("users")))
    return wire(ImportPublic, result.to_dict(), status.HTTP_201_CREATED)


@router.get("/datasets/{name}/history", response_model=HistoryEntriesPublic)
def sample_history(name: str, key: str, access: Reader) -> JSONBody:
    """Every labeling act and every snapshot that changed sample ``key``, oldest first."""
    access.principal.require_dataset(name)
    return wire_list(HistoryEntriesPublic, [e.to_dict() for e in sample_events(access.ctx, name, key)])


@router.get("/blame/{ref}", response_model=BlamePublic)
def blame(ref: str, access: Reader, column: str = "label",
          limit: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None) -> JSONBody:
    """Per row (in key order): the snapshot that last changed it and who labeled its current value."""
    access.principal.require_ref(ref)
    rows: list[dict[str, object]] = blame_rows(access.ctx, ref, column, limit).to_pylist()
    return wire_list(BlamePublic, rows)
