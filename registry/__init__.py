"""A dataset versioning and lineage registry: immutable, incremental, verifiable snapshots.

``from registry import Registry`` is the Python entry point; errors live in ``registry.errors``.
Heavy modules (pyarrow, the catalog) load on first use, so the CLI starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from registry.errors import RegistryError

if TYPE_CHECKING:
    from registry.registry import Registry

__all__ = ["DISTRIBUTION", "Registry", "RegistryError"]
__version__ = "0.1.0"
DISTRIBUTION = "dataset-ledger"
"""The name on the package index (``pip install dataset-ledger``); the import package and command stay ``registry``."""


def __getattr__(name: str) -> Any:
    if name == "Registry":
        from registry.registry import Registry

        return Registry
    raise AttributeError(f"module 'registry' has no attribute {name!r}")
