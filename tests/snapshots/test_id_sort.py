"""``argsort_ids`` is exactly numpy's stable argsort of 64-bit ids, ties in high bits and equal ids included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.snapshots import id_sort
from registry.snapshots.id_sort import argsort_ids

ids = st.lists(st.one_of(st.integers(0, 2**64 - 1), st.integers(0, 40), st.integers(2**64 - 40, 2**64 - 1),
                         st.integers(0, 2**20).map(lambda v: v << 44)), max_size=300)


@given(ids)
@settings(max_examples=300, deadline=None, derandomize=True)
def test_equals_numpys_stable_argsort(values: list[int]) -> None:
    array = np.array(values, dtype=np.uint64)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(id_sort, "PACKED_FROM", 0)  # the packed path for every size
        got = argsort_ids(array)
    assert got.dtype == np.int64
    assert got.tolist() == np.argsort(array, kind="stable").tolist()


def test_a_large_input_with_shared_high_bits_and_duplicates() -> None:
    rng = np.random.default_rng(5)
    array = rng.integers(0, 2**64 - 1, 200_000, dtype=np.uint64, endpoint=True)
    array[::7] = array[3]  # many equal ids
    array[1::11] = (array[1::11] >> np.uint64(30)) << np.uint64(30)  # share high bits with others
    array[2::13] = array[1::13] + np.uint64(1)
    assert argsort_ids(array).tolist() == np.argsort(array, kind="stable").tolist()
