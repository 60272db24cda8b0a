"""Object stores: content-addressed, write-once homes for Parquet and manifest bytes."""

from registry.storage.base import ObjectInfo, ObjectStore, open_store
from registry.storage.local import LocalObjectStore

__all__ = ["LocalObjectStore", "ObjectInfo", "ObjectStore", "open_store"]
