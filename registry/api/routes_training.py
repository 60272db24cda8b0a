"""Scan plans and the objects they name: how training jobs and distributed engines read a snapshot."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse
from registry_client.models import AdmissionPublic, ScanPlanPublic

from registry.api.deps import Access, permit, require
from registry.api.wire import JSONBody, wire
from registry.errors import InvalidInput, NotFound
from registry.snapshots.plan import MAX_SHARDS, build_plan, snapshot_objects
from registry.training.admission import admit_training

__all__ = ["router"]

router = APIRouter(tags=["training"])

Reader = Annotated[Access, Depends(require("read"))]
_SHA256 = r"^[0-9a-f]{64}$"


@router.get("/snapshots/{ref}/plan", response_model=ScanPlanPublic | AdmissionPublic)
def snapshot_plan(ref: str, access: Reader, request: Request,
                  shards: Annotated[int, Query(ge=1, le=MAX_SHARDS)] = 1,
                  columns: Annotated[list[str] | None, Query()] = None, training: bool = False,
                  job: str | None = None, run_id: str | None = None, parent: str | None = None,
                  allow_unverified: bool = False, content_hash: str | None = None,
                  namespace: str | None = None) -> JSONBody:
    """The snapshot's scan plan: read tasks (object, row group, hidden rows) in ``shards`` shards that
    together yield exactly its rows; fetch each object from ``objects/{sha256}`` and verify its hash.

    ``training=true`` admits a training job first: refused with 409 unless the gate passes now (or
    ``allow_unverified=true``, which needs the pin action), then audited once with the job's lineage
    run (``run_id``, under ``parent`` = ``NAMESPACE/NAME/RUN_ID`` when given). The answer is then
    ``{"plan": ..., "run_id": ..., "job": ..., "gate": ...}``. A read of a lockfile entry passes its
    ``content_hash`` (verified against the stored rows) and ``namespace`` (must be this registry's):
    409 ``verify_failed`` otherwise.
    """
    extras = (job, run_id, parent, content_hash, namespace)
    if not training and (any(v is not None for v in extras) or allow_unverified):
        raise InvalidInput("job, run_id, parent, content_hash, namespace and allow_unverified go with training=true")
    if allow_unverified:
        permit(request, access, "pin")
    access.principal.require_ref(ref)
    if not training:
        return wire(ScanPlanPublic, build_plan(access.ctx, ref, shards, columns).to_dict())
    admission = admit_training(access.ctx, ref, columns=columns, job=job, run_id=run_id,
                               allow_unverified=allow_unverified, parent=parent, from_env=False,
                               content_hash=content_hash, namespace=namespace)
    if shards > 1:
        admission = type(admission)(admission.plan.reshard(shards), admission.run_id, admission.job, admission.gate)
    return wire(AdmissionPublic, admission.to_dict())


@router.get("/snapshots/{ref}/objects/{sha256}", response_class=FileResponse,
            responses={200: {"content": {"application/vnd.apache.parquet": {}}}})
def snapshot_object(ref: str, sha256: Annotated[str, Path(pattern=_SHA256)], access: Reader) -> FileResponse:
    """The bytes of one object of the snapshot's plan (named by its SHA-256: verify before use).

    Only an object the snapshot reads is served, so a token sees no other dataset's bytes.
    """
    access.principal.require_ref(ref)
    if sha256 not in snapshot_objects(access.ctx, ref):
        raise NotFound(f"{ref} reads no object {sha256}")
    return FileResponse(access.ctx.store.local_path(sha256), media_type="application/vnd.apache.parquet",
                        headers={"ETag": f'"{sha256}"', "Cache-Control": "immutable"})
