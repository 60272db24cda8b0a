"""Cutting one scan plan across every consumer of a job (ranks x DataLoader workers, Ray tasks), and
reading a consumer's share as record batches.

Without shuffling, each consumer reads a contiguous run of whole row groups, the runs as equal in
rows as whole row groups allow (:func:`registry.snapshots.plan.group`), so every row group is decoded
once; ``exact`` cuts the rows into runs equal within one row instead
(:func:`~registry.snapshots.plan.split`), decoding up to ``consumers - 1`` row groups twice. With
shuffling, the units are the plan's tasks (row groups; cut further only when there are fewer than
consumers), their order a permutation drawn from ``(seed, epoch)`` of which consumer ``c`` takes every
``consumers``-th, and each unit's rows are permuted by a generator drawn from ``(seed, epoch, unit)``.
Every consumer computes the same cut from the same plan, so every row is read exactly once per epoch
with no coordination, and the same seed and epoch give the same order anywhere.

A task's row group is streamed as a plain Parquet read would be, a batch (:func:`decode_rows`) at a time; rows
a newer layer hides are cut out with zero-copy slices, and batches are zero-copy slices of what was
decoded, except a batch that straddles two pieces, which is joined (copying only its own rows). A
shuffled unit is decoded the same way, joined once, and gathered once in its permuted order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from registry.arrays import arrow_array
from registry.errors import InvalidInput
from registry.snapshots.plan import ReadTask, ScanPlan, group, split
from registry.training.admission import ObjectSource, VerifiedObjects

__all__ = ["DECODE_ROWS", "Share", "decode_rows", "iter_share", "share_of"]

DECODE_ROWS = 8_192
"""The fewest rows decoded at a time: a batch of at least this many rows is decoded on its own, as a
plain ``iter_batches`` read would (a consumer that decoded several batches at once would deliver them
in bursts, and a DataLoader, which takes batches from its workers in turn with a bounded prefetch,
would leave the other workers waiting during each burst); smaller batches are cut from a whole
number of them decoded together, so the per-batch decode cost stays small."""


def decode_rows(batch_size: int) -> int:
    """Rows to decode at a time for batches of ``batch_size``: the smallest multiple of it that is at
    least :data:`DECODE_ROWS` (so decoded pieces line up with batches)."""
    return batch_size * -(-DECODE_ROWS // batch_size)

Share = list[tuple[int, list[ReadTask]]]
"""A consumer's units: (unit number, its tasks)."""


def share_of(plan: ScanPlan, consumer: int, consumers: int, *, epoch: int = 0, seed: int = 0,
             shuffle: bool = False, exact: bool = False) -> Share:
    """The units consumer ``consumer`` of ``consumers`` reads in ``epoch``. Unshuffled, a contiguous run
    of whole row groups (``exact``: of equal rows, cutting up to ``consumers - 1`` row groups).

    Raises:
        InvalidInput: ``consumer`` is not in ``range(consumers)``.
    """
    if consumers < 1 or not 0 <= consumer < consumers:
        raise InvalidInput(f"consumer {consumer} of {consumers}: expected 0 <= consumer < consumers")
    tasks = plan.tasks
    if not shuffle:
        return [(consumer, (split if exact else group)(tasks, consumers)[consumer])]
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


def _unit_rows(verified: VerifiedObjects, tasks: list[ReadTask], columns: list[str] | None,
               decode_rows: int) -> pa.Table | None:
    """A unit's visible rows as one contiguous table (decoded as a stream, which costs less than one
    whole-row-group read, then joined once), or None when it has none."""
    pieces = [piece for task in tasks
              for piece in _stream_task(verified.path(task.object), task, columns, decode_rows)]
    return pa.Table.from_batches(pieces).combine_chunks() if pieces else None


def _pieces(verified: VerifiedObjects, share: Share, columns: list[str] | None, decode_rows: int, shuffle: bool,
            seed: int, epoch: int) -> Iterator[pa.RecordBatch]:
    """The rows of ``share`` in order, as record batches of any size."""
    for unit, tasks in share:
        if not shuffle:
            for task in tasks:
                yield from _stream_task(verified.path(task.object), task, columns, decode_rows)
            continue
        rows = _unit_rows(verified, tasks, columns, decode_rows)
        if rows is None:
            continue
        order = np.random.default_rng([seed, epoch, unit]).permutation(rows.num_rows)
        yield from rows.take(arrow_array(order)).to_batches()


def _joined(pieces: list[pa.RecordBatch]) -> pa.RecordBatch:
    """One record batch of ``pieces`` (a copy; none for a single piece)."""
    if len(pieces) == 1:
        return pieces[0]
    return pa.Table.from_batches(pieces).combine_chunks().to_batches()[0]


def iter_share(plan: ScanPlan, objects: ObjectSource, share: Share, *, batch_size: int,
               columns: Sequence[str] | None = None, shuffle: bool = False, seed: int = 0, epoch: int = 0
               ) -> Iterator[pa.RecordBatch]:
    """The rows of ``share`` as record batches of exactly ``batch_size`` rows (the last may be
    shorter), each object verified before it is read. A batch that lies within one decoded piece is a
    zero-copy slice of it; only a batch that straddles pieces (a cut-out hidden row, the end of a row
    group) is joined, copying just its own rows.

    Raises:
        VerifyFailed: an object's bytes do not hash to its name.
    """
    if batch_size < 1:
        raise InvalidInput(f"batch_size must be at least 1, got {batch_size}")
    verified = objects if isinstance(objects, VerifiedObjects) else VerifiedObjects(objects)
    cols = list(columns) if columns is not None else (list(plan.columns) if plan.columns is not None else None)
    pending: list[pa.RecordBatch] = []
    held = 0
    for piece in _pieces(verified, share, cols, decode_rows(batch_size), shuffle, seed, epoch):
        size = piece.num_rows
        start = 0
        if held:
            need = batch_size - held
            if size < need:
                pending.append(piece)
                held += size
                continue
            pending.append(piece.slice(0, need))
            yield _joined(pending)
            pending, held, start = [], 0, need
        while size - start >= batch_size:
            yield piece.slice(start, batch_size)
            start += batch_size
        if start < size:
            pending, held = [piece.slice(start)], size - start
    if held:
        yield _joined(pending)
