"""Sorted distinct values of integer arrays (ids, layer numbers, block numbers) and numpy arrays as Arrow
arrays, without ``np.unique`` or ``pa.array``.

Both import ``numpy.ma`` the first time a process calls them (numpy 2.4; ``pa.array`` asks whether a numpy
argument is masked): about 20 ms, paid by the first diff, label diff or commit of every CLI process. The
engine's arrays are plain integer or boolean arrays, which a sort and one comparison make distinct as fast,
and whose buffers Arrow can take as they are.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["arrow_array", "union_sorted", "unique_sorted"]


def unique_sorted(values: np.ndarray) -> np.ndarray:
    """The distinct values of an integer array, sorted, as ``np.unique(values)`` gives them (a new array)."""
    return _distinct(np.sort(np.asarray(values).ravel()))


def union_sorted(*arrays: np.ndarray) -> np.ndarray:
    """The distinct values of integer arrays, sorted (``uint64`` when there are none). Fastest when each is
    sorted already: a merge of runs (timsort finds them), where ``np.union1d`` would hash and sort everything
    again."""
    parts = [np.asarray(array).ravel() for array in arrays if len(array)]
    if not parts:
        return np.zeros(0, np.uint64)
    if len(parts) == 1:
        return _distinct(parts[0]) if _is_sorted(parts[0]) else unique_sorted(parts[0])
    return _distinct(np.sort(np.concatenate(parts), kind="stable"))


def _is_sorted(values: np.ndarray) -> bool:
    return bool(len(values) < 2 or (values[1:] >= values[:-1]).all())


def _distinct(ordered: np.ndarray) -> np.ndarray:
    """``ordered`` (sorted) without repeats; itself when it has none."""
    if len(ordered) < 2:
        return ordered
    keep = np.empty(len(ordered), bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered if keep.all() else ordered[keep]


def arrow_array(values: np.ndarray) -> pa.Array:
    """A 1-D numpy array of numbers or booleans as an Arrow array (no nulls; numbers share its memory).

    Unlike ``pa.array(values)``, which asks whether ``values`` is a masked array and so imports ``numpy.ma``
    the first time (about 20 ms)."""
    values = np.ascontiguousarray(values)
    if values.dtype == np.bool_:  # Arrow packs booleans into bits
        bits = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)])
