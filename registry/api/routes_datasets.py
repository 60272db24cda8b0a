"""Datasets, commits, snapshots, tags, diffs and streamed reads."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from registry_client.models import (
    CommitPublic,
    DatasetPublic,
    DatasetsPublic,
    DiffPublic,
    LabelDiffPublic,
    SnapshotPublic,
    SnapshotsPublic,
)
from starlette.concurrency import run_in_threadpool

from registry.api.deps import Access, permit, require
from registry.api.streaming import MEDIA_TYPES, encode
from registry.api.uploads import spool_upload, upload_folder
from registry.api.wire import JSONBody, wire, wire_list
from registry.datasets import create_dataset, list_datasets
from registry.errors import InvalidInput
from registry.provenance.label_diff import label_diff
from registry.snapshots import history
from registry.snapshots.commit import Mode, commit
from registry.snapshots.diff import diff
from registry.snapshots.read import stream
from registry.training.pins import training_stream

__all__ = ["router"]

router = APIRouter(tags=["datasets"])

Reader = Annotated[Access, Depends(require("read"))]


class NewDataset(BaseModel):
    name: str
    key: list[str] = Field(min_length=1, description="Key column(s)")
    description: str = ""
    owner: str | None = None


class NewTag(BaseModel):
    tag: str


@router.get("/datasets", response_model=DatasetsPublic)
def datasets(access: Reader) -> JSONBody:
    """Every dataset the token sees, with its head snapshot."""
    return wire_list(DatasetsPublic, [d.to_dict() for d in list_datasets(access.ctx) if access.principal.sees(d.name)])


@router.post("/datasets", status_code=status.HTTP_201_CREATED, response_model=DatasetPublic)
def dataset_create(body: NewDataset, access: Annotated[Access, Depends(require("commit"))]) -> JSONBody:
    """Create an empty keyed dataset."""
    access.principal.require_dataset(body.name)
    return wire(DatasetPublic, create_dataset(access.ctx, body.name, body.key, body.description, body.owner).to_dict(),
                status.HTTP_201_CREATED)


@router.get("/datasets/{name}/log", response_model=SnapshotsPublic)
def dataset_log(name: str, access: Reader, limit: Annotated[int | None, Query(ge=0)] = None) -> JSONBody:
    """The snapshots of ``NAME[@REF]``, newest first."""
    access.principal.require_ref(name)
    return wire_list(SnapshotsPublic, [s.to_dict() for s in history.log(access.ctx, name, limit)])


@router.post("/datasets/{name}/commits", status_code=status.HTTP_201_CREATED, response_model=CommitPublic)
async def dataset_commit(name: str, request: Request, access: Annotated[Access, Depends(require("commit"))],
                         message: str = "", mode: Mode = "replace", expect_parent: str | None = None,
                         allow_breaking: bool = False, branch: str | None = None,
                         if_match: Annotated[str | None, Header()] = None) -> JSONBody:
    """Commit rows to ``main`` (or ``branch``): a multipart ``file`` part (Parquet) or an Arrow IPC stream body.

    ``If-Match`` (or ``expect_parent``) names the snapshot the branch must still point at (409 otherwise);
    a protected branch refuses direct commits (403).
    """
    access.principal.require_dataset(name)
    parent = expect_parent or (if_match.strip().strip('"') if if_match else None)
    with upload_folder() as folder:
        source = await spool_upload(request, request.app.state.max_upload_bytes, folder)
        result = await run_in_threadpool(lambda: commit(access.ctx, name, source, message=message, mode=mode,
                                                        expect_parent=parent, allow_breaking=allow_breaking,
                                                        branch=branch))
    return wire(CommitPublic, result.to_dict(), status.HTTP_201_CREATED)


@router.get("/snapshots/{ref}", response_model=SnapshotPublic)
def snapshot_show(ref: str, access: Reader) -> JSONBody:
    """One snapshot (``NAME[@REF]``) with its tags, branches and schema."""
    access.principal.require_ref(ref)
    return wire(SnapshotPublic, history.show(access.ctx, ref).to_dict())


@router.get("/snapshots/{ref}/data", response_class=StreamingResponse,
            responses={200: {"content": {media: {} for media in MEDIA_TYPES.values()}}})
def snapshot_data(ref: str, access: Reader, request: Request, format: Literal["arrow", "parquet"] = "arrow",
                  training: bool = False, job: str | None = None, allow_unverified: bool = False) -> StreamingResponse:
    """The snapshot's rows, streamed batch by batch as an Arrow IPC stream or a Parquet file.

    ``training=true`` is the training read: refused with 409 unless the gate passes now (or
    ``allow_unverified=true``, which needs the read_unverified action), audited like a local ``Registry.load``
    under ``job``.
    """
    if not training and (job is not None or allow_unverified):
        raise InvalidInput("job and allow_unverified go with training=true")
    if allow_unverified:
        permit(request, access, "read_unverified")
    access.principal.require_ref(ref)
    if training:
        schema, batches = training_stream(access.ctx, ref, allow_unverified=allow_unverified, job=job)
    else:
        schema, batches = stream(access.ctx, ref)
    return StreamingResponse(encode(schema, batches, format), media_type=MEDIA_TYPES[format])


@router.post("/refs/{ref}/tags", status_code=status.HTTP_201_CREATED, response_model=SnapshotPublic)
def ref_tag(ref: str, body: NewTag, access: Annotated[Access, Depends(require("tag"))]) -> JSONBody:
    """Tag the snapshot ``ref`` names (tags never move)."""
    access.principal.require_ref(ref)
    return wire(SnapshotPublic, history.tag(access.ctx, ref, body.tag).to_dict(), status.HTTP_201_CREATED)


@router.get("/diff", response_model=DiffPublic | LabelDiffPublic)
def snapshot_diff(a: str, b: str, access: Reader, rows: Annotated[int, Query(ge=0)] = 10, labels: bool = False,
                  column: str = "label") -> JSONBody:
    """What changed from ``a`` to ``b``; ``labels=true`` gives the label change matrix instead."""
    access.principal.require_ref(a)
    access.principal.require_ref(b)
    if labels:
        return wire(LabelDiffPublic, label_diff(access.ctx, a, b, column, rows).to_dict())
    return wire(DiffPublic, diff(access.ctx, a, b, rows).to_dict())
