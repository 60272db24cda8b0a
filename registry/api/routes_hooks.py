"""``POST /api/v1/hooks/label-studio/{dataset}``: Label Studio's webhook queues a sync of the dataset and
answers 202 at once. Authenticated by the dataset's hook secret header, not a bearer token; the sync
runs with the server's ``LABEL_STUDIO_API_KEY`` (see docs/labeling-loop.md)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from registry_client.models import HookSyncPublic

from registry.api.deps import base_context
from registry.api.guard import HOOK_STATE
from registry.api.wire import JSONBody, wire
from registry.errors import TooLarge, Unauthenticated
from registry.sync.hooks import HookRunner, sync_from_row

__all__ = ["router"]

router = APIRouter(tags=["hooks"])
MAX_HOOK_BODY = 1 << 20
"""Largest webhook body read (Label Studio's payloads are small; the sync reads the API, not the body)."""


def hook_runner(request: Request) -> HookRunner:
    """The app's one runner (made on first use, with the process's Label Studio token)."""
    state = request.app.state
    runner: HookRunner | None = getattr(state, "label_studio_hooks", None)
    if runner is None:
        runner = HookRunner(sync_from_row(base_context(request), state.ctx.settings.labeling.api_key))
        state.label_studio_hooks = runner
    return runner


@router.post("/hooks/label-studio/{dataset}", status_code=202, response_model=HookSyncPublic)
async def label_studio_hook(dataset: str, request: Request) -> JSONBody:
    """Queue a sync of ``dataset`` (bursts coalesce; one sync at a time per dataset). 401 on a bad secret:
    the request guard checked it before reading the body, and left the dataset it accepted."""
    if getattr(request.state, HOOK_STATE, None) != dataset:  # only when the guard is not in front of this route
        raise Unauthenticated("the webhook secret was not checked")
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_HOOK_BODY:
            raise TooLarge(f"webhook body larger than {MAX_HOOK_BODY} bytes")
    state = hook_runner(request).request(dataset)
    return wire(HookSyncPublic, {"dataset": dataset, "sync": state}, 202)
