"""Flat Parquet views: one snapshot's rows as one ordinary Parquet file, for tools that only read
files (pandas, polars, DuckDB, ``datasets``, Spark).

A view is written from the snapshot's scan plan, task by task (memory bounded by one row group),
each object verified before its bytes are read, into a file named by the snapshot id (and column
list) and renamed into place, so it is written once and shared by every later reader. A snapshot of
one layer that hides nothing is its base object already: the view is that object, verified.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pyarrow.parquet as pq

from registry.snapshots.plan import ScanPlan, read_task
from registry.training.admission import ObjectSource, VerifiedObjects

__all__ = ["view_name", "write_view"]


def view_name(plan: ScanPlan) -> str:
    """``<snapshot id>[-<column list hash>].parquet``: one view per snapshot and column selection."""
    if plan.columns is None:
        return f"{plan.snapshot_id}.parquet"
    columns = hashlib.sha256("\x00".join(plan.columns).encode()).hexdigest()[:16]
    return f"{plan.snapshot_id}-{columns}.parquet"


def write_view(plan: ScanPlan, objects: ObjectSource, folder: Path) -> Path:
    """The view of ``plan`` in ``folder`` (written now unless it is there already).

    Raises:
        VerifyFailed: an object's bytes do not hash to its name.
    """
    verified = objects if isinstance(objects, VerifiedObjects) else VerifiedObjects(objects)
    tasks = plan.tasks
    if plan.columns is None and len(plan.objects) == 1 and all(not t.hidden for t in tasks):
        only = plan.objects[0]
        if sum(t.length for t in tasks) == pq.ParquetFile(objects.path(only)).metadata.num_rows:
            return Path(verified.path(only))
    target = folder / view_name(plan)
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{target.name}.{uuid.uuid4().hex[:8]}.partial"
    try:
        with pq.ParquetWriter(partial, plan.schema, compression="zstd") as writer:
            for task in tasks:
                writer.write_table(read_task(verified.path(task.object), task, plan.columns))
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target
