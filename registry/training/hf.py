"""Hugging Face ``datasets`` over one snapshot (needs the ``[hf]`` extra).

``to_hf_dataset`` gives a map-style ``datasets.Dataset`` whose fingerprint is the snapshot id (a
column selection: a digest of the id and the columns), so every ``.map()`` cache entry the
``datasets`` library derives is keyed by exactly the data it came from. ``to_hf_iterable`` streams
the snapshot's plan: its shards are the plan's units, so ``datasets`` hands them out to DataLoader
workers and ``split_dataset_by_node`` to ranks, each row once. Both admit the job once, as
:class:`~registry.training.torch.SnapshotDataset` does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
from datasets.table import InMemoryTable

from registry.snapshots.plan import ReadTask, ScanPlan
from registry.training.admission import ObjectSource
from registry.training.consumers import iter_share
from registry.training.lockfile import LockEntry
from registry.training.sources import admit_job, admitted_view

__all__ = ["fingerprint", "to_arrow_dataset", "to_hf_dataset", "to_hf_iterable"]

STREAM_BATCH_ROWS = 8192


def fingerprint(plan: ScanPlan) -> str:
    """The snapshot id; for a column selection, a SHA-256 of the id and the columns."""
    if plan.columns is None:
        return plan.snapshot_id
    return hashlib.sha256("\x00".join([plan.snapshot_id, *plan.columns]).encode()).hexdigest()


def to_hf_dataset(ref_or_lock_entry: str | LockEntry, columns: Sequence[str] | None = None, *,
                  registry: Any = None, job: str | None = None, allow_unverified: bool = False) -> datasets.Dataset:
    """The snapshot's rows as a ``datasets.Dataset`` (memory-mapped from its flat Parquet view).

    Raises:
        GateBlocked: the gate does not pass (audited); VerifyFailed: an object is corrupt.
        NotFound, InvalidInput: no such snapshot, or a bad column.
    """
    admission, view = admitted_view(ref_or_lock_entry, registry, columns=columns, job=job,
                                    allow_unverified=allow_unverified)
    table = pq.read_table(view, columns=list(columns) if columns is not None else None, memory_map=True)
    return to_arrow_dataset(table, admission.plan)


def to_arrow_dataset(table: pa.Table, plan: ScanPlan) -> datasets.Dataset:
    """``table`` (the rows of ``plan``'s snapshot) as a ``datasets.Dataset`` fingerprinted by it."""
    return datasets.Dataset(InMemoryTable(table), fingerprint=fingerprint(plan))


def _rows(units: list[list[dict[str, Any]]], plan: dict[str, Any], objects: ObjectSource) -> Iterator[dict[str, Any]]:
    scan = ScanPlan.from_dict(plan)
    share = [(n, [ReadTask.from_dict(t) for t in unit]) for n, unit in enumerate(units)]
    for batch in iter_share(scan, objects, share, batch_size=STREAM_BATCH_ROWS):
        yield from batch.to_pylist()


def to_hf_iterable(ref_or_lock_entry: str | LockEntry, columns: Sequence[str] | None = None, *,
                   registry: Any = None, job: str | None = None, allow_unverified: bool = False,
                   shards: int | None = None) -> datasets.IterableDataset:
    """The snapshot's rows streamed as a ``datasets.IterableDataset`` of ``shards`` shards (default:
    one per plan task), each object verified before it is read.

    Raises:
        GateBlocked: the gate does not pass (audited).
        NotFound, InvalidInput: no such snapshot, or a bad column or shard count.
    """
    admission, objects = admit_job(ref_or_lock_entry, registry, columns=columns, job=job,
                                   allow_unverified=allow_unverified)
    plan = admission.plan.reshard(shards or max(1, len(admission.plan.tasks)))
    units = [[t.to_dict() for t in shard] for shard in plan.shards if shard]
    features = datasets.Features.from_arrow_schema(plan.schema)
    return datasets.IterableDataset.from_generator(
        _rows, features=features, gen_kwargs={"units": units, "plan": plan.to_dict(), "objects": objects})
