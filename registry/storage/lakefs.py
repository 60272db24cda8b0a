"""A lakeFS branch as an object store, through the ``lakefs-sdk`` client (``pip install 'dataset-ledger[lakefs]'``).

``lakefs://repository/branch/prefix`` uploads objects to ``prefix/ab/cdef...`` on the branch. Each
registry snapshot commit also becomes a lakeFS commit (:meth:`LakeFSObjectStore.seal_commit`) whose
metadata carries the snapshot id (``registry_snapshot_id``) and the store URL (``registry_store``);
the catalog records that commit's id. Reads go by commit id, never by the branch head: an object is
read at the newest registry-made commit that holds it (found through the branch's commit log), so
commits other lakeFS users make on the branch, even ones that delete the registry's files, do not
change what the registry reads. Objects written after the last registry commit (automatic
compaction, audit segments) are sealed into a commit of their own the first time they are read.

Endpoint and keys come from :class:`registry.config.LakeFSSettings` (``REGISTRY_LAKEFS_*``, else
``LAKEFS_ENDPOINT``, ``LAKEFS_ACCESS_KEY_ID`` and ``LAKEFS_SECRET_ACCESS_KEY``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from registry.config import LakeFSSettings
from registry.errors import NotFound, StorageError
from registry.storage.base import ObjectInfo
from registry.storage.cloud import RemoteObjectStore, Sink, Stat, object_key, sha_of_key

__all__ = ["META_SNAPSHOT", "META_STORE", "LakeFSObjectStore"]

META_SNAPSHOT = "registry_snapshot_id"
"""Commit metadata key: the registry snapshot a lakeFS commit belongs to."""
META_STORE = "registry_store"
"""Commit metadata key: the registry store URL that made the commit (marks registry commits)."""

_TIMEOUT = (5.0, 300.0)
_LOG_PAGES = 10
_LOG_PAGE = 100
_LIST_PAGE = 1000


class LakeFSObjectStore(RemoteObjectStore):
    """Content-addressed objects on a lakeFS branch, sealed by commits the catalog records."""

    kind = "lakefs"

    def __init__(self, url: str, cache_dir: Path, settings: LakeFSSettings, retries: int = 5) -> None:
        parsed = urlparse(url)
        parts = parsed.path.strip("/").split("/", 1)
        if not parsed.netloc or not parts[0]:
            raise StorageError(f"storage URL {url!r} must name a repository and a branch: "
                               "lakefs://repository/branch/prefix")
        super().__init__(url.rstrip("/"), cache_dir, retries)
        self.repository, self.branch = parsed.netloc, parts[0]
        self.prefix = parts[1].strip("/") if len(parts) > 1 else ""
        endpoint = settings.endpoint
        if not endpoint:
            raise StorageError(f"the lakeFS store {url} needs an endpoint: set LAKEFS_ENDPOINT (or "
                               "REGISTRY_LAKEFS_ENDPOINT), e.g. http://localhost:8000")
        self.endpoint = endpoint.rstrip("/")
        self._access = settings.access_key_id
        self._secret = settings.secret_access_key
        self._apis: Any = None
        self._commits: list[str] | None = None
        """Registry-made commit ids on the branch, newest first (read lazily from the log)."""

    def describe(self) -> str:
        return f"lakeFS store {self.url} at {self.endpoint}"

    def info(self) -> dict[str, object]:
        """Where the store is, for ``registry storage info`` (never a secret)."""
        return {"repository": self.repository, "branch": self.branch, "prefix": self.prefix,
                "endpoint": self.endpoint, "credentials": "given" if self._access else "none"}

    # -- the SDK ---------------------------------------------------------------------------------------

    @property
    def _api(self) -> Any:
        if self._apis is None:
            try:
                from lakefs_sdk.api.commits_api import CommitsApi  # lazy: the lakefs extra loads only for lakefs://
                from lakefs_sdk.api.objects_api import ObjectsApi  # lazy: the lakefs extra loads only for lakefs://
                from lakefs_sdk.api.refs_api import RefsApi  # lazy: the lakefs extra loads only for lakefs://
                from lakefs_sdk.api_client import ApiClient  # lazy: the lakefs extra loads only for lakefs://
                from lakefs_sdk.configuration import Configuration  # lazy: the lakefs extra loads only for lakefs://
            except ImportError as exc:
                raise StorageError("lakefs:// storage needs the lakeFS SDK: pip install 'dataset-ledger[lakefs]'"
                                   ) from exc
            host = self.endpoint if self.endpoint.endswith("/api/v1") else f"{self.endpoint}/api/v1"
            config = Configuration(host=host, username=self._access, password=self._secret)
            config.retries = 0  # type: ignore[assignment]  # RemoteObjectStore retries, with backoff
            client = ApiClient(config)
            self._apis = (ObjectsApi(client), CommitsApi(client), RefsApi(client))
        return self._apis

    def _transient(self, exc: Exception) -> bool:
        from lakefs_sdk.exceptions import ApiException  # lazy: the lakefs extra loads only for lakefs://
        from urllib3.exceptions import HTTPError  # lazy: the lakefs extra loads only for lakefs://

        if isinstance(exc, ApiException):
            return exc.status in (None, 0, 408, 429) or (exc.status or 0) >= 500
        return isinstance(exc, (HTTPError, OSError))

    @staticmethod
    def _missing(exc: Exception) -> bool:
        from lakefs_sdk.exceptions import ApiException  # lazy: the lakefs extra loads only for lakefs://

        return isinstance(exc, ApiException) and exc.status == 404

    def _key(self, sha256: str) -> str:
        return object_key(self.prefix, sha256)

    # -- writes go to the branch -------------------------------------------------------------------------

    def _stat_at(self, ref: str, sha256: str) -> Stat | None:
        try:
            stats = self._api[0].stat_object(self.repository, ref, self._key(sha256), user_metadata=False,
                                             _request_timeout=_TIMEOUT)
        except Exception as exc:
            if self._missing(exc):
                return None
            raise
        return Stat(int(stats.size_bytes or 0), float(stats.mtime))

    def _stat(self, sha256: str) -> Stat | None:
        return self._stat_at(self.branch, sha256)

    def _upload(self, path: Path, sha256: str) -> None:
        # The SDK sends the file as the multipart "content" part (it reads the file into memory).
        self._api[0].upload_object(self.repository, self.branch, self._key(sha256), content=str(path),
                                   _request_timeout=_TIMEOUT)

    def _delete(self, sha256: str) -> None:
        try:
            self._api[0].delete_object(self.repository, self.branch, self._key(sha256), _request_timeout=_TIMEOUT)
        except Exception as exc:
            if not self._missing(exc):
                raise

    def _list(self) -> list[ObjectInfo]:
        found: list[ObjectInfo] = []
        after = ""
        while True:
            page = self._api[0].list_objects(self.repository, self.branch, user_metadata=False, after=after,
                                             amount=_LIST_PAGE, prefix=f"{self.prefix}/" if self.prefix else "",
                                             _request_timeout=_TIMEOUT)
            for stats in page.results:
                sha = sha_of_key(self.prefix, stats.path)
                if sha is not None and stats.path_type == "object":
                    found.append(ObjectInfo(sha, int(stats.size_bytes or 0)))
            if not page.pagination.has_more:
                return found
            after = page.pagination.next_offset

    # -- commits -------------------------------------------------------------------------------------------

    def seal_commit(self, snapshot_id: str | None, message: str) -> str | None:
        """Commit the branch; the commit's metadata names the snapshot and this store. Returns its id."""
        from lakefs_sdk.models.commit_creation import CommitCreation  # lazy: the lakefs extra loads only for lakefs://

        metadata = {META_STORE: self.url, **({META_SNAPSHOT: snapshot_id} if snapshot_id else {})}
        body = CommitCreation(message=message or "registry commit", metadata=metadata, date=None, allow_empty=True)
        commit = self._call("commit the branch", lambda: self._api[1].commit(
            self.repository, self.branch, body, _request_timeout=_TIMEOUT))
        self._commits = [commit.id, *(self._commits or [])]
        return str(commit.id)

    def check_commit(self, commit_id: str, snapshot_id: str) -> str | None:
        def get() -> Any:
            try:
                return self._api[1].get_commit(self.repository, commit_id, _request_timeout=_TIMEOUT)
            except Exception as exc:
                if self._missing(exc):
                    return None
                raise

        commit = self._call(f"read commit {commit_id[:12]}", get)
        if commit is None:
            return f"lakeFS commit {commit_id} is missing from the {self.describe()}"
        named = (commit.metadata or {}).get(META_SNAPSHOT)
        if named != snapshot_id:
            return f"lakeFS commit {commit_id} names snapshot {named or 'none'}, not {snapshot_id}"
        return None

    def _registry_commits(self, refresh: bool = False) -> list[str]:
        """Commit ids this store made on the branch, newest first (from the branch's log)."""
        if self._commits is not None and not refresh:
            return self._commits

        def read_log() -> list[str]:
            found, after = [], ""
            for _ in range(_LOG_PAGES):
                page = self._api[2].log_commits(self.repository, self.branch, after=after, amount=_LOG_PAGE,
                                                _request_timeout=_TIMEOUT)
                found += [c.id for c in page.results if (c.metadata or {}).get(META_STORE) == self.url]
                if not page.pagination.has_more:
                    break
                after = page.pagination.next_offset
            return found

        self._commits = self._call("read the branch's commit log", read_log)
        return self._commits

    def commit_for(self, sha256: str) -> str:
        """The newest registry-made commit that holds the object (sealing it first if it is not
        committed yet).

        Raises:
            NotFound: no registry commit and not the branch holds it.
        """
        for refresh in (False, True):
            for commit_id in self._registry_commits(refresh):
                if self._held_at(commit_id, sha256):
                    return commit_id
        if self._call(f"look up object {sha256[:12]}", lambda: self._stat(sha256)) is None:
            raise NotFound(f"object {sha256} is missing from the {self.describe()}")
        sealed = self.seal_commit(None, "registry: seal objects written since the last snapshot commit")
        assert sealed is not None
        return sealed

    def _held_at(self, commit_id: str, sha256: str) -> bool:
        return self._call(f"look up object {sha256[:12]}", lambda: self._stat_at(commit_id, sha256)) is not None

    # -- reads go by commit id ----------------------------------------------------------------------------

    def _download(self, sha256: str, sink: Sink) -> None:
        self._get(self.commit_for(sha256), sha256, sink)

    def _download_written(self, sha256: str, sink: Sink) -> None:
        self._get(self.branch, sha256, sink)  # writers compare against the branch they write to

    def _get(self, ref: str, sha256: str, sink: Sink) -> None:
        try:
            data = self._api[0].get_object(self.repository, ref, self._key(sha256), _request_timeout=_TIMEOUT)
        except Exception as exc:
            if self._missing(exc):
                raise NotFound(f"object {sha256} is missing from {ref[:12]} of the {self.describe()}") from exc
            raise
        sink.write(data)
