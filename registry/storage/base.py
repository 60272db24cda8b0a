"""The object store contract every backend (local folder, S3, lakeFS) fulfils.

Objects are immutable byte strings named by the hex SHA-256 of their bytes. A store never
rewrites an object: putting bytes that exist already is a no-op. Writers stage bytes in a
local temporary file (:meth:`ObjectStore.staging_file`), then :meth:`ObjectStore.put` makes them
durable under their hash, atomically.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from registry.errors import StorageError

__all__ = ["HashingFile", "ObjectInfo", "ObjectStore", "open_store"]


@dataclass(frozen=True)
class ObjectInfo:
    """A stored object's name (hex SHA-256) and size in bytes."""

    sha256: str
    size: int


class ObjectStore(Protocol):
    """What the registry needs from a place that keeps objects."""

    url: str

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


class HashingFile:
    """A binary file that hashes every byte written to it, so no second pass is needed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._sha = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._sha.update(data)
        written = self._file.write(data)
        self.size += written
        return written

    def flush(self) -> None:
        self._file.flush()

    def tell(self) -> int:
        return self.size

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def close(self) -> None:
        if not self.closed:
            self._file.flush()
            import os

            os.fsync(self._file.fileno())
            self._file.close()
            self.closed = True

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


def open_store(url: str) -> ObjectStore:
    """The store for ``url`` (``file://`` paths, or a bare local path).

    Raises:
        StorageError: the URL names a kind of store this installation does not support.
    """
    from registry.storage.local import LocalObjectStore

    if url.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return LocalObjectStore(Path(unquote(urlparse(url).path)))
    if "://" not in url:
        return LocalObjectStore(Path(url))
    scheme = url.split("://", 1)[0]
    raise StorageError(f"storage URL scheme {scheme!r} is not supported yet (use a local folder or file://)")
