"""The array helpers equal what numpy and pyarrow give, and keep ``numpy.ma`` out of the process."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.arrays import arrow_array, union_sorted, unique_sorted
from registry.prefetch import prefetched

ids = st.lists(st.one_of(st.integers(0, 2**64 - 1), st.integers(0, 20)), max_size=200)


@given(ids)
@settings(max_examples=200, deadline=None, derandomize=True)
def test_unique_sorted_equals_np_unique(values: list[int]) -> None:
    array = np.array(values, dtype=np.uint64)
    got = unique_sorted(array)
    assert got.dtype == np.uint64 and got.tolist() == np.unique(array).tolist()


@given(ids, ids, st.booleans())
@settings(max_examples=200, deadline=None, derandomize=True)
def test_union_sorted_equals_np_union1d(a: list[int], b: list[int], presorted: bool) -> None:
    left, right = np.array(a, dtype=np.uint64), np.array(b, dtype=np.uint64)
    if presorted:
        left, right = np.sort(left), np.sort(right)
    assert union_sorted(left, right).tolist() == np.union1d(left, right).tolist()
    assert union_sorted(right).tolist() == np.unique(right).tolist()  # one array, sorted or not
    assert union_sorted().dtype == np.uint64 and union_sorted().size == 0


@pytest.mark.parametrize("array", [
    np.array([True, False, True, True, False, False, False, True, True], bool),
    np.arange(20, dtype=np.int64)[3::4],  # a strided view
    np.array([2**64 - 1, 0, 7], np.uint64),
    np.array([0.5, -1.0, np.nan], np.float64),
    np.array([1, 2], np.int32),
    np.zeros(0, bool),
], ids=["bool", "strided", "uint64", "float", "int32", "empty"])
def test_arrow_array_equals_pa_array(array: np.ndarray) -> None:
    got = arrow_array(array)
    assert got.type == pa.array(array).type and got.null_count == 0
    assert got.to_pylist() == pa.array(array).to_pylist() or np.isnan(array).any()
    assert np.array_equal(got.to_numpy(zero_copy_only=False), array, equal_nan=array.dtype.kind == "f")


def test_prefetched_keeps_order_and_raises_where_the_item_would_have() -> None:
    def items() -> object:
        yield from range(5)
        raise ValueError("the sixth item is broken")

    seen: list[int] = []
    with pytest.raises(ValueError, match="sixth"):
        for item in prefetched(iter(items())):  # type: ignore[call-overload]
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]
    assert list(prefetched(iter([]))) == []


def test_prefetched_stops_producing_when_the_caller_stops() -> None:
    produced: list[int] = []

    def items() -> object:
        for i in range(100):
            produced.append(i)
            yield i

    for item in prefetched(iter(items())):  # type: ignore[call-overload]
        if item == 2:
            break
    assert produced == [0, 1, 2, 3]  # the item after the last one taken, and no more


def test_a_label_diff_and_a_diff_import_neither_numpy_ma_nor_acero(tmp_path: object) -> None:
    """Each costs a fresh process 10-20 ms: ``numpy.ma`` (imported by ``np.unique`` and by ``pa.array`` of a
    numpy array) and pyarrow's Acero engine (``Table.group_by``)."""
    code = f"""
import sys
from registry.arrow_setup import hide_pandas
hide_pandas()
import pyarrow as pa
from registry import Registry
reg = Registry.init({str(tmp_path)!r})
reg.create_dataset("labels", "sample_id")
n = 3000
v1 = {{"sample_id": [f"s{{i}}" for i in range(n)], "label": ["cat", "dog", "emu"] * (n // 3)}}
reg.commit("labels", pa.table(v1))
reg.tag("labels@main", "v1")
reg.commit("labels", pa.table({{"sample_id": [f"s{{i}}" for i in range(0, n, 7)] + ["new"],
                                "label": ["owl"] * len(range(0, n, 7)) + ["cat"]}}), mode="upsert")
reg.tag("labels@main", "v2")
before = {{m for m in ("numpy.ma", "pyarrow.acero") if m in sys.modules}}
d = reg.label_diff("labels@v1", "labels@v2")
e = reg.diff("labels@v1", "labels@v2")
assert d.relabeled == len(range(0, n, 7)) and e.changed == d.relabeled and e.added == 1, (d.relabeled, e.changed)
print(sorted(before), sorted(m for m in ("numpy.ma", "pyarrow.acero") if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    before, after = done.stdout.strip().split("] [")
    assert after.strip("[]") == "", f"loaded {after}; before the diffs: {before}"
