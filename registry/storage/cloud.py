"""What every remote object store (S3, lakeFS) shares: local staging, a verified read-through cache,
and bounded retries that name the store when it stays down.

Writers stage bytes in a local temporary file that hashes what is written; ``put`` uploads it under
its SHA-256, so an object appears under its name whole or not at all. Readers (pyarrow, DuckDB) get a
local path: the object is downloaded once into the home's cache folder through a temporary file whose
hash must equal the name before it is renamed into place. Objects never change, so a cached copy is
valid for as long as it exists, whichever store it came from; the cache can be deleted at any time.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from registry.errors import NotFound, RegistryError, StorageError
from registry.storage.base import HashingFile, ObjectInfo, staging_in
from registry.storage.verified import markers_in, remember_written

__all__ = ["REFRESH_AGE", "ObjectCache", "RemoteObjectStore", "Stat", "object_key", "sha_of_key"]

T = TypeVar("T")

REFRESH_AGE = 1800.0
"""An existing object older than this is uploaded again when a writer reuses it, which renews its
modification time so garbage collection (default minimum age one hour) treats it as in flight."""

_FIRST_DELAY = 0.2
_MAX_DELAY = 5.0
_TMP = "tmp"


@dataclass(frozen=True)
class Stat:
    """A remote object's size and modification time (seconds since the epoch)."""

    size: int
    mtime: float


class Sink(Protocol):
    def write(self, data: bytes | bytearray | memoryview) -> int: ...


