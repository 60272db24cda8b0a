"""``create_app(home)``: the FastAPI application over one registry home, and its error mapping.

Every :class:`RegistryError` becomes ``http_status_for(exc)`` with ``{"error": {"code", "message"}}``;
anything unexpected becomes a generic 500 (logged on the server, never a stack trace to the client).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel
from registry_client.models import HealthPublic
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from registry.api import (
    routes_audit,
    routes_branches,
    routes_console,
    routes_datasets,
    routes_governance,
    routes_hooks,
    routes_lineage,
    routes_meta,
    routes_provenance,
    routes_quality,
    routes_training,
)
from registry.api.guard import RequestGuard
from registry.api.wire import JSONBody, wire
from registry.config import Settings, find_home
from registry.context import open_context
from registry.db import check_up_to_date
from registry.errors import RegistryError, Unauthenticated, http_status_for
from registry.lineage.worker import start_worker, stop_worker
from registry.snapshots import compact_worker
from registry.ui import CONSOLE_PATH, mount_console

__all__ = ["API_PREFIX", "JSONBody", "app_from_env", "create_app"]

API_PREFIX = "/api/v1"
_log = logging.getLogger("registry.api")


class ErrorDetail(BaseModel):
    code: str
    """The error's class, e.g. ``not_found``, ``conflict``, ``invalid_input`` (docs/api.md's error table)."""
    message: str


class ErrorResponse(BaseModel):
    """The body of every 4xx answer."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorResponse, "description": "The request was refused; `error.code` says why"}}
"""Declared on every API operation, in place of FastAPI's ``{"detail": ...}`` 422 body, which we never send."""


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONBody:
    return JSONBody({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _without_server_paths(request: Request, message: str) -> str:
    """``message`` with the server's folders (the registry home, the temporary folder) left out: a client
    learns nothing about the server's file system from an error."""
    home = str(request.app.state.ctx.paths.home)
    return message.replace(home, "<registry home>").replace(tempfile.gettempdir(), "<tmp>")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RegistryError)
    async def registry_error(request: Request, exc: RegistryError) -> JSONBody:
        """``{"error": {"code", "message"}}``, plus ``"hint": {"kind", "name", "value"}`` when the error names
        what to use instead: the API's words, a parameter or body field such as ``allow_breaking``."""
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthenticated) else None
        status, message = http_status_for(exc), _without_server_paths(request, exc.message)
        if exc.hint is None:
            return _error(status, exc.code, message, headers)
        return JSONBody({"error": {"code": exc.code, "message": message, "hint": exc.hint.to_dict()}},
                        status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONBody:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return _error(422, "invalid_input", problems or "invalid request")

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONBody:
        return _error(exc.status_code, "http_error", str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, _exc: ClientDisconnect) -> JSONBody:
        """The client hung up mid-request (an abandoned upload): nothing was done, nobody reads the answer."""
        _log.info("client disconnected during %s %s", request.method, request.url.path)
        return _error(400, "client_disconnected", "the client disconnected before the request body was complete")

    @app.exception_handler(DataError)
    async def value_refused(_request: Request, exc: DataError) -> JSONBody:
        """The catalog refused a value as such (PostgreSQL: a NUL byte in text, a number out of range)."""
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else "invalid value"
        return _error(422, "invalid_input", f"a value in the request is not valid for the catalog: {reason}")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONBody:
        _log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal", "internal error; the server log has the details")


class NotReady(BaseModel):
    """``GET /readyz``'s 503 body."""

    status: str
    error: str


def _health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", response_model=HealthPublic)
    def healthz() -> JSONBody:
        """The process is up (no authentication)."""
        return wire(HealthPublic, {"status": "ok"})

    @router.get("/readyz", response_model=HealthPublic,
                responses={503: {"model": NotReady, "description": "The catalog or the object store is not reachable"}})
    def readyz(request: Request) -> JSONBody:
        """The catalog (at the expected schema) and the object store are reachable (no authentication)."""
        ctx = request.app.state.ctx
        try:
            check_up_to_date(ctx.engine)
            ctx.store.exists("0" * 64)
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            message = exc.message if isinstance(exc, RegistryError) else type(exc).__name__
            return JSONBody({"status": "unavailable", "error": message}, status_code=503)
        return wire(HealthPublic, {"status": "ready"})

    return router


def _install_conventional_routes(app: FastAPI) -> None:
    """The OpenAPI document also at the conventional ``/openapi.json``; ``/`` opens the console."""

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(CONSOLE_PATH + "/", status_code=307)


def create_app(home: Path, settings: Settings | None = None, max_upload_bytes: int | None = None) -> FastAPI:
    """The API over the registry at ``home`` with ``settings`` (default: resolved from the environment
    now, once; ``registry serve`` passes its own). It never writes to the environment. The audit log
    names the token of each request as its actor, so ``REGISTRY_ACTOR`` is ignored here."""
    settings = (settings if settings is not None else Settings()).model_copy(update={"actor": None})
    ctx = open_context(home, settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        start_worker(ctx)  # lineage delivery by a thread of this process, not a process per commit
        compact_worker.start_worker(ctx)  # automatic compaction, never inside a request
        yield
        compact_worker.stop_worker(ctx)
        stop_worker(ctx)
        ctx.close()

    app = FastAPI(title="Dataset registry", version="1", lifespan=lifespan, default_response_class=JSONBody,
                  docs_url="/docs", openapi_url=f"{API_PREFIX}/openapi.json")
    app.state.ctx = ctx
    app.state.max_upload_bytes = max_upload_bytes or settings.api.max_upload_bytes
    _install_error_handlers(app)
    app.add_middleware(RequestGuard, ctx=ctx, body_limit=settings.api.max_body_bytes,
                       upload_limit=app.state.max_upload_bytes)
    app.include_router(_health_router())
    _install_conventional_routes(app)
    for module in (routes_datasets, routes_quality, routes_audit, routes_meta, routes_provenance, routes_governance,
                   routes_lineage, routes_hooks, routes_branches, routes_training, routes_console):
        app.include_router(module.router, prefix=API_PREFIX, responses=ERROR_RESPONSES)
    mount_console(app)
    return app


def app_from_env() -> FastAPI:
    """The app for ``REGISTRY_HOME``, settings from the environment (an entry point for running the API
    under another server: ``uvicorn --factory registry.api.app:app_from_env``)."""
    settings = Settings()
    return create_app(find_home(settings=settings), settings)
