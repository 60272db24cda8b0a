"""The built-in store factories, registered by URL scheme: ``file`` (and plain paths), ``s3``, ``lakefs``.

Imported by :mod:`registry.storage` itself, so opening any store finds them; another scheme registers
the same way (:func:`registry.storage.base.register_store`). The S3 and lakeFS stores load only when a
home uses them.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from registry.config import StorageSettings
from registry.storage.base import ObjectStore, register_store
from registry.storage.local import LocalObjectStore
from registry.storage.verified import markers_in

__all__: list[str] = []


def _local(url: str, _settings: StorageSettings, cache: Path) -> ObjectStore:
    root = Path(unquote(urlparse(url).path)) if url.startswith("file://") else Path(url)
    return LocalObjectStore(root, markers_in(cache))


def _s3(url: str, settings: StorageSettings, cache: Path) -> ObjectStore:
    from registry.storage.s3 import S3ObjectStore  # lazy: only homes on S3 load the S3 store

    return S3ObjectStore(url, cache, settings.s3, settings.retries)


def _lakefs(url: str, settings: StorageSettings, cache: Path) -> ObjectStore:
    from registry.storage.lakefs import LakeFSObjectStore  # lazy: only homes on lakeFS load the lakeFS store

    return LakeFSObjectStore(url, cache, settings.lakefs, settings.retries)


register_store("file", _local)
register_store("s3", _s3)
register_store("lakefs", _lakefs)
