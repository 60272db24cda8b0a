"""Reads of memory-mapped index files with ``pread``, not through the map.

Index arrays (``entries.npy``, ``cells.npy``) and key columns (``keys.arrow``) are opened memory-mapped, so
opening one costs nothing. But a fault on a mapped file maps the whole page-cache folio around the page
touched, and folios reach 2 MiB on Linux 6.x: 50 lookups in a 240 MB ``entries.npy`` add 40 MiB to the
reader's RSS, 5,000 add the whole file (measured on this project's machine, Linux 6.18, ext4; ``madvise
(MADV_RANDOM)`` changes nothing). Those pages are shared page cache, yet they count in the process's RSS,
which is what issue 19's memory goals and many job schedulers measure: an upsert of 5,000 rows into 100M
reached 3.2 GiB. A ``pread`` copies only the bytes asked for into private memory that is freed after use.

:class:`Region` names where an array lies in its file; :func:`read_blocks` reads fixed-size blocks of it
(consecutive blocks in one call); :func:`blocks_of`, :func:`gather` and :func:`read_part` build on it;
:func:`take_mapped` does the same for the memory-mapped Arrow key columns. Arrays in memory are indexed as
usual.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from registry.arrays import arrow_array, unique_sorted

BLOCK_BYTES = 4096
"""Bytes per block read for a gather: one page."""
BATCH_BYTES = 8 << 20
"""At most this much is read into memory at once; a gather of many positions goes batch by batch."""
GAP_BYTES = 16 << 10
"""Blocks wanted this close are read with the blocks between them, in one call: a ``pread`` costs about as
much as copying 16 KiB (see :func:`with_gaps_filled`)."""


@dataclass(frozen=True)
class Region:
    """Where an array's elements lie in a file: element ``i`` at byte ``offset + i * stride``."""

    path: str
    offset: int
    dtype: np.dtype
    stride: int
    length: int
    fd: int | None = None
    """A descriptor of the very file that is mapped (see :func:`load_mapped`), or None: the path is opened."""


_HELD: dict[int, int] = {}
"""``id`` of a mapping made by :func:`load_mapped` -> a descriptor of its file, closed with the mapping."""


def load_mapped(path: Path) -> np.ndarray:
    """``np.load(path, mmap_mode="r")``, holding a descriptor of the same file for :func:`read_blocks`.

    Reading by path would fail once the file is gone: compaction drops the indexes no head reads while a
    commit that loaded the old head may still be looking keys up in them. A mapping keeps its file alive
    after an unlink, and so does this descriptor, opened first (a file replaced under the name between the
    two would only be an identical index: an index is derived from its object's bytes)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        array: np.ndarray = np.load(path, mmap_mode="r")
    except BaseException:
        os.close(fd)
        raise
    mapping = array.base
    if not isinstance(mapping, mmap.mmap):  # an empty array is not mapped
        os.close(fd)
        return array
    key = id(mapping)
    _HELD[key] = fd
    weakref.finalize(mapping, _release, key, fd)
    return array


def _release(key: int, fd: int) -> None:
    """Forget a mapping's descriptor (see :func:`load_mapped`) and close it."""
    if _HELD.get(key) == fd:
        del _HELD[key]
    _close(fd)


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def region_of(array: np.ndarray) -> Region | None:
    """The file region of a 1-D view into a read-only memory-mapped file (as ``np.load(..., mmap_mode="r")``
    opens it, field views of a structured array included); None for an array in memory."""
    if not isinstance(array, np.memmap) or array.ndim != 1 or array.filename is None or array.strides[0] <= 0:
        return None
    owner: object = array
    while isinstance(owner, np.ndarray) and not isinstance(owner.base, mmap.mmap):
        owner = owner.base
    if not isinstance(owner, np.memmap) or not isinstance(owner.base, mmap.mmap):
        return None
    mapped_from = owner.offset - owner.offset % mmap.ALLOCATIONGRANULARITY  # as numpy.memmap maps it
    mapped_at = np.frombuffer(owner.base, np.uint8).ctypes.data
    return Region(array.filename, mapped_from + array.ctypes.data - mapped_at, array.dtype, array.strides[0],
                  len(array), _HELD.get(id(owner.base)))


