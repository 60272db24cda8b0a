"""Outside datasets named as the OpenLineage naming spec names them (``namespace`` = the datasource
as ``scheme://authority``, ``name`` = the path within it), from the URIs users type.

- ``s3://bucket/key`` (also ``s3a``, ``gs``, ``gcs``, ``abfs``, ``abfss``, ``wasbs``): ``s3://bucket`` + ``key``;
- ``file:///path``: ``file`` + ``/path``;
- any other ``scheme://authority/path``: ``scheme://authority`` + ``/path``;
- ``NAMESPACE:NAME`` with a non-numeric "port" (``s3://bucket:images/2026``, the older form) as written.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from registry.errors import InvalidInput

__all__ = ["dataset_name", "local_file"]

_OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "abfs", "abfss", "wasbs"}


def dataset_name(uri: str) -> tuple[str, str]:
    """``(namespace, name)`` of the outside dataset ``uri`` names.

    Raises:
        InvalidInput: it is neither ``scheme://authority/path`` nor ``NAMESPACE:NAME``.
    """
    text = uri.strip()
    scheme, sep, rest = text.partition("://")
    authority = rest.split("/", 1)[0]
    host, colon, port = authority.rpartition(":")
    if sep and colon and host and port and not port.isdigit():  # NAMESPACE:NAME, the older form
        namespace, _, name = text.rpartition(":")
        return namespace, name
    if not sep:
        namespace, colon, name = text.rpartition(":")
        if not colon or not namespace or not name:
            raise InvalidInput(f"source {uri!r}: write a URI (s3://bucket/key, file:///path, "
                               "postgres://host:5432/db.schema.table) or NAMESPACE:NAME")
        return namespace, name
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if not parts.path:
            raise InvalidInput(f"source {uri!r}: a file URI needs a path (file:///data/raw.csv)")
        return "file", parts.path
    if not parts.netloc or not parts.path.strip("/"):
        raise InvalidInput(f"source {uri!r}: write scheme://authority/path (e.g. s3://bucket/images/2026-11)")
    if scheme in _OBJECT_STORES:
        return f"{scheme}://{parts.netloc}", parts.path.lstrip("/")
    return f"{scheme}://{parts.netloc}", parts.path


def local_file(path: str | Path) -> tuple[str, str]:
    """A local input file as an outside dataset: ``file`` + its absolute path."""
    return "file", str(Path(path).resolve())
