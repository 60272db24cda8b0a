"""A small client of Label Studio's REST API: the calls the sync and requeue make, each bounded in
size and time, every failure an :class:`~registry.errors.UpstreamError` naming the server and status.

The token is sent as ``Authorization: Token ...`` and appears in no message, log or audit event.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx

from registry.errors import Hint, InvalidInput, UpstreamError

__all__ = ["API_TASK_FIELDS", "MAX_RESPONSE_BYTES", "PAGE_SIZE", "LabelStudioClient", "server_namespace"]

PAGE_SIZE = 500
"""Full tasks (data, annotations, predictions) per page."""
ID_PAGE_SIZE = 5000
"""Task ids and update times per page (a few dozen bytes each)."""
MAX_RESPONSE_BYTES = 256 * 2**20
"""Largest answer read from the server (a page of tasks, the users, a project)."""
TIMEOUT = httpx.Timeout(120.0, connect=10.0)
API_TASK_FIELDS = frozenset({
    "id", "data", "meta", "annotations", "predictions", "drafts", "annotators", "inner_id", "project",
    "created_at", "updated_at", "updated_by", "completed_at", "is_labeled", "overlap", "file_upload",
    "storage_filename", "total_annotations", "cancelled_annotations", "total_predictions", "annotations_ids",
    "annotations_results", "predictions_results", "predictions_score", "predictions_model_versions",
    "avg_lead_time", "draft_exists", "comment_count", "unresolved_comment_count", "last_comment_updated_at",
    "comment_authors",
})
"""The fields of a task in ``GET /api/tasks/?fields=all`` (Label Studio 1.23.2, read off the real server:
``tests/sync/test_label_studio_sync.py`` checks them). Its shape differs from the exports' (it adds the
data manager's columns such as ``annotations_results``, ``predictions_score`` and ``completed_at``); the
sync passes this list to the JSON importer, which keeps any other field raw in the records' ``extra``
with one warning per field name, as it does for an export."""


def server_namespace(url: str) -> str:
    """The OpenLineage namespace of a Label Studio server: ``scheme://host:port`` of its URL (the
    naming spec's form for HTTP services), without credentials, path or query."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname}:{port}"


def check_url(url: str) -> str:
    """``url`` without a trailing slash, if it is an http(s) URL with a host.

    Raises:
        InvalidInput: anything else, or a URL carrying credentials (use ``LABEL_STUDIO_API_KEY``).
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"URL {url!r}: expected the Label Studio server's http(s) URL, e.g. http://localhost:8080",
                           hint=Hint("option", "url"))
    if parts.username or parts.password:
        raise InvalidInput("the Label Studio URL must not carry credentials; put the token in LABEL_STUDIO_API_KEY",
                           hint=Hint("option", "url"))
    return url.rstrip("/")


class LabelStudioClient:
    """Calls to one Label Studio server with one API token."""

    def __init__(self, url: str, token: str | None) -> None:
        if not token:
            raise InvalidInput("set LABEL_STUDIO_API_KEY to a Label Studio API token (Account & Settings)")
        self.url = check_url(url)
        self._http = httpx.Client(base_url=self.url, timeout=TIMEOUT,
                                  headers={"Authorization": f"Token {token}"}, follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LabelStudioClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None) -> Any:
        """One API call; the decoded JSON answer (None for an empty one).

        Raises:
            UpstreamError: unreachable, a timeout, an HTTP error status or an answer that is not JSON.
        """
        where = f"Label Studio at {self.url}"
        try:
            with self._http.stream(method, path, params=params, json=body) as response:
                raw = bytearray()
                for chunk in response.iter_bytes():
                    raw += chunk
                    if len(raw) > MAX_RESPONSE_BYTES:
                        raise UpstreamError(f"{where}: {method} {path} answered more than "
                                            f"{MAX_RESPONSE_BYTES // 2**20} MiB")
        except httpx.HTTPError as exc:
            raise UpstreamError(f"{where} is unreachable ({type(exc).__name__}: {exc})") from None
        if response.status_code >= 400:
            hint = " (check LABEL_STUDIO_API_KEY)" if response.status_code == 401 else ""
            detail = bytes(raw[:200]).decode(errors="replace").strip()
            raise UpstreamError(f"{where}: {method} {path} failed with HTTP {response.status_code}{hint}: {detail}")
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise UpstreamError(f"{where}: {method} {path} answered HTTP {response.status_code} "
                                "with something other than JSON") from None

    def version(self) -> str | None:
        answer = self.call("GET", "/api/version")
        return str(answer.get("release")) if isinstance(answer, dict) and answer.get("release") else None

    def project(self, project: int) -> dict[str, Any]:
        answer = self.call("GET", f"/api/projects/{project}/")
        if not isinstance(answer, dict):
            raise UpstreamError(f"Label Studio at {self.url}: project {project} answered no object")
        return answer

    def users(self) -> list[dict[str, Any]]:
        answer = self.call("GET", "/api/users/")
        items = answer.get("results") if isinstance(answer, dict) else answer
        return [u for u in items or [] if isinstance(u, dict)]

    def _pages(self, project: int, params: dict[str, Any], size: int = PAGE_SIZE) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            answer = self.call("GET", "/api/tasks/", params={"project": project, "page": page,
                                                              "page_size": size, **params})
            tasks = answer.get("tasks") if isinstance(answer, dict) else None
            if not isinstance(tasks, list):
                raise UpstreamError(f"Label Studio at {self.url}: /api/tasks/ answered no task list")
            yield from (t for t in tasks if isinstance(t, dict))
            if len(tasks) < size or page * size >= int(answer.get("total") or 0):
                return
            page += 1

    def task_versions(self, project: int) -> dict[int, str]:
        """Every task id of ``project`` with its ``updated_at`` (which Label Studio moves whenever an
        annotation or prediction of the task is created, updated or deleted)."""
        listed = self._pages(project, {"include": "id,updated_at"}, ID_PAGE_SIZE)
        return {int(t["id"]): str(t.get("updated_at")) for t in listed}

    def tasks_since(self, project: int, since: str | None) -> Iterator[dict[str, Any]]:
        """Full tasks (data, annotations, predictions) updated after ``since`` (all when None)."""
        params: dict[str, Any] = {"fields": "all"}
        if since is not None:
            params["query"] = json.dumps({"filters": {"conjunction": "and", "items": [{
                "filter": "filter:tasks:updated_at", "operator": "greater", "type": "Datetime", "value": since}]}})
        return self._pages(project, params)
