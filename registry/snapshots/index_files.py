"""Index arrays written front to back: ``.npy`` files of a known length, and sorted index entries.

A commit or compaction that streams a table writes its index (see :class:`registry.snapshots.layers.LayerIndex`)
as it goes. Plain sequential writes keep those pages out of the writer's resident memory, where a
memory-mapped output counts every page it touches.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

import numpy as np

from registry.snapshots.layers import ENTRY_DTYPE, FENCE

__all__ = ["EntriesWriter", "NpyWriter", "merge_entries"]


class NpyWriter:
    """A ``.npy`` file of ``length`` values of ``dtype``, appended a part at a time (``np.load`` reads it)."""

    def __init__(self, path: Path, dtype: np.dtype | type, length: int) -> None:
        self.path = path
        self.dtype = np.dtype(dtype)
        self.length = length
        self.written = 0
        self._file = open(path, "wb")  # noqa: SIM115 - closed by close()
        np.lib.format.write_array_header_1_0(self._file, {
            "descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": (length,)})

    def append(self, values: np.ndarray) -> None:
        """Write the next ``len(values)`` values."""
        if self.written + len(values) > self.length:
            raise ValueError(f"{self.path.name}: {self.written + len(values)} values for a file of {self.length}")
        self._file.write(np.ascontiguousarray(values, self.dtype).data)
        self.written += len(values)

    def close(self) -> None:
        """Close the file; it must hold exactly ``length`` values."""
        self._file.close()
        if self.written != self.length:
            raise ValueError(f"{self.path.name}: {self.written} values written for a file of {self.length}")

    def abandon(self) -> None:
        """Close without the length check (the file will be thrown away)."""
        self._file.close()

    def __enter__(self) -> NpyWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, _exc: BaseException | None,
                 _tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self.abandon()


class EntriesWriter(NpyWriter):
    """An index's ``entries.npy``, written in key-hash order, and its fences (every ``FENCE``-th key hash)."""

    def __init__(self, folder: Path, length: int) -> None:
        super().__init__(folder / "entries.npy", ENTRY_DTYPE, length)
        self.folder = folder
        self._fences: list[np.ndarray] = []

    def append(self, values: np.ndarray) -> None:
        self._fences.append(np.array(values["kh"][(-self.written) % FENCE::FENCE]))
        super().append(values)

    def close(self) -> None:
        """Close ``entries.npy`` and write ``fences.npy`` beside it."""
        super().close()
        fences = np.concatenate(self._fences) if self._fences else np.zeros(0, np.uint64)
        np.save(self.folder / "fences.npy", np.ascontiguousarray(fences, np.uint64))


def merge_entries(chunks: Iterable[np.ndarray], few: np.ndarray) -> Iterator[np.ndarray]:
    """Sorted ``chunks`` of entries (each sorted by key hash, in order) with the sorted entries ``few``
    merged among them, a chunk at a time: memory is a chunk and ``few``, never the whole array."""
    taken = 0
    for chunk in chunks:
        if not len(chunk):
            continue
        upto = int(np.searchsorted(few["kh"], chunk["kh"][-1], side="right"))
        if upto == taken:
            yield chunk
            continue
        merged = np.concatenate([chunk, few[taken:upto]])
        yield np.take(merged, np.argsort(merged["kh"], kind="stable"))  # take: ten times faster on records
        taken = upto
    if taken < len(few):
        yield few[taken:]
