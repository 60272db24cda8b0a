"""Verified reads: an object's bytes are hashed before a read path trusts them (design invariant 5).

Every read path (``read``, ``export``, the streamed HTTP read, ``query --dataset``, diffs, compaction)
opens layer objects through :func:`verified_path`. The first time a process opens an object its file
is re-hashed; a match is remembered for the process, keyed by the file's identity (device, inode,
size, modification and change times), and written as a small marker in the home's cache folder, so
the next process skips the hash while the file is untouched. A local store that has just hashed the bytes
it wrote records the placed file the same way (:func:`remember_written`), so what a commit or a compaction
wrote is not hashed a second time by the first read. Any write to the file (a flipped byte,
a truncation, a replaced file) changes its identity, so the next read hashes it again. A mismatch is
:class:`~registry.errors.VerifyFailed` naming the object, never silent data.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import uuid
from pathlib import Path

from registry.errors import Hint, NotFound, StorageError, VerifyFailed
from registry.storage.base import ObjectStore

__all__ = ["corrupt", "markers_in", "remember_written", "verified_path", "verify_file"]

MARKERS_FOLDER = "verified"

_verified: dict[str, tuple[int, ...]] = {}
_lock = threading.Lock()


def _identity(path: Path) -> tuple[int, ...]:
    st = path.stat()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def corrupt(sha256: str, role: str, detail: str) -> VerifyFailed:
    """The one error every read path raises for damaged bytes."""
    return VerifyFailed(f"object {sha256} ({role}) is corrupt: {detail}; a verify run lists every damaged object",
                        hint=Hint("command", "verify"))


def markers_in(cache_dir: Path) -> Path:
    """The folder of verified markers under a home's cache folder."""
    return cache_dir / MARKERS_FOLDER


def remember_written(path: Path, sha256: str, markers: Path | None = None) -> None:
    """Record that ``path`` now holds the bytes this process hashed to ``sha256`` while writing them (the
    marker names the file's identity after it was placed, so any later write to it still forces a re-hash)."""
    with contextlib.suppress(OSError):  # without a record the first read hashes the file: slower, still safe
        _remember(path, _identity(path), _marker(markers, sha256))


def _remember(path: Path, identity: tuple[int, ...], marker: Path | None) -> None:
    """Trust ``path`` with this identity in this process and, through ``marker``, in every other."""
    with _lock:
        _verified[str(path)] = identity
    _write_marker(marker, identity)


def _marker(markers: Path | None, sha256: str) -> Path | None:
    return markers / sha256[:2] / sha256[2:] if markers is not None else None


def _read_marker(marker: Path | None) -> tuple[int, ...] | None:
    if marker is None:
        return None
    try:
        return tuple(int(part) for part in marker.read_text().split())
    except (OSError, ValueError):
        return None


def _write_marker(marker: Path | None, identity: tuple[int, ...]) -> None:
    if marker is None:
        return
    with contextlib.suppress(OSError):  # a marker only saves time; failing to keep it costs a re-hash
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_name(f".{uuid.uuid4().hex}.tmp")
        tmp.write_text(" ".join(str(v) for v in identity))
        os.replace(tmp, marker)


def verified_path(store: ObjectStore, sha256: str, role: str = "object", markers: Path | None = None) -> Path:
    """A local path of object ``sha256`` whose bytes hash to its name.

    ``markers`` is a folder for cross-process verified markers (None: remember within the process only).

    Raises:
        NotFound: the object is missing.
        VerifyFailed: its bytes do not hash to its name (or cannot be read).
    """
    return verify_file(store.local_path(sha256), sha256, role, markers)


def verify_file(path: Path, sha256: str, role: str = "object", markers: Path | None = None) -> Path:
    """``path``, once its bytes are known to hash to ``sha256``: hashed the first time this process (or,
    with ``markers``, any process) sees the file with its current identity, remembered after that.

    Raises:
        NotFound: the file is missing.
        StorageError: it cannot be read.
        VerifyFailed: its bytes do not hash to ``sha256``.
    """
    try:
        identity = _identity(path)
    except OSError as exc:
        raise NotFound(f"object {sha256} ({role}) is missing: {exc.strerror}") from exc
    key = str(path)
    with _lock:
        if _verified.get(key) == identity:
            return path
    marker = _marker(markers, f"{sha256}")
    if _read_marker(marker) == identity:
        with _lock:
            _verified[key] = identity
        return path
    try:
        with open(path, "rb") as fh:
            actual = hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError as exc:
        raise StorageError(f"cannot read object {sha256} ({role}): {exc.strerror}") from exc
    if actual != sha256:
        raise corrupt(sha256, role, f"its bytes hash to {actual}")
    _remember(path, identity, marker)
    return path
