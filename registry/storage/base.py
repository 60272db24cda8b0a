"""The object store contract every backend (local folder, S3, lakeFS) fulfils.

Objects are immutable byte strings named by the hex SHA-256 of their bytes. A store never
rewrites an object: putting bytes that exist already is a no-op. Writers stage bytes in a
local temporary file (:meth:`ObjectStore.staging_file`), then :meth:`ObjectStore.put` makes them
durable under their hash, atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from registry.config import StorageSettings
from registry.errors import InvalidInput
from registry.writeonly import WriteOnlyFile

__all__ = ["HashingFile", "ObjectInfo", "ObjectStore", "StoreFactory", "file_digest", "open_store", "register_store",
           "staging_in", "store_schemes"]


@dataclass(frozen=True)
class ObjectInfo:
    """A stored object's name (hex SHA-256) and size in bytes."""

    sha256: str
    size: int


class ObjectStore(Protocol):
    """What the registry needs from a place that keeps objects."""

    url: str
    kind: str
    """``local``, ``s3`` or ``lakefs``."""

    def info(self) -> dict[str, object]:
        """Where the store is (bucket, endpoint, folder...), for ``registry storage info``; never a secret."""
        ...

    def staging_file(self, suffix: str = "") -> AbstractContextManager[HashingFile]:
        """A writable temporary file that hashes what is written; removed if not put."""
        ...

    def put(self, staged: HashingFile) -> ObjectInfo:
        """Make a closed staged file durable under its SHA-256 (fsync, atomic rename).

        If the object exists already, its age is refreshed instead, so garbage collection sees a
        reused object as part of a commit in flight.
        """
        ...

    def put_bytes(self, data: bytes) -> ObjectInfo:
        """Store a small byte string (a manifest) and return its name."""
        ...

    def local_path(self, sha256: str) -> Path:
        """A local path readers (pyarrow, DuckDB) can open for this object."""
        ...

    def read_bytes(self, sha256: str) -> bytes:
        """The whole object; for small objects such as manifests."""
        ...

    def exists(self, sha256: str) -> bool:
        """Whether the object is stored."""
        ...

    def size(self, sha256: str) -> int:
        """The stored object's size in bytes."""
        ...

    def delete(self, sha256: str) -> None:
        """Remove an object; only garbage collection calls this, for unreferenced objects."""
        ...

    def iter_objects(self) -> Iterator[ObjectInfo]:
        """Every stored object."""
        ...

    def iter_leftovers(self) -> Iterator[Path]:
        """Temporary files left by writers that died before renaming them."""
        ...

    def mtime(self, sha256: str) -> float:
        """When the object was last written (or reused by a writer), seconds since the epoch; 0 if absent.

        Garbage collection keeps unreferenced objects younger than its minimum age."""
        ...

    def digest(self, sha256: str) -> ObjectInfo:
        """Hash the bytes the store itself holds (never a cached copy): what ``verify`` checks.

        Raises:
            NotFound: the object is not stored.
            StorageError: the store cannot be read.
        """
        ...

    def seal_commit(self, snapshot_id: str | None, message: str) -> str | None:
        """Make every object written so far part of a commit of the store, if the store has commits.

        lakeFS returns the id of the commit it made (its metadata names ``snapshot_id``); stores
        without commits (local, S3) do nothing and return None."""
        ...

    def check_commit(self, commit_id: str, snapshot_id: str) -> str | None:
        """A problem with the store commit a snapshot recorded (missing, or naming another snapshot), or
        None; stores without commits have nothing to check."""
        ...


class HashingFile(WriteOnlyFile):
    """A binary file that hashes every byte written to it, so no second pass is needed."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._file: IO[bytes] = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._sha = hashlib.sha256()

    def _store(self, data: bytes | bytearray | memoryview) -> int:
        self._sha.update(data)
        return self._file.write(data)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        """Flush, fsync and close (the bytes are durable before the store renames them)."""
        if not self.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self.closed = True

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


@contextlib.contextmanager
def staging_in(folder: Path, suffix: str = "") -> Iterator[HashingFile]:
    """A :class:`HashingFile` in ``folder``, removed on leaving unless a ``put`` moved it away."""
    staged = HashingFile(folder / f"{uuid.uuid4().hex}{suffix}.tmp")
    try:
        yield staged
    finally:
        if not staged.closed:
            staged.close()
        with contextlib.suppress(FileNotFoundError):
            staged.path.unlink()


def file_digest(path: Path) -> ObjectInfo:
    """The SHA-256 and size of a local file's bytes."""
    with open(path, "rb") as fh:
        actual = hashlib.file_digest(fh, "sha256").hexdigest()
    return ObjectInfo(actual, path.stat().st_size)


StoreFactory = Callable[[str, StorageSettings, Path], "ObjectStore"]
"""Makes the store for a URL of its scheme, from the storage settings (its own group, e.g. ``settings.s3``)
and the folder for staging files and verified local copies.

The plugin contract: a factory validates the URL (``StorageError`` naming the expected form), reads only
its own settings group, and does no network I/O (a store connects on first use), so opening a home stays
cheap. Register it with :func:`register_store`."""

_FACTORIES: dict[str, StoreFactory] = {}


def register_store(scheme: str, factory: StoreFactory) -> None:
    """Make ``scheme://...`` URLs open with ``factory`` (replacing any factory of that scheme)."""
    _FACTORIES[scheme] = factory


def store_schemes() -> list[str]:
    """The URL schemes stores can be opened for, sorted."""
    return sorted(_FACTORIES)


def open_store(url: str, settings: StorageSettings | None = None, cache_dir: Path | None = None) -> ObjectStore:
    """The store for ``url``: a bare path is a local folder, else the factory registered for its scheme
    (``file://``, ``s3://bucket/prefix``, ``lakefs://repository/branch/prefix``; see docs/storage.md).

    ``settings`` (``ctx.settings.storage``; default: the built-in defaults, nothing read from the
    environment) carries endpoints and credentials; ``cache_dir`` (the home's cache folder) holds
    remote stores' staging files and their verified local copies of objects.

    Raises:
        InvalidInput: the URL's scheme has no registered store (the message names the known schemes).
        StorageError: the URL is malformed for its scheme.
    """
    scheme = url.split("://", 1)[0] if "://" in url else "file"
    factory = _FACTORIES.get(scheme)
    if factory is None:
        raise InvalidInput(f"storage URL scheme {scheme!r} is not supported; known schemes: "
                           f"{', '.join(store_schemes())} (or a local folder path)")
    cache = cache_dir if cache_dir is not None else Path(tempfile.gettempdir()) / "registry-cache"
    return factory(url, settings if settings is not None else StorageSettings(), cache)
