"""Sealing: move the unsealed events into one content-addressed Parquet segment (see
:mod:`registry.audit.log`, where it lives because appending triggers it and it appends its own event).
"""

from __future__ import annotations

from registry.audit.log import SealResult, seal, seal_quietly

__all__ = ["SealResult", "seal", "seal_quietly"]