class _Digest:
    """A sink that only hashes and counts."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.sha.update(data)
        self.size += len(data)
        return len(data)


class ObjectCache:
    """Verified local copies of immutable objects: ``<folder>/ab/cdef...``, filled by temp file + rename."""

    def __init__(self, folder: Path, markers: Path | None = None) -> None:
        """``markers``: the home's verified-marker folder, where each adopted copy is recorded as verified
        (it was hashed while written), so the first read does not hash it a second time."""
        self.folder = folder
        self.markers = markers
        self.tmp = folder / _TMP
        try:
            self.tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the object cache folder {folder}: {exc.strerror}") from exc

    def path(self, sha256: str) -> Path:
        return self.folder / sha256[:2] / sha256[2:]

    def get(self, sha256: str) -> Path | None:
        path = self.path(sha256)
        return path if path.is_file() else None

    def adopt(self, staged: HashingFile) -> None:
        """Keep a staged file (already hashed while written) as the cached copy of its object."""
        final = self.path(staged.sha256)
        final.parent.mkdir(exist_ok=True)
        os.replace(staged.path, final)
        remember_written(final, staged.sha256, self.markers)

    def fill(self, sha256: str, download: Callable[[HashingFile], None]) -> Path:
        """Download into a temporary file, check its hash, and rename it into place.

        Raises:
            StorageError: the downloaded bytes do not hash to ``sha256``.
        """
        with staging_in(self.tmp, ".download") as staged:
            download(staged)
            staged.close()
            if staged.sha256 != sha256:
                raise StorageError(f"object {sha256} is corrupt in the store: its bytes hash to {staged.sha256}")
            self.adopt(staged)
        return self.path(sha256)

    def drop(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(sha256).unlink()

    def leftovers(self) -> Iterator[Path]:
        yield from sorted(self.tmp.glob("*.tmp"))


class RemoteObjectStore(ABC):
    """The object store contract on top of five remote primitives a backend implements.

    Primitives raise the backend's own exceptions (retried when :meth:`_transient` says so) or a
    :class:`~registry.errors.RegistryError` (never retried)."""

    url: str
    kind: str

    def __init__(self, url: str, cache_dir: Path, retries: int) -> None:
        self.url = url
        self.cache = ObjectCache(cache_dir / "objects", markers_in(cache_dir))
        self.retries = max(1, retries)

    # -- what a backend implements -------------------------------------------------------------------

    @abstractmethod
    def describe(self) -> str:
        """The store as error messages name it, e.g. ``S3 store s3://bucket/prefix``."""

    @abstractmethod
    def _stat(self, sha256: str) -> Stat | None:
        """The object's size and time where writers put it, or None if it is absent."""

    @abstractmethod
    def _upload(self, path: Path, sha256: str) -> None:
        """Store the local file's bytes under ``sha256`` (visible whole or not at all)."""

    @abstractmethod
    def _download(self, sha256: str, sink: Sink) -> None:
        """Write the object's bytes to ``sink``; raise NotFound if it is absent."""

    def _download_written(self, sha256: str, sink: Sink) -> None:
        """Like :meth:`_download`, but what writers see (a store with commits: the uncommitted state)."""
        self._download(sha256, sink)

    @abstractmethod
    def _delete(self, sha256: str) -> None:
        """Remove the object (absent is fine)."""

    @abstractmethod
    def _list(self) -> list[ObjectInfo]:
        """Every object under the store's prefix."""

    @abstractmethod
    def _transient(self, exc: Exception) -> bool:
        """Whether ``exc`` may go away on retry (network, throttling, server errors)."""

    # -- retries ---------------------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn``, retrying transient failures with doubling backoff, at most ``retries`` times.

        Raises:
            StorageError: a permanent failure, or the store stayed down (the message names it).
        """
        delay, started = _FIRST_DELAY, time.monotonic()
        for attempt in range(1, self.retries + 1):
            try:
                return fn()
            except RegistryError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified below, re-raised as StorageError
                if not self._transient(exc):
                    raise StorageError(f"{self.describe()}: cannot {what}: {_short(exc)}") from exc
                if attempt == self.retries:
                    raise StorageError(
                        f"{self.describe()} is unreachable: {what} failed {attempt} time(s) over "
                        f"{time.monotonic() - started:.1f} s ({_short(exc)}); check that it is up and the "
                        "endpoint and credentials are right, then retry") from exc
                time.sleep(delay)
                delay = min(delay * 2, _MAX_DELAY)
        raise AssertionError("unreachable")

    # -- the ObjectStore contract ----------------------------------------------------------------------

    def staging_file(self, suffix: str = "") -> AbstractContextManager[HashingFile]:
        return staging_in(self.cache.tmp, suffix)

    def put(self, staged: HashingFile) -> ObjectInfo:
        """Upload a staged file under its hash; an existing object of the same size and bytes (hashes
        compared) is kept as it is, unless it is old enough to need its age renewed."""
        staged.close()
        sha, size = staged.sha256, staged.size
        found = self._call(f"look up object {sha[:12]}", lambda: self._stat(sha))
        fresh = found is not None and found.size == size and time.time() - found.mtime < REFRESH_AGE
        if not (fresh and self._remote_digest(sha, self._download_written).sha256 == sha):
            self._call(f"upload object {sha[:12]} ({size:,} bytes)", lambda: self._upload_whole(staged.path, sha, size))
        self.cache.adopt(staged)
        return ObjectInfo(sha, size)

    def _upload_whole(self, path: Path, sha256: str, size: int) -> None:
        try:
            self._upload(path, sha256)
        except BaseException:
            # An interrupted upload may have completed with part of the bytes: remove such a stub.
            with contextlib.suppress(Exception):
                found = self._stat(sha256)
                if found is not None and found.size != size:
                    self._delete(sha256)
            raise

    def put_bytes(self, data: bytes) -> ObjectInfo:
        with self.staging_file() as staged:
            staged.write(data)
            return self.put(staged)

    def local_path(self, sha256: str) -> Path:
        cached = self.cache.get(sha256)
        if cached is not None:
            return cached
        return self._call(f"download object {sha256[:12]}",
                          lambda: self.cache.fill(sha256, lambda sink: self._download(sha256, sink)))

    def read_bytes(self, sha256: str) -> bytes:
        return self.local_path(sha256).read_bytes()

    def exists(self, sha256: str) -> bool:
        return self._call(f"look up object {sha256[:12]}", lambda: self._stat(sha256)) is not None

    def size(self, sha256: str) -> int:
        cached = self.cache.get(sha256)
        if cached is not None:
            return cached.stat().st_size  # same name, same bytes
        found = self._call(f"look up object {sha256[:12]}", lambda: self._stat(sha256))
        if found is None:
            raise NotFound(f"object {sha256} is missing from the {self.describe()}")
        return found.size

    def mtime(self, sha256: str) -> float:
        found = self._call(f"look up object {sha256[:12]}", lambda: self._stat(sha256))
        return found.mtime if found is not None else 0.0

    def digest(self, sha256: str) -> ObjectInfo:
        return self._remote_digest(sha256)

    def _remote_digest(self, sha256: str, download: Callable[[str, Sink], None] | None = None) -> ObjectInfo:
        def attempt() -> ObjectInfo:
            sink = _Digest()
            (download or self._download)(sha256, sink)
            return ObjectInfo(sink.sha.hexdigest(), sink.size)

        return self._call(f"read object {sha256[:12]}", attempt)

    def delete(self, sha256: str) -> None:
        self._call(f"delete object {sha256[:12]}", lambda: self._delete(sha256))
        self.cache.drop(sha256)

    def iter_objects(self) -> Iterator[ObjectInfo]:
        yield from sorted(self._call("list objects", self._list), key=lambda info: info.sha256)

    def iter_leftovers(self) -> Iterator[Path]:
        yield from self.cache.leftovers()

    def seal_commit(self, snapshot_id: str | None, message: str) -> str | None:
        return None

    def check_commit(self, commit_id: str, snapshot_id: str) -> str | None:
        return None


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:300] + "...") if len(text) > 300 else (text or type(exc).__name__)


def object_key(prefix: str, sha256: str) -> str:
    """``prefix/ab/cdef...`` (no leading slash; no prefix part when ``prefix`` is empty)."""
    name = f"{sha256[:2]}/{sha256[2:]}"
    return f"{prefix}/{name}" if prefix else name


def sha_of_key(prefix: str, key: str) -> str | None:
    """The object name a key holds, or None for anything else under the prefix."""
    rest = key[len(prefix) + 1:] if prefix else key
    parts = rest.split("/")
    if len(parts) != 2 or len(parts[0]) != 2 or len(parts[1]) != 62:
        return None
    name = parts[0] + parts[1]
    return name if all(c in "0123456789abcdef" for c in name) else None
