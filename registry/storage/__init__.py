"""Object stores: content-addressed, write-once homes for Parquet and manifest bytes."""

from registry.storage import schemes  # noqa: F401  (registers the built-in schemes)
from registry.storage.base import ObjectInfo, ObjectStore, StoreFactory, open_store, register_store, store_schemes
from registry.storage.local import LocalObjectStore

__all__ = ["LocalObjectStore", "ObjectInfo", "ObjectStore", "StoreFactory", "open_store", "register_store",
           "store_schemes"]
