"""The request guard: what every HTTP request passes before any route (or FastAPI) reads its body.

An ASGI middleware, so nothing is parsed before it decides:

1. a query string naming a parameter twice is refused (422): ``?training=true&training=false`` must
   not be read as whichever value a framework happens to keep (list parameters, ``columns``, excepted);
2. a request with a body to ``/api/`` must carry a valid token before a byte of the body is read
   (401), so an anonymous client cannot make the server parse anything; a labeling tool's webhook
   (``/api/v1/hooks/label-studio/{dataset}``) carries the dataset's hook secret instead, checked the same
   way before its body is read;
3. every body is bounded: uploads (commits, imports) by ``api_max_upload_bytes``, counted as they
   stream to disk by :mod:`registry.api.uploads`; every other body by ``api_max_body_bytes``, read
   here into memory up to that limit (413 past it) and handed on.

The token found in step 2 is kept in the request's state, so the route's dependency does not look it
up a second time; so is the dataset whose hook secret step 2 accepted (:data:`HOOK_STATE`), which the
webhook route trusts instead of checking the secret again.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.auth.tokens import authenticate
from registry.context import Context
from registry.errors import InvalidInput, RegistryError, TooLarge, Unauthenticated, http_status_for
from registry.sync.hooks import SECRET_HEADER, check_secret

__all__ = ["HOOK_STATE", "PRINCIPAL_STATE", "RequestGuard", "is_upload_path"]

PRINCIPAL_STATE = "registry_principal"
"""Key in ``request.state`` under which the guard leaves the principal it authenticated."""
HOOK_STATE = "registry_hook_dataset"
"""Key in ``request.state`` under which the guard leaves the dataset whose webhook secret it accepted."""

_UPLOAD = re.compile(r"/api/v1/datasets/[^/]+(/[^/]+)?/(commits|imports)")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_HOOK = re.compile(r"/api/v1/hooks/label-studio/([^/]+)")


def is_upload_path(path: str) -> bool:
    """Whether ``path`` takes a streamed file upload (bounded by the upload limit, not the body limit)."""
    return _UPLOAD.fullmatch(path) is not None


class RequestGuard:
    """ASGI middleware enforcing the order: unique parameters, then the token, then a bounded body."""

    def __init__(self, app: ASGIApp, ctx: Context, body_limit: int, upload_limit: int) -> None:
        self.app = app
        self.ctx = ctx
        self.body_limit = body_limit
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            _unique_parameters(scope)
            if _has_body(scope):
                receive = await self._admit_body(scope, receive)
        except RegistryError as exc:
            await _refuse(send, exc)
            return
        await self.app(scope, receive, send)

    async def _admit_body(self, scope: Scope, receive: Receive) -> Receive:
        path: str = scope["path"]
        hook = _HOOK.fullmatch(path)
        if hook is not None:  # authenticated by the dataset's hook secret, not by a token
            secret = _header(scope, SECRET_HEADER.lower().encode())
            await run_in_threadpool(check_secret, self.ctx, hook.group(1), secret)
            scope.setdefault("state", {})[HOOK_STATE] = hook.group(1)
        elif path.startswith("/api/"):
            principal = await run_in_threadpool(authenticate, self.ctx, _bearer(scope))
            scope.setdefault("state", {})[PRINCIPAL_STATE] = principal
        limit = self.upload_limit if is_upload_path(path) else self.body_limit
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        if is_upload_path(path):
            return receive  # streamed to disk by registry.api.uploads, which counts it against the same limit
        return await _buffered(receive, limit)


def _too_large(limit: int) -> TooLarge:
    return TooLarge(f"the request body is larger than the limit of {limit:,} bytes")


async def _buffered(receive: Receive, limit: int) -> Receive:
    """Read the whole body (at most ``limit`` bytes) now; a receive that replays it, then waits for a disconnect."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    replay: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

    async def replayed() -> Message:
        if replay:
            return replay.pop()
        return await receive()

    return replayed


_REPEATABLE = frozenset({"columns"})
"""Query parameters declared as lists (``?columns=a&columns=b`` on the scan plan and training reads): the
only ones that may repeat."""


def _unique_parameters(scope: Scope) -> None:
    raw = scope.get("query_string", b"").decode("latin-1")
    seen: set[str] = set()
    for name, _value in parse_qsl(raw, keep_blank_values=True):
        if name in seen and name not in _REPEATABLE:
            raise InvalidInput(f"query parameter {name!r} is given more than once; give it once")
        seen.add(name)


def _has_body(scope: Scope) -> bool:
    if scope["method"] not in _BODY_METHODS:
        return _header(scope, b"transfer-encoding") is not None or (_header(scope, b"content-length") or "0") != "0"
    return True


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1")).strip()
    return None


def _bearer(scope: Scope) -> str | None:
    scheme, _, secret = (_header(scope, b"authorization") or "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else None


async def _refuse(send: Send, error: RegistryError) -> None:
    body = json.dumps(error.to_dict()).encode()
    headers: list[Any] = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if isinstance(error, Unauthenticated):
        headers.append((b"www-authenticate", b"Bearer"))
    if isinstance(error, TooLarge):
        headers.append((b"connection", b"close"))  # the unread rest of the body is not worth draining
    await send({"type": "http.response.start", "status": http_status_for(error), "headers": headers})
    await send({"type": "http.response.body", "body": body})
