"""An S3-compatible bucket as an object store (AWS S3, MinIO, Ceph, R2), through ``pyarrow.fs``.

``s3://bucket/prefix`` keeps objects at ``prefix/ab/cdef...``. Endpoint, region and credentials come
from :class:`registry.config.S3Settings` (``REGISTRY_S3_*``, else the usual AWS variables
``AWS_ENDPOINT_URL``, ``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``), else the AWS SDK's default chain. pyarrow is a
dependency already, so S3 needs nothing extra installed; its own retries are turned off so
:class:`RemoteObjectStore` decides.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pyarrow import fs as pafs

from registry.config import S3Settings
from registry.errors import NotFound, StorageError
from registry.storage.base import ObjectInfo
from registry.storage.cloud import RemoteObjectStore, Sink, Stat, object_key, sha_of_key

__all__ = ["S3ObjectStore"]

_CHUNK = 16 << 20
_PERMANENT = ("ACCESS_DENIED", "AccessDenied", "Access Denied", "INVALID_ACCESS_KEY_ID", "InvalidAccessKeyId",
              "SIGNATURE_DOES_NOT_MATCH", "SignatureDoesNotMatch", "NO_SUCH_BUCKET", "NoSuchBucket",
              "not found", "Forbidden")


class S3ObjectStore(RemoteObjectStore):
    """Content-addressed objects in an S3 bucket under a prefix."""

    kind = "s3"

    def __init__(self, url: str, cache_dir: Path, settings: S3Settings, retries: int = 5) -> None:
        parsed = urlparse(url)
        if not parsed.netloc:
            raise StorageError(f"storage URL {url!r} names no bucket; use s3://bucket/prefix")
        super().__init__(url.rstrip("/"), cache_dir, retries)
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.endpoint = settings.endpoint_url
        self.region = settings.region or "us-east-1"
        self._options: dict[str, Any] = {"region": self.region, "connect_timeout": 5, "request_timeout": 120}
        access, secret = settings.access_key_id, settings.secret_access_key
        if access and secret:
            self._options.update(access_key=access, secret_key=secret, session_token=settings.session_token)
        if self.endpoint:
            endpoint = urlparse(self.endpoint if "://" in self.endpoint else f"https://{self.endpoint}")
            self._options.update(endpoint_override=endpoint.netloc + endpoint.path.rstrip("/"),
                                 scheme=endpoint.scheme)
        self._fs: Any = None

    @property
    def fs(self) -> Any:
        """The pyarrow S3 filesystem, made on first use (so opening a home costs no S3 set-up)."""
        if self._fs is None:
            self._fs = pafs.S3FileSystem(retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=1),
                                         **self._options)
        return self._fs

    def describe(self) -> str:
        return f"S3 store {self.url}" + (f" at {self.endpoint}" if self.endpoint else "")

    def info(self) -> dict[str, object]:
        """Where the store is, for ``registry storage info`` (never a secret)."""
        return {"bucket": self.bucket, "prefix": self.prefix, "endpoint": self.endpoint, "region": self.region,
                "credentials": "given" if "access_key" in self._options else "default AWS chain"}

    def _key(self, sha256: str) -> str:
        return f"{self.bucket}/{object_key(self.prefix, sha256)}"

    def _transient(self, exc: Exception) -> bool:
        return isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError) and \
            not any(mark in str(exc) for mark in _PERMANENT)

    def _stat(self, sha256: str) -> Stat | None:
        info = self.fs.get_file_info(self._key(sha256))
        if info.type != pafs.FileType.File:
            return None
        return Stat(int(info.size), info.mtime.timestamp() if info.mtime is not None else 0.0)

    def _upload(self, path: Path, sha256: str) -> None:
        with open(path, "rb") as src, self.fs.open_output_stream(
                self._key(sha256), metadata={"Content-Type": "application/octet-stream"}) as out:
            shutil.copyfileobj(src, out, _CHUNK)

    def _download(self, sha256: str, sink: Sink) -> None:
        try:
            src = self.fs.open_input_stream(self._key(sha256))
        except FileNotFoundError as exc:
            raise NotFound(f"object {sha256} is missing from the {self.describe()}") from exc
        with src:
            while chunk := src.read(_CHUNK):
                sink.write(chunk)

    def _delete(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_file(self._key(sha256))

    def _list(self) -> list[ObjectInfo]:
        base = f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket
        found = []
        for info in self.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True)):
            if info.type != pafs.FileType.File:
                continue
            sha = sha_of_key(self.prefix, info.path[len(self.bucket) + 1:])
            if sha is not None:
                found.append(ObjectInfo(sha, int(info.size)))
        return found
