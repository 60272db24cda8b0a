"""The distribution's name and version, at the bottom of the stack (the root package re-exports them,
and low modules such as the lineage producer read them here without importing the root package)."""

from __future__ import annotations

__all__ = ["DISTRIBUTION", "VERSION"]

VERSION = "0.1.0"
DISTRIBUTION = "dataset-ledger"
"""The name on the package index (``pip install dataset-ledger``); the import package and command stay ``registry``."""