def read_blocks(region: Region, blocks: np.ndarray, block_len: int) -> np.ndarray:
    """``array[b * block_len:(b + 1) * block_len]`` for each of the sorted, distinct block numbers ``blocks``,
    concatenated (the array's last block may be short); each run of consecutive blocks is one ``pread``."""
    lengths = np.minimum(block_len, region.length - blocks.astype(np.int64) * block_len)
    if (lengths <= 0).any():
        raise IndexError(f"{region.path}: block beyond the array's {region.length} elements")
    starts = np.concatenate([[0], np.cumsum(lengths)])
    total = int(starts[-1])
    stride, item = region.stride, region.dtype.itemsize
    raw = np.empty(max(total * stride, 1), np.uint8)
    view = memoryview(raw.data)
    breaks = np.flatnonzero(np.diff(blocks) != 1) + 1
    firsts, lasts = np.concatenate([[0], breaks]), np.concatenate([breaks, [len(blocks)]])
    into = starts[firsts] * stride
    sizes = (starts[lasts] - starts[firsts] - 1) * stride + item
    from_ = region.offset + blocks[firsts].astype(np.int64) * (block_len * stride)
    with contextlib.ExitStack() as stack:
        fd = region.fd if region.fd is not None else stack.enter_context(open(region.path, "rb", buffering=0)).fileno()
        for at, size, offset in zip(into.tolist(), sizes.tolist(), from_.tolist(), strict=True):
            got = os.preadv(fd, [view[at:at + size]], offset)
            if got != size:
                raise OSError(f"{region.path}: short read ({got} of {size} bytes); the file changed under us")
    return np.ndarray((total,), region.dtype, buffer=raw, strides=(stride,))


