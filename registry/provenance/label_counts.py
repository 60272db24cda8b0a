"""Each snapshot's label counts, kept in the home's cache: a label diff then reads only what changed.

A snapshot's rows never change, so the number of rows per label of one column is fixed once counted
(or derived from a neighbour's counts and the change between them). The counts are derived data, like
the key-hash indexes: a missing or unreadable file is counted again; files are written whole (temporary
file, then rename), so a reader never sees half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from pathlib import Path

from registry.context import Context

__all__ = ["load_counts", "save_counts"]

FOLDER = "label-counts-v1"


def _path(ctx: Context, snapshot_id: str, column: str) -> Path:
    name = hashlib.sha256(column.encode()).hexdigest()[:16]
    return ctx.paths.cache_dir / FOLDER / f"{snapshot_id}.{name}.json"


def load_counts(ctx: Context, snapshot_id: str, column: str) -> dict[str, int] | None:
    """The counts kept for ``column`` of the snapshot, or None."""
    try:
        doc = json.loads(_path(ctx, snapshot_id, column).read_text())
        if doc.get("column") != column:
            return None
        return {str(label): int(count) for label, count in doc["counts"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_counts(ctx: Context, snapshot_id: str, column: str, counts: dict[str, int]) -> None:
    """Keep ``counts`` for ``column`` of the snapshot (best effort: a read-only cache folder keeps nothing)."""
    path = _path(ctx, snapshot_id, column)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{uuid.uuid4().hex}.tmp")
        partial.write_text(json.dumps({"column": column, "counts": sorted(counts.items())}))
        os.replace(partial, path)
