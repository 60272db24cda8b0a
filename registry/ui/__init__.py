"""The web console: static pages under ``/ui`` that call the ``/api/v1`` endpoints with the user's token.

No server-side rendering and no build step: ``static/`` holds plain HTML, CSS and ES modules. The
console's one endpoint of its own (``registry.api.routes_console``: label-diff rows, paged) is an
API route the app includes; this package knows nothing of the API (the API mounts it).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

__all__ = ["CONSOLE_PATH", "STATIC_DIR", "mount_console"]

CONSOLE_PATH = "/ui"
STATIC_DIR = Path(__file__).parent / "static"

_HEADERS = {
    # Scripts, styles and data come from this origin only; the pages never embed foreign content.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class _ConsoleFiles(StaticFiles):
    """Static files with the console's security headers (revalidated, so an upgrade shows at once)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(_HEADERS)
        return response


def mount_console(app: FastAPI) -> None:
    """Serve the console at ``/ui/`` (``/ui`` redirects there)."""
    @app.get(CONSOLE_PATH, include_in_schema=False)
    def console_redirect() -> RedirectResponse:
        return RedirectResponse(CONSOLE_PATH + "/", status_code=308)

    app.mount(CONSOLE_PATH, _ConsoleFiles(directory=STATIC_DIR, html=True), name="console")
