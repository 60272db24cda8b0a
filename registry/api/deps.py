"""Per-request authentication and authorisation: the bearer token, its role, and a request Context."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from registry.api.guard import PRINCIPAL_STATE
from registry.auth.denied import record_denied
from registry.auth.roles import READ_ACTIONS, Principal
from registry.auth.tokens import authenticate
from registry.context import ClientInfo, Context

__all__ = ["Access", "authenticated", "base_context", "permit", "require"]


@dataclass(frozen=True)
class Access:
    """An authorised request: the token it authenticated with and the Context to call services with."""

    principal: Principal
    ctx: Context


def base_context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def _bearer(request: Request) -> str | None:
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else None


def request_context(request: Request, principal: str | None) -> Context:
    """The app's Context, acting for ``principal`` as an API client from the request's peer address."""
    base = base_context(request)
    peer = request.client.host if request.client else None
    ctx = dataclasses.replace(base, client=ClientInfo(kind="api", remote_addr=peer), principal=principal)
    ctx.cache = base.cache  # one index cache per process, not per request
    return ctx


async def authenticated(request: Request) -> Access:
    """A dependency: any valid token (401 without one), whatever its role."""
    checked = getattr(request.state, PRINCIPAL_STATE, None)  # the guard checked it before reading the body
    principal: Principal = checked if isinstance(checked, Principal) else await run_in_threadpool(
        authenticate, base_context(request), _bearer(request))
    return Access(principal, request_context(request, principal.name))


def permit(request: Request, access: Access, action: str) -> None:
    """Refuse unless the token's role may ``action``; a refused non-read action is audited first.

    Raises:
        PermissionDenied: the role may not (403).
    """
    if not access.principal.may(action):
        if action not in READ_ACTIONS:
            record_denied(access.ctx, action, request.method, request.url.path)
        access.principal.require(action)


def require(action: str) -> Callable[[Request], Awaitable[Access]]:
    """A dependency: 401 without a valid token, 403 (audited for writes) when its role may not ``action``."""

    async def dependency(request: Request) -> Access:
        access = await authenticated(request)
        if not access.principal.may(action):
            await run_in_threadpool(permit, request, access, action)
        return access

    return dependency
