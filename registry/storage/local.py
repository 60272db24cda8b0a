"""A local folder as an object store: ``objects/ab/cdef...``, written by temp file + fsync + rename."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from registry.errors import NotFound, StorageError
from registry.storage.base import HashingFile, ObjectInfo, file_digest, staging_in
from registry.storage.verified import remember_written

__all__ = ["LocalObjectStore"]

_TMP = "tmp"


class LocalObjectStore:
    """Content-addressed objects in a local folder (the embedded default)."""

    kind = "local"

    def __init__(self, root: Path, markers: Path | None = None) -> None:
        """``markers``: the home's verified-marker folder, where each object this store writes is recorded
        as verified (it was hashed while written), so its first read does not hash it again."""
        self.root = root
        self.markers = markers
        self.url = root.as_uri() if root.is_absolute() else str(root)
        try:
            (root / _TMP).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create object store folder {root}: {exc.strerror}") from exc

    def info(self) -> dict[str, object]:
        return {"root": str(self.root)}

    def _path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:]

    def staging_file(self, suffix: str = "") -> AbstractContextManager[HashingFile]:
        return staging_in(self.root / _TMP, suffix)

    def put(self, staged: HashingFile) -> ObjectInfo:
        staged.close()
        sha = staged.sha256
        final = self._path(sha)
        try:
            if final.exists() and final.stat().st_size == staged.size:
                # Reused by a new writer: refresh its age so gc treats it as in flight again. (A stored
                # copy of another size is damaged; the staged bytes, which hash to the name, replace it.)
                os.utime(final)
                staged.path.unlink()
            else:
                final.parent.mkdir(exist_ok=True)
                os.replace(staged.path, final)
                _fsync_dir(final.parent)
                remember_written(final, sha, self.markers)
        except OSError as exc:
            raise StorageError(f"cannot store object {sha[:12]} in {self.root}: {exc.strerror}") from exc
        return ObjectInfo(sha, staged.size)

    def put_bytes(self, data: bytes) -> ObjectInfo:
        with self.staging_file() as staged:
            staged.write(data)
            return self.put(staged)

    def local_path(self, sha256: str) -> Path:
        path = self._path(sha256)
        if not path.is_file():
            raise NotFound(f"object {sha256} is missing from the store at {self.root}")
        return path

    def read_bytes(self, sha256: str) -> bytes:
        return self.local_path(sha256).read_bytes()

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def size(self, sha256: str) -> int:
        return self.local_path(sha256).stat().st_size

    def delete(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(sha256).unlink()

    def iter_objects(self) -> Iterator[ObjectInfo]:
        for prefix in sorted(self.root.iterdir()):
            if prefix.name == _TMP or not prefix.is_dir() or len(prefix.name) != 2:
                continue
            for item in sorted(prefix.iterdir()):
                yield ObjectInfo(prefix.name + item.name, item.stat().st_size)

    def iter_leftovers(self) -> Iterator[Path]:
        yield from sorted((self.root / _TMP).glob("*.tmp"))

    def mtime(self, sha256: str) -> float:
        try:
            return self._path(sha256).stat().st_mtime
        except OSError:
            return 0.0

    def digest(self, sha256: str) -> ObjectInfo:
        try:
            return file_digest(self.local_path(sha256))
        except OSError as exc:
            raise StorageError(f"cannot read object {sha256[:12]} in {self.root}: {exc.strerror}") from exc

    def seal_commit(self, snapshot_id: str | None, message: str) -> str | None:
        return None

    def check_commit(self, commit_id: str, snapshot_id: str) -> str | None:
        return None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
