"""Cutting one scan plan across every consumer of a job (ranks x DataLoader workers, Ray tasks), and
reading a consumer's share as record batches.

Without shuffling, the plan's rows are cut into one contiguous run per consumer, equal within one row
(:func:`registry.snapshots.plan.split`): at most ``consumers - 1`` row groups are cut, so almost every
row group is decoded once, by one consumer. With shuffling, the units are the plan's tasks (row
groups; cut further only when there are fewer than consumers), their order a permutation drawn
from ``(seed, epoch)`` of which consumer ``c`` takes every ``consumers``-th, and each unit's rows are
permuted by a generator drawn from ``(seed, epoch, unit)``; shares then differ by at most about one
row group. Every consumer computes the same cut from the same plan, so every row is read exactly
once per epoch with no coordination, and the same seed and epoch give the same order anywhere.

A task's row group is streamed batch by batch as a plain Parquet read would be; rows a newer layer
hides are cut out with zero-copy slices, and only batches made of several pieces are copied to
reach the batch size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from registry.errors import InvalidInput
from registry.snapshots.plan import ReadTask, ScanPlan, read_task, split
from registry.training.admission import ObjectSource, VerifiedObjects

__all__ = ["Share", "iter_share", "share_of"]

Share = list[tuple[int, list[ReadTask]]]
"""A consumer's units: (unit number, its tasks)."""


def share_of(plan: ScanPlan, consumer: int, consumers: int, *, epoch: int = 0, seed: int = 0,
             shuffle: bool = False) -> Share:
    """The units consumer ``consumer`` of ``consumers`` reads in ``epoch``.

    Raises:
        InvalidInput: ``consumer`` is not in ``range(consumers)``.
    """
    if consumers < 1 or not 0 <= consumer < consumers:
        raise InvalidInput(f"consumer {consumer} of {consumers}: expected 0 <= consumer < consumers")
    tasks = plan.tasks
    if not shuffle:
        return [(consumer, split(tasks, consumers)[consumer])]
    units = [[task] for task in tasks] if len(tasks) >= consumers else split(tasks, consumers)
    order = np.random.default_rng([seed, epoch]).permutation(len(units))
    return [(int(u), units[u]) for u in order[consumer::consumers] if units[u]]


def _stream_task(path: str, task: ReadTask, columns: list[str] | None, batch_size: int
                 ) -> Iterator[pa.RecordBatch]:
    """One task's visible rows, streamed: its row group's batches from ``offset`` for ``length`` rows,
    the hidden rows cut out as zero-copy slices."""
    hidden = np.asarray(task.hidden, np.int64)
    stop = task.offset + task.length
    at = 0  # row position (within the row group) of the batch's first row
    parquet = pq.ParquetFile(path)
    for batch in parquet.iter_batches(batch_size=batch_size, row_groups=[task.row_group], columns=columns):
        low, high = max(task.offset, at), min(stop, at + batch.num_rows)
        if low < high:
            cuts = hidden[np.searchsorted(hidden, low):np.searchsorted(hidden, high)]
            start = low
            for cut in [*cuts.tolist(), high]:
                if cut > start:
                    yield batch.slice(start - at, cut - start)
                start = cut + 1
        at += batch.num_rows
        if at >= stop:
            break


def _pieces(verified: VerifiedObjects, share: Share, columns: list[str] | None, batch_size: int, shuffle: bool,
            seed: int, epoch: int) -> Iterator[pa.Table | pa.RecordBatch]:
    """The rows of ``share`` in order, as pieces of any size."""
    for unit, tasks in share:
        if shuffle:
            table = pa.concat_tables([read_task(verified.path(t.object), t, columns) for t in tasks])
            order = np.random.default_rng([seed, epoch, unit]).permutation(table.num_rows)
            yield table.take(pa.array(order))
            continue
        for task in tasks:
            yield from _stream_task(verified.path(task.object), task, columns, batch_size)


def iter_share(plan: ScanPlan, objects: ObjectSource, share: Share, *, batch_size: int,
               columns: Sequence[str] | None = None, shuffle: bool = False, seed: int = 0, epoch: int = 0
               ) -> Iterator[pa.RecordBatch]:
    """The rows of ``share`` as record batches of exactly ``batch_size`` rows (the last may be
    shorter), each object verified before this process first reads it.

    Raises:
        VerifyFailed: an object's bytes do not hash to its name.
    """
    if batch_size < 1:
        raise InvalidInput(f"batch_size must be at least 1, got {batch_size}")
    verified = objects if isinstance(objects, VerifiedObjects) else VerifiedObjects(objects)
    cols = list(columns) if columns is not None else (list(plan.columns) if plan.columns is not None else None)
    pending: list[pa.Table] = []
    held = 0
    for piece in _pieces(verified, share, cols, batch_size, shuffle, seed, epoch):
        if not held and piece.num_rows == batch_size and isinstance(piece, pa.RecordBatch):
            yield piece  # the common case: a Parquet batch passes through untouched
            continue
        pending.append(piece if isinstance(piece, pa.Table) else pa.Table.from_batches([piece]))
        held += piece.num_rows
        if held < batch_size:
            continue
        rows = pa.concat_tables(pending)
        start = 0
        while held - start >= batch_size:
            yield rows.slice(start, batch_size).combine_chunks().to_batches()[0]
            start += batch_size
        pending, held = [rows.slice(start)], held - start
    if held:
        yield pa.concat_tables(pending).combine_chunks().to_batches()[0]
