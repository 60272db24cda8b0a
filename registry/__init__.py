"""A dataset versioning and lineage registry: immutable, incremental, verifiable snapshots.

``from registry import Registry`` is the Python entry point; errors live in ``registry.errors``.
Heavy modules (pyarrow, the catalog) load on first use, so the CLI starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from registry.distribution import DISTRIBUTION, VERSION
from registry.errors import RegistryError

if TYPE_CHECKING:
    from registry.registry import Registry

__all__ = ["DISTRIBUTION", "Registry", "RegistryError"]
__version__ = VERSION


def __getattr__(name: str) -> Any:
    if name == "Registry":
        from registry.registry import Registry  # lazy: `import registry` (and the CLI) must not load the catalog

        return Registry
    raise AttributeError(f"module 'registry' has no attribute {name!r}")
