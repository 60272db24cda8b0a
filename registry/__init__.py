"""A dataset versioning and lineage registry: immutable, incremental, verifiable snapshots.

``from registry import Registry`` is the Python entry point; errors live in ``registry.errors``.
"""

from registry.errors import RegistryError
from registry.registry import Registry

__all__ = ["Registry", "RegistryError"]
__version__ = "0.1.0"
