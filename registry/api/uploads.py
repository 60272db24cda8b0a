"""Spooling a commit upload to a temporary folder under a size limit.

The body is read as it arrives, counted, and written to disk; past the limit the request fails with
:class:`TooLarge` (413). The caller owns the folder and removes it whatever happens, so a refused,
malformed or abandoned (client disconnected) upload leaves nothing behind.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.types import Message

from registry.errors import InvalidInput, RegistryError, TooLarge
from registry.snapshots.inputs import InputLimits
from registry.snapshots.tables import SUPPORTED_SUFFIXES, read_arrow_stream

__all__ = ["ARROW_STREAM", "spool_files", "spool_upload", "upload_folder"]

ARROW_STREAM = "application/vnd.apache.arrow.stream"


def _limited(request: Request, limit: int) -> Request:
    """``request`` with a body that raises :class:`TooLarge` once more than ``limit`` bytes arrived."""
    too_large = TooLarge(f"the upload is larger than the limit of {limit:,} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise too_large
        return message

    return Request(request.scope, receive)


async def spool_upload(request: Request, limit: int, folder: Path) -> pa.Table | Path:
    """The uploaded rows: a multipart ``file`` part (Parquet, CSV or JSON lines) spooled to a file in
    ``folder``, or an Arrow IPC stream body read into a table.

    Raises:
        TooLarge: more than ``limit`` bytes.
        InvalidInput: no file part, an unknown content type, or an unreadable Arrow stream.
    """
    body = _limited(request, limit)
    kind = _content_type(request)
    if kind == "multipart/form-data":
        async with body.form(max_files=1) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise InvalidInput("the multipart upload needs a 'file' part holding the rows (Parquet)")
            name = _sent_name(upload, "upload.parquet")
            supported = Path(name).suffix.lower() in SUPPORTED_SUFFIXES
            return await _save(upload, folder / (name if supported else "upload.parquet"))
    if kind == ARROW_STREAM:
        target = folder / "upload.arrows"
        with target.open("wb") as out:
            async for chunk in body.stream():
                out.write(chunk)
        return await run_in_threadpool(read_arrow_stream, target,
                                      InputLimits.from_settings(request.app.state.ctx.settings.inputs))
    raise InvalidInput(f"upload the rows as multipart/form-data (a 'file' part) or as {ARROW_STREAM}, "
                       f"not {kind or 'no content type'}")


async def spool_files(request: Request, limit: int, folder: Path, required: str, optional: tuple[str, ...] = ()
                      ) -> dict[str, Path]:
    """The multipart file parts ``required`` (and those of ``optional`` sent), each spooled to
    ``folder/PART/NAME`` under its sent file name (its base name only), by part name.

    Raises:
        TooLarge: more than ``limit`` bytes.
        InvalidInput: not multipart, or no ``required`` file part.
    """
    body = _limited(request, limit)
    if _content_type(request) != "multipart/form-data":
        raise InvalidInput(f"upload the file as multipart/form-data (a {required!r} part), "
                           f"not {_content_type(request) or 'no content type'}")
    spooled: dict[str, Path] = {}
    async with body.form(max_files=1 + len(optional)) as form:
        for part in (required, *optional):
            upload = form.get(part)
            if upload is None:
                continue
            if not isinstance(upload, UploadFile):
                raise InvalidInput(f"the multipart part {part!r} must be a file")
            (folder / part).mkdir()
            spooled[part] = await _save(upload, folder / part / _sent_name(upload, part))
    if required not in spooled:
        raise InvalidInput(f"the multipart upload needs a {required!r} file part")
    return spooled


def _sent_name(upload: UploadFile, fallback: str) -> str:
    """The base name the client sent for a part (so errors name the user's file), else ``fallback``."""
    name = Path((upload.filename or "").replace("\\", "/")).name
    return name if name not in ("", ".", "..") else fallback


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _save(upload: UploadFile, target: Path) -> Path:
    """Copy an uploaded part to ``target`` (off the event loop); returns ``target``."""
    with target.open("wb") as out:
        await run_in_threadpool(shutil.copyfileobj, upload.file, out, 1 << 20)
    return target


@contextmanager
def upload_folder() -> Iterator[Path]:
    """A temporary folder for one upload, removed whatever happens. An error raised inside names the
    uploaded files by their own names, never by the server's temporary path."""
    with tempfile.TemporaryDirectory(prefix="registry-upload-") as folder:
        try:
            yield Path(folder)
        except RegistryError as exc:
            # FOLDER/NAME (a commit) and FOLDER/PART/NAME (an import) both show as the sent NAME
            scrubbed = re.sub(re.escape(folder + os.sep) + r"(?:[^/\s]+/)?", "", exc.message)
            scrubbed = scrubbed.replace(folder, "(upload)")
            exc.message = scrubbed
            exc.args = (scrubbed,)
            raise
