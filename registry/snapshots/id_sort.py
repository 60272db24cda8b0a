"""``argsort_ids``: the stable sort order of 64-bit ids, several times faster than ``np.argsort``.

numpy sorts plain ``uint64`` values with vectorised (AVX2/AVX-512) kernels, but an argsort of them with a
comparison sort: on 10M ids ``np.sort`` takes about 0.16 s, ``np.argsort(kind="stable")`` 1.8 s. So the
position of each id is packed into the low bits of a copy of it, the copies are sorted as values, and the
positions read back; rows whose ids agree in the remaining high bits (few: about n^2 / 2^(65-b) for n
rows and b position bits) are then put in id order among themselves. The result is exactly
``np.argsort(ids, kind="stable")``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["argsort_ids"]

PACKED_FROM = 1 << 16
"""Below this many ids numpy's argsort is as fast and the packing is not worth it."""


def argsort_ids(ids: np.ndarray) -> np.ndarray:
    """The indices that sort ``ids`` (``uint64``), equal ids in their original order, as ``int64``."""
    n = len(ids)
    if n < PACKED_FROM or ids.dtype != np.uint64:
        return np.argsort(ids, kind="stable")
    # In place where possible: on a virtual machine a fresh 80 MB array costs more than the sort itself.
    bits = np.uint64(int(n - 1).bit_length())
    packed = ids >> bits
    packed <<= bits
    scratch = np.arange(n, dtype=np.uint64)
    packed |= scratch
    packed.sort()
    high = np.right_shift(packed, bits, out=scratch)
    tied = high[1:] == high[:-1]
    packed &= np.uint64((1 << int(bits)) - 1)
    order = packed.view(np.int64)  # positions < 2**63: the same bits as int64
    if tied.any():
        # Runs of equal high bits are in position order: order each run by the full id (stable).
        in_run = np.zeros(n, bool)
        in_run[:-1] |= tied
        in_run[1:] |= tied
        where = np.flatnonzero(in_run)
        run = np.cumsum(np.concatenate([[True], ~tied[where[:-1]]]))  # run number of each tied element
        members = order[where]
        order[where] = members[np.lexsort((members, ids[members], run))]
    return order