def with_gaps_filled(blocks: np.ndarray, block_bytes: int) -> np.ndarray:
    """The sorted, distinct block numbers ``blocks`` with every gap of at most :data:`GAP_BYTES` between two
    of them filled in, so that :func:`read_blocks` reads them in one call (dense lookups, such as the ids
    hidden by 50 upper layers, would otherwise cost one call per few blocks)."""
    if len(blocks) < 2:
        return blocks
    gaps = np.diff(blocks) - 1
    fill = (gaps > 0) & (gaps <= GAP_BYTES // block_bytes)
    if not fill.any():
        return blocks
    counts = gaps[fill]
    extra = np.repeat(blocks[:-1][fill] + 1, counts) + (np.arange(int(counts.sum()))
                                                        - np.repeat(np.cumsum(counts) - counts, counts))
    return np.sort(np.concatenate([blocks, extra]))


def blocks_of(array: np.ndarray, blocks: np.ndarray, block_len: int) -> Iterator[tuple[slice, np.ndarray]]:
    """The blocks ``blocks`` (sorted, distinct) of ``array``, as :func:`read_blocks` gives them, in batches
    of at most :data:`BATCH_BYTES`: each batch's slice of ``blocks`` and its elements. An array in memory is
    indexed instead."""
    region = region_of(array)
    stride = region.stride if region is not None else max(array.dtype.itemsize, 1)
    for batch in _batches(len(blocks), block_len, stride):
        if region is not None:
            yield batch, read_blocks(region, blocks[batch], block_len)
        else:
            wanted = (blocks[batch].astype(np.int64)[:, None] * block_len + np.arange(block_len)).reshape(-1)
            yield batch, np.asarray(array[wanted[wanted < len(array)]])


def gather(array: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``array[positions]``; for a file-mapped array, read by ``pread`` of the pages that hold them (see
    :func:`gather_region`)."""
    region = region_of(array)
    if region is None:
        return np.array(array[np.asarray(positions, np.int64)])
    return gather_region(region, positions)


def gather_region(region: Region, positions: np.ndarray) -> np.ndarray:
    """Elements ``positions`` of a file region, read a page at a time, at most :data:`BATCH_BYTES` at once:
    the reader's RSS grows by what it gathers, not by the file."""
    positions = np.asarray(positions, np.int64)
    out = np.empty(len(positions), region.dtype)
    if not len(positions):
        return out
    if positions.min() < 0 or positions.max() >= region.length:
        raise IndexError(f"{region.path}: position out of range for an array of {region.length}")
    block_len = max(1, BLOCK_BYTES // region.stride)
    blocks = positions // block_len
    numbers = with_gaps_filled(unique_sorted(blocks), block_len * region.stride)
    inverse = np.searchsorted(numbers, blocks)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(numbers) + 1))
    for batch in _batches(len(numbers), block_len, region.stride):
        flat = read_blocks(region, numbers[batch], block_len)
        which = order[bounds[batch.start]:bounds[batch.stop]]
        out[which] = flat[(inverse[which] - batch.start) * block_len + positions[which] % block_len]
    return out


def _batches(count: int, block_len: int, stride: int) -> Iterator[slice]:
    """Slices of ``count`` blocks of ``block_len`` elements, each at most :data:`BATCH_BYTES` of them."""
    per_batch = max(1, BATCH_BYTES // (block_len * stride))
    for start in range(0, count, per_batch):
        yield slice(start, min(start + per_batch, count))


def read_part(array: np.ndarray, start: int, stop: int) -> np.ndarray:
    """A private copy of ``array[start:stop]``, read with a plain file read when ``array`` is file-mapped
    (a sequential pass over a mapped 100M-row index would otherwise add gigabytes to the reader's RSS)."""
    stop = min(stop, len(array))
    region = region_of(array)
    if region is None or stop <= start:
        return np.array(array[start:stop])
    part = Region(region.path, region.offset + start * region.stride, region.dtype, region.stride, stop - start,
                  region.fd)
    return np.ascontiguousarray(read_blocks(part, np.array([0]), stop - start))


# -- Arrow key columns --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MappedTable:
    """A table read from a memory-mapped Arrow IPC file, with where the mapping starts: a buffer's file
    offset is its address minus ``mapped_at``."""

    table: pa.Table
    path: str
    mapped_at: int
    fd: int | None = None
    """A descriptor of the mapped file (see :func:`load_mapped`), closed with this object."""


def open_mapped_table(path: str) -> MappedTable:
    """Memory-map an Arrow IPC file (pages are read only when touched), holding a descriptor of it."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        source = pa.memory_map(path, "r")
        table = pa.ipc.open_file(source).read_all()
        source.seek(0)
        mapped = MappedTable(table, path, source.read_buffer(source.size()).address, fd)
    except BaseException:
        os.close(fd)
        raise
    weakref.finalize(mapped, _close, fd)
    return mapped


def take_mapped(mapped: MappedTable, positions: np.ndarray) -> pa.Table:
    """``mapped.table.take(positions)``, reading the values with ``pread`` (see the module's docstring);
    columns of a type it does not handle are taken through the map."""
    def take(batch: pa.RecordBatch, local: np.ndarray) -> pa.RecordBatch:
        return pa.RecordBatch.from_arrays([_take_array(mapped, column, local) for column in batch.columns],
                                          schema=batch.schema)

    return take_by_batch(mapped.table, np.asarray(positions, np.int64), take)


def take_by_batch(table: pa.Table, positions: np.ndarray,
                  take: Callable[[pa.RecordBatch, np.ndarray], pa.RecordBatch]) -> pa.Table:
    """The rows at ``positions`` (in that order), each record batch asked only for its own rows by
    ``take(batch, positions within it)``: a chunked take would first concatenate every chunk."""
    batches = table.to_batches()
    bounds = np.cumsum([0] + [b.num_rows for b in batches])
    batch_of = np.searchsorted(bounds, positions, side="right") - 1
    order = np.argsort(batch_of, kind="stable")
    parts = []
    for number in unique_sorted(batch_of):
        which = order[batch_of[order] == number]
        parts.append(take(batches[int(number)], positions[which] - bounds[number]))
    if not parts:
        return table.schema.empty_table()
    taken = pa.Table.from_batches(parts, table.schema)
    return taken.take(arrow_array(np.argsort(order, kind="stable")))


_OFFSET_TYPES = {pa.string(): np.int32, pa.binary(): np.int32, pa.large_string(): np.int64,
                 pa.large_binary(): np.int64}


def _take_array(mapped: MappedTable, array: pa.Array, positions: np.ndarray) -> pa.Array:
    buffers = array.buffers()
    plain = array.null_count == 0 and array.offset == 0 and len(buffers) in (2, 3) and buffers[1] is not None
    if plain and array.type in _OFFSET_TYPES and buffers[2] is not None:
        return _take_variable(mapped, array, positions, _OFFSET_TYPES[array.type])
    if plain and len(buffers) == 2 and pa.types.is_primitive(array.type) and not pa.types.is_boolean(array.type):
        width = array.type.bit_width // 8
        values = gather_buffer(mapped, buffers[1], np.dtype(f"V{width}"), len(array), positions)
        return pa.Array.from_buffers(array.type, len(positions), [None, pa.py_buffer(values.tobytes())])
    return array.take(arrow_array(positions))


def _take_variable(mapped: MappedTable, array: pa.Array, positions: np.ndarray, offset_type: type) -> pa.Array:
    _, offsets_buffer, data_buffer = array.buffers()
    offsets = gather_buffer(mapped, offsets_buffer, np.dtype(offset_type), len(array) + 1,
                            np.stack([positions, positions + 1], axis=1).reshape(-1)).astype(np.int64)
    starts, ends = offsets[0::2], offsets[1::2]
    lengths = ends - starts
    new_offsets = np.concatenate([[0], np.cumsum(lengths)])
    used = lengths > 0
    if used.any():
        # Every byte wanted, as positions into the data buffer (keys are short: a few pages in all).
        spread = np.repeat(starts[used] - new_offsets[:-1][used], lengths[used]) + np.arange(int(new_offsets[-1]))
        data = gather_buffer(mapped, data_buffer, np.dtype(np.uint8), data_buffer.size, spread)
    else:
        data = np.zeros(0, np.uint8)
    return pa.Array.from_buffers(array.type, len(positions),
                                 [None, pa.py_buffer(new_offsets.astype(offset_type)), pa.py_buffer(data)])


def gather_buffer(mapped: MappedTable, buffer: pa.Buffer, dtype: np.dtype, length: int,
                  positions: np.ndarray) -> np.ndarray:
    """Elements ``positions`` of a buffer of ``mapped`` seen as ``length`` elements of ``dtype``."""
    return gather_region(Region(mapped.path, buffer.address - mapped.mapped_at, dtype, dtype.itemsize, length,
                                mapped.fd), positions)
