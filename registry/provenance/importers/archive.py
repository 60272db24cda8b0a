"""Exports that are several files: a zip archive (as Label Studio downloads them) or an unpacked folder.

Reads are bounded (members, bytes per member, bytes in all) before anything is decompressed, so a
zip bomb is an error, not a full disk or memory.
"""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

from registry.errors import InvalidInput

__all__ = ["ExportFiles", "is_zip"]

MAX_MEMBERS = 1_000_000
MAX_MEMBER_BYTES = 512 * 1024 * 1024
MAX_TOTAL_BYTES = 4 * 1024 * 1024 * 1024


def is_zip(path: Path) -> bool:
    return path.is_file() and zipfile.is_zipfile(path)


class ExportFiles:
    """The files of a zip or a folder by relative POSIX path; a context manager closing the zip."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        if path.is_dir():
            self._names = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
        elif is_zip(path):
            try:
                self._zip = zipfile.ZipFile(path)
                infos = [i for i in self._zip.infolist() if not i.is_dir()]
            except (zipfile.BadZipFile, OSError) as exc:
                raise InvalidInput(f"{path}: not a readable zip archive ({exc})") from None
            if len(infos) > MAX_MEMBERS or sum(i.file_size for i in infos) > MAX_TOTAL_BYTES:
                raise InvalidInput(f"{path}: the archive is too large to import (over {MAX_MEMBERS:,} files or "
                                   f"{MAX_TOTAL_BYTES // 2**30} GiB unpacked)")
            self._names = sorted(i.filename for i in infos)
        else:
            raise InvalidInput(f"{path}: expected a zip archive or a folder")

    def __enter__(self) -> ExportFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._zip is not None:
            self._zip.close()

    def names(self) -> list[str]:
        return list(self._names)

    def find(self, basename: str) -> str | None:
        """The shallowest member called ``basename`` (``classes.txt``, ``result.json``), if any."""
        found = [n for n in self._names if PurePosixPath(n).name == basename]
        return min(found, key=lambda n: (n.count("/"), n)) if found else None

    def read(self, name: str) -> bytes:
        """The bytes of member ``name``.

        Raises:
            InvalidInput: larger than :data:`MAX_MEMBER_BYTES`, or unreadable.
        """
        try:
            if self._zip is None:
                file = self.path / name
                if file.stat().st_size > MAX_MEMBER_BYTES:
                    raise InvalidInput(f"{self.path}: {name} is larger than {MAX_MEMBER_BYTES // 2**20} MiB")
                return file.read_bytes()
            if self._zip.getinfo(name).file_size > MAX_MEMBER_BYTES:
                raise InvalidInput(f"{self.path}: {name} is larger than {MAX_MEMBER_BYTES // 2**20} MiB")
            with self._zip.open(name) as member:
                data = member.read(MAX_MEMBER_BYTES + 1)
        except (OSError, zipfile.BadZipFile, KeyError) as exc:
            raise InvalidInput(f"{self.path}: cannot read {name} ({exc})") from None
        if len(data) > MAX_MEMBER_BYTES:
            raise InvalidInput(f"{self.path}: {name} is larger than {MAX_MEMBER_BYTES // 2**20} MiB")
        return data

    def text(self, name: str) -> str:
        """Member ``name`` as UTF-8 text.

        Raises:
            InvalidInput: not UTF-8 (or see :meth:`read`).
        """
        try:
            return self.read(name).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{self.path}: {name} is not UTF-8 text (byte {exc.start})") from None
