"""What ``registry storage info`` reports: which store a home uses, where that setting comes from, and
whether the store answers. Shared by the facade and the CLI's fast read path, which must say the same."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from registry.config import HOME_CONFIG, read_home_config
from registry.errors import StorageError
from registry.storage.base import ObjectStore

__all__ = ["StoreInfo", "describe_store"]


@dataclass(frozen=True)
class StoreInfo:
    """Which store a home uses, where that setting comes from, and whether the store answers."""

    url: str
    kind: str
    configured_by: str
    """``REGISTRY_STORAGE_URL``, ``registry.json`` or ``default``."""
    reachable: bool
    error: str | None
    details: dict[str, object]
    cache_dir: str | None
    cache_bytes: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def describe_store(store: ObjectStore, storage_url: str | None, home: Path) -> StoreInfo:
    """Describe ``store`` (opened for ``home``, with ``storage_url`` the setting if any) and probe it with one
    lookup; never prints a secret."""
    if storage_url:
        configured_by = "REGISTRY_STORAGE_URL"
    elif read_home_config(home).get("storage_url"):
        configured_by = HOME_CONFIG
    else:
        configured_by = "default"
    reachable, error = True, None
    try:
        store.exists("0" * 64)
    except StorageError as exc:
        reachable, error = False, exc.message
    cache = getattr(store, "cache", None)
    cache_dir = str(cache.folder) if cache is not None else None
    cache_bytes = sum(p.stat().st_size for p in cache.folder.glob("??/*")) if cache is not None else 0
    return StoreInfo(url=store.url, kind=store.kind, configured_by=configured_by, reachable=reachable, error=error,
                     details=store.info(), cache_dir=cache_dir, cache_bytes=cache_bytes)
