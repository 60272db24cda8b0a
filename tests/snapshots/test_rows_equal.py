"""``rows_equal`` decides "unchanged" (invariant 11): nulls equal nulls, NaN equals NaN, anything else by
value, whatever the two tables' chunk layouts (a commit compares a slice of its input with a parent row group)."""

from __future__ import annotations

import math

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.snapshots.identity import rows_equal

cells = st.tuples(st.sampled_from(["a", "b", None]), st.sampled_from([0.5, math.nan, None, -1.0]),
                  st.sampled_from([1, 2, None]))


def _table(rows: list[tuple[object, object, object]], cut: int) -> pa.Table:
    table = pa.table({"s": pa.array([r[0] for r in rows], pa.string()),
                      "f": pa.array([r[1] for r in rows], pa.float64()),
                      "i": pa.array([r[2] for r in rows], pa.int64())})
    cut = min(cut, table.num_rows)
    return pa.concat_tables([table.slice(0, cut), table.slice(cut)])  # two chunks


def _same(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@given(st.lists(st.tuples(cells, cells), max_size=40), st.integers(0, 40), st.integers(0, 40))
@settings(max_examples=300, deadline=None, derandomize=True)
def test_rows_equal_is_cell_by_cell_equality(pairs: list[tuple[tuple, tuple]], cut_a: int, cut_b: int) -> None:
    left, right = _table([a for a, _ in pairs], cut_a), _table([b for _, b in pairs], cut_b)
    want = [all(_same(x, y) for x, y in zip(a, b, strict=True)) for a, b in pairs]
    assert rows_equal(left, right, ["s", "f", "i"]).tolist() == want
    assert rows_equal(left, right, []).tolist() == [True] * len(pairs)


def test_a_missing_or_incomparable_column_is_a_difference() -> None:
    left = pa.table({"k": ["x", "y"], "v": pa.array([[1], [2]], pa.list_(pa.int64()))})
    right = pa.table({"k": ["x", "y"], "v": pa.array([[1], [3]], pa.list_(pa.int64()))})
    assert rows_equal(left, right, ["k", "v"]).tolist() == [True, False]  # nested: compared as values
    assert rows_equal(left, right.drop_columns(["v"]), ["k", "v"]).tolist() == [False, False]
    mixed = pa.table({"k": ["x", "y"], "v": pa.array([{"a": 1}, {"a": 2}])})
    assert rows_equal(left, mixed, ["v"]).tolist() == [False, False]  # list vs struct: no cast
