"""``SnapshotDataset``: a PyTorch ``IterableDataset`` over one snapshot (needs the ``[torch]`` extra).

>>> ds = SnapshotDataset("street-signs@v3", columns=["pixels", "label"], batch_size=256, seed=7)  # doctest: +SKIP
>>> loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=4)                     # doctest: +SKIP
>>> for epoch in range(10):                                                                       # doctest: +SKIP
...     ds.set_epoch(epoch)
...     for batch in loader: ...

The job is admitted once (gate check, one ``read.training`` audit event, one lineage run) when the
dataset is built: in rank 0 when ``torch.distributed`` is initialized, which then broadcasts the
admission, or its refusal, to the other ranks, so a blocked gate stops every rank before the first
batch. Each DataLoader worker of each rank reads its own share of the scan plan (see
:mod:`registry.training.consumers`), verifying every object it reads. Batches come out already
batched: give the DataLoader ``batch_size=None``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyarrow as pa
import torch
import torch.distributed as dist
from torch.utils.data import IterableDataset, get_worker_info

from registry.errors import InvalidInput
from registry.training.admission import Admission, LocalObjects, ObjectSource, VerifiedObjects
from registry.training.consumers import iter_share, share_of
from registry.training.lockfile import LockEntry
from registry.training.sources import admit_job

__all__ = ["SnapshotDataset", "to_tensors"]

Transform = Callable[[pa.RecordBatch], Any]


def to_tensors(batch: pa.RecordBatch) -> dict[str, Any]:
    """The default batch form: numeric and boolean columns without nulls as tensors (copied: torch
    writes to its tensors), every other column as a Python list."""
    out: dict[str, Any] = {}
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        kind = column.type
        if (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)) \
                and column.null_count == 0:
            out[name] = torch.from_numpy(column.to_numpy(zero_copy_only=False, writable=True))
        else:
            out[name] = column.to_pylist()
    return out


def _rank() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class SnapshotDataset(IterableDataset[Any]):
    """The rows of one snapshot (``NAME@REF`` or a lockfile entry), read in batches, each row exactly
    once per epoch across every rank and DataLoader worker.

    ``registry``: a :class:`registry.Registry`, a ``registry_client.Client`` (read over HTTP, objects
    cached locally by hash), or None for ``Registry.open()``. ``shuffle`` permutes the order of the
    plan's units and the rows within each unit, from ``(seed, epoch)``; call :meth:`set_epoch` before
    each epoch. ``transform`` turns each ``pyarrow.RecordBatch`` into what the loop receives (default
    :func:`to_tensors`). Shares are whole row groups, so they differ by up to one row group; unshuffled,
    ``even=True`` makes them equal within one row (what DDP without ``Join`` needs), at the cost of
    decoding a few row groups twice.

    Raises:
        GateBlocked: the snapshot's gate does not pass (every rank raises it).
        VerifyFailed: (while iterating) an object's bytes do not hash to its name.
        NotFound, InvalidInput: no such snapshot; a bad column, batch size or run id.
    """

    def __init__(self, ref_or_lock_entry: str | LockEntry, columns: Sequence[str] | None = None,
                 batch_size: int = 1024, shuffle: bool = True, seed: int = 0, transform: Transform | None = None,
                 *, registry: Any = None, job: str | None = None, allow_unverified: bool = False,
                 even: bool = False) -> None:
        super().__init__()
        if batch_size < 1:
            raise InvalidInput(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.even = even
        self.transform = transform or to_tensors
        self.epoch = 0
        self.columns = list(columns) if columns is not None else None
        admission, objects = self._admit_once(ref_or_lock_entry, registry, job, allow_unverified)
        self.admission: Admission = admission
        self.objects: ObjectSource = VerifiedObjects(objects)
        if isinstance(objects, LocalObjects):
            # Rank 0 hashed each local object before sharing the admission and left a verified marker;
            # here every rank (and, through the markers, every worker it starts, forked or spawned) finds
            # it while the file is untouched, and re-hashes a file that changed since. A remote object is
            # hashed as it downloads, in the worker that needs it, then marked the same way.
            self._verify_all(admission, objects)

    def _admit_once(self, target: str | LockEntry, registry: Any, job: str | None,
                    allow_unverified: bool) -> tuple[Admission, ObjectSource]:
        """Admit in rank 0 and share the outcome with every rank (a refusal is raised everywhere)."""
        rank, world = _rank()
        outcome: list[Any] = [None]
        if rank == 0:
            try:
                admission, objects = admit_job(target, registry, columns=self.columns, job=job,
                                               allow_unverified=allow_unverified)
                if isinstance(objects, LocalObjects):
                    self._verify_all(admission, objects)  # once per machine: the other ranks find the markers
                outcome[0] = (admission, objects)
            except Exception as exc:  # shared with the other ranks, then raised here too
                outcome[0] = exc
        if world > 1:
            dist.broadcast_object_list(outcome, src=0)
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        admitted: tuple[Admission, ObjectSource] = outcome[0]
        return admitted

    @staticmethod
    def _verify_all(admission: Admission, objects: ObjectSource) -> None:
        verified = VerifiedObjects(objects)
        for sha in admission.plan.objects:
            verified.path(sha)

    @property
    def snapshot_id(self) -> str:
        return self.admission.plan.snapshot_id

    @property
    def run_id(self) -> str:
        """The job's lineage run id (the same in every rank and worker)."""
        return self.admission.run_id

    def __len__(self) -> int:
        """Rows per epoch in the whole job (all ranks)."""
        return self.admission.plan.rows

    def set_epoch(self, epoch: int) -> None:
        """Shuffle the next iteration as epoch ``epoch`` (as ``DistributedSampler.set_epoch`` does)."""
        self.epoch = epoch

    def batches(self, consumer: int, consumers: int) -> Iterator[pa.RecordBatch]:
        """Consumer ``consumer``'s record batches of this epoch, before ``transform``."""
        plan = self.admission.plan
        share = share_of(plan, consumer, consumers, epoch=self.epoch, seed=self.seed, shuffle=self.shuffle,
                         exact=self.even)
        return iter_share(plan, self.objects, share, batch_size=self.batch_size, shuffle=self.shuffle,
                          seed=self.seed, epoch=self.epoch)

    def __iter__(self) -> Iterator[Any]:
        rank, world = _rank()
        worker = get_worker_info()
        worker_id, workers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        for batch in self.batches(rank * workers + worker_id, world * workers):
            yield self.transform(batch)
