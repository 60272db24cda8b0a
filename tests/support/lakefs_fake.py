"""An in-process lakeFS API server for tests: the subset of lakeFS's REST API the registry's adapter uses.

It follows lakeFS's published OpenAPI spec (``api/swagger.yml``, served under ``/api/v1``): the same
paths, query parameters, JSON bodies (``ObjectStats``, ``ObjectStatsList``, ``Commit``,
``CommitList``, ``Ref``, ``Error``) and status codes (201 on upload and commit, 204 on delete, 404
for a missing repository, ref or path, 400 for a commit with no changes unless ``allow_empty``, 401
without valid basic-auth keys). Branches have a head commit plus uncommitted (staged) changes;
reading a branch sees both, reading a commit id sees only that commit's tree. It is a real HTTP
server on 127.0.0.1, so the adapter is exercised through ``lakefs-sdk`` and urllib3 end to end.

Not implemented (the adapter does not use them): merges, tags, branch creation, presigned URLs,
ranges, imports, auth administration.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

__all__ = ["FakeLakeFS"]

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@dataclass
class Entry:
    data: bytes
    mtime: int

    def stats(self, path: str) -> dict[str, Any]:
        return {"path": path, "path_type": "object", "physical_address": f"mem://data/{hashlib.md5(self.data).hexdigest()}",
                "checksum": hashlib.md5(self.data).hexdigest(), "size_bytes": len(self.data), "mtime": self.mtime,
                "metadata": {}, "content_type": "application/octet-stream"}


@dataclass
class Commit:
    id: str
    parents: list[str]
    message: str
    metadata: dict[str, str]
    creation_date: int
    tree: dict[str, Entry]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "parents": self.parents, "committer": "registry", "message": self.message,
                "creation_date": self.creation_date, "meta_range_id": "", "metadata": self.metadata}


@dataclass
class Branch:
    head: str
    staged: dict[str, Entry | None] = field(default_factory=dict)
    """Uncommitted changes: an entry, or None for a deletion."""


@dataclass
class Repository:
    commits: dict[str, Commit]
    branches: dict[str, Branch]


class FakeLakeFS:
    """A lakeFS API server holding repositories in memory. ``start()`` serves on a free port."""

    def __init__(self) -> None:
        self.repos: dict[str, Repository] = {}
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self._server: ThreadingHTTPServer | None = None

    # -- set-up and outside actions (what another lakeFS user would do) ---------------------------------

    def create_repository(self, name: str, branch: str = "main") -> None:
        root = Commit(hashlib.sha256(f"root-{name}".encode()).hexdigest(), [], "Repository created", {},
                      int(time.time()), {})
        self.repos[name] = Repository({root.id: root}, {branch: Branch(root.id)})

    def outside_commit(self, repo: str, branch: str, delete_prefix: str, message: str = "someone else") -> str:
        """Delete every path under ``delete_prefix`` on ``branch`` and commit, as another user might."""
        with self.lock:
            state = self.repos[repo].branches[branch]
            for path in self._tree(repo, branch):
                if path.startswith(delete_prefix):
                    state.staged[path] = None
            return self._commit(repo, branch, message, {}, allow_empty=True).id

    def branch_head(self, repo: str, branch: str) -> str:
        return self.repos[repo].branches[branch].head

    # -- serving ----------------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeLakeFS:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True
            wbufsize = 1 << 16  # one write per response (flushed after each request)

            def log_message(self, *_args: Any) -> None:
                pass

            def _any(self) -> None:
                fake.handle(self)

            do_GET = do_POST = do_DELETE = do_HEAD = do_PUT = _any  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- the API ----------------------------------------------------------------------------------------

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        url = urlparse(req.path)
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else b""
        self.requests.append((req.command, url.path))
        if not self._authorized(req.headers.get("Authorization")):
            return _send(req, 401, {"message": "error authenticating request"})
        parts = [unquote(p) for p in url.path.split("/")]
        if parts == ["", "api", "v1", "repositories"] and req.command == "POST":
            creation = json.loads(body)
            with self.lock:
                self.create_repository(creation["name"], creation.get("default_branch") or "main")
            return _send(req, 201, {"id": creation["name"], "creation_date": int(time.time()),
                                    "default_branch": creation.get("default_branch") or "main",
                                    "storage_namespace": creation["storage_namespace"]})
        if parts[:4] != ["", "api", "v1", "repositories"] or len(parts) < 5:
            return _send(req, 404, {"message": "path not found"})
        repo_name, rest = parts[4], parts[5:]
        with self.lock:
            repo = self.repos.get(repo_name)
            if repo is None:
                return _send(req, 404, {"message": f"repository not found: {repo_name}"})
            kind = req.headers.get("Content-Type", "")
            status, payload = self._route(req.command, repo_name, rest, query, body, kind)
        _send(req, status, payload)

    def _authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        return base64.b64decode(header[6:]).decode() == f"{ACCESS_KEY}:{SECRET_KEY}"

    def _route(self, method: str, repo: str, rest: list[str], query: dict[str, str], body: bytes,
               content_type: str) -> tuple[int, Any]:
        r = self.repos[repo]
        match method, rest:
            case "GET", []:
                return 200, {"id": repo, "creation_date": 0, "default_branch": "main", "storage_namespace": "mem://x"}
            case "GET", ["branches", branch]:
                if branch not in r.branches:
                    return 404, {"message": "branch not found"}
                return 200, {"id": branch, "commit_id": r.branches[branch].head}
            case "POST", ["branches", branch, "objects"]:
                if branch not in r.branches:
                    return 404, {"message": "branch not found"}
                data = _upload_content(body, content_type)
                entry = Entry(data, int(time.time()))
                r.branches[branch].staged[query["path"]] = entry
                return 201, entry.stats(query["path"])
            case "DELETE", ["branches", branch, "objects"]:
                if query["path"] not in self._tree(repo, branch):
                    return 404, {"message": "object not found"}
                r.branches[branch].staged[query["path"]] = None
                return 204, None
            case "POST", ["branches", branch, "commits"]:
                if branch not in r.branches:
                    return 404, {"message": "branch not found"}
                creation = json.loads(body or b"{}")
                if not r.branches[branch].staged and not creation.get("allow_empty"):
                    return 400, {"message": "commit: no changes"}
                commit = self._commit(repo, branch, creation.get("message", ""), creation.get("metadata") or {},
                                      allow_empty=True)
                return 201, commit.to_json()
            case "GET", ["commits", commit_id]:
                if commit_id not in r.commits:
                    return 404, {"message": "commit not found"}
                return 200, r.commits[commit_id].to_json()
            case "GET", ["refs", ref, "commits"]:
                return self._log(repo, ref, query)
            case "GET", ["refs", ref, "objects", "stat"]:
                tree = self._tree(repo, ref)
                if tree is None or query["path"] not in tree:
                    return 404, {"message": "object not found"}
                return 200, tree[query["path"]].stats(query["path"])
            case "GET", ["refs", ref, "objects"]:
                tree = self._tree(repo, ref)
                if tree is None or query["path"] not in tree:
                    return 404, {"message": "object not found"}
                return 200, tree[query["path"]].data
            case "GET", ["refs", ref, "objects", "ls"]:
                tree = self._tree(repo, ref)
                if tree is None:
                    return 404, {"message": "ref not found"}
                return 200, _page([tree[p].stats(p) for p in sorted(tree) if p.startswith(query.get("prefix", ""))],
                                  query, key="path")
        return 404, {"message": f"not implemented by the fake: {method} {'/'.join(rest)}"}

    def _commit(self, repo: str, branch: str, message: str, metadata: dict[str, str], allow_empty: bool) -> Commit:
        r = self.repos[repo]
        state = r.branches[branch]
        tree = dict(self._tree(repo, branch) or {})
        seed = f"{state.head}{message}{json.dumps(metadata, sort_keys=True)}{time.time_ns()}{len(r.commits)}"
        commit = Commit(hashlib.sha256(seed.encode()).hexdigest(), [state.head], message, dict(metadata),
                        int(time.time()), tree)
        r.commits[commit.id] = commit
        state.head, state.staged = commit.id, {}
        return commit

    def _tree(self, repo: str, ref: str) -> dict[str, Entry] | None:
        """What reading ``ref`` sees: a commit's tree, or a branch's head tree plus its staged changes."""
        r = self.repos[repo]
        if ref in r.branches:
            state = r.branches[ref]
            tree = dict(r.commits[state.head].tree)
            for path, entry in state.staged.items():
                if entry is None:
                    tree.pop(path, None)
                else:
                    tree[path] = entry
            return tree
        commit = r.commits.get(ref)
        return dict(commit.tree) if commit is not None else None

    def _log(self, repo: str, ref: str, query: dict[str, str]) -> tuple[int, Any]:
        r = self.repos[repo]
        head = r.branches[ref].head if ref in r.branches else ref
        if head not in r.commits:
            return 404, {"message": "ref not found"}
        chain, at = [], head
        while at:
            commit = r.commits[at]
            chain.append(commit.to_json())
            at = commit.parents[0] if commit.parents else ""
        return 200, _page(chain, query, key=None)


def _page(items: list[dict[str, Any]], query: dict[str, str], key: str | None) -> dict[str, Any]:
    """lakeFS pagination: ``amount`` (default 100) items after ``after``, which is a path for listings
    (sorted by path) and a commit id for logs (newest first); ``next_offset`` is the last one returned."""
    amount = int(query.get("amount") or 100)
    after = query.get("after", "")
    if not after:
        start = 0
    elif key is not None:
        start = next((n for n, item in enumerate(items) if item[key] > after), len(items))
    else:
        start = next((n + 1 for n, item in enumerate(items) if item["id"] == after), len(items))
    chunk = items[start:start + amount]
    more = start + amount < len(items)
    next_offset = chunk[-1][key or "id"] if more and chunk else ""
    return {"pagination": {"has_more": more, "next_offset": next_offset, "results": len(chunk),
                           "max_per_page": 1000}, "results": chunk}


def _upload_content(body: bytes, content_type: str) -> bytes:
    """The bytes of an upload: the multipart part named ``content``, or a raw octet-stream body."""
    if not content_type.startswith("multipart/form-data"):
        return body
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "content":
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else b""
    raise ValueError("no content part")


def _send(req: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
    if payload is None:
        data, kind = b"", "application/json"
    elif isinstance(payload, bytes):
        data, kind = payload, "application/octet-stream"
    else:
        data, kind = json.dumps(payload).encode(), "application/json"
    req.send_response(status)
    req.send_header("Content-Type", kind)
    req.send_header("Content-Length", str(len(data)))
    req.end_headers()
    if req.command != "HEAD":
        req.wfile.write(data)
