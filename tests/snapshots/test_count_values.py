"""``ManifestReader.count_values`` against a count of the snapshot's rows as ``read`` gives them: text columns
are counted by their Parquet dictionary codes, others by value, over layers whose upper rows hide lower ones."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry import Registry
from tests.support.fresh_homes import fresh_registries
from tests.support.readers import reader_of

NAME = "counted"
SCHEMA = pa.schema([("k", pa.int64()), ("label", pa.string()), ("tag", pa.binary()), ("n", pa.int32())])
KEYS = list(range(40))

rows = st.tuples(st.one_of(st.none(), st.sampled_from(["cat", "dog", "", "ä"])),
                 st.one_of(st.none(), st.sampled_from([b"x", b"\x00y"])),
                 st.one_of(st.none(), st.integers(-2, 2)))
commits = st.lists(st.dictionaries(st.sampled_from(KEYS), rows, min_size=1, max_size=len(KEYS)),
                   min_size=1, max_size=4)


@pytest.fixture
def fresh(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[Callable[..., Registry]]:
    yield from fresh_registries(tmp_path_factory, monkeypatch, NAME, "k")


def _expected(table: pa.Table, column: str, as_type: pa.DataType | None) -> dict[Any, int]:
    values = table.column(column)
    if as_type is not None:
        values = values.cast(as_type)
    return dict(Counter(values.to_pylist()))


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(history=commits)
def test_counts_equal_a_count_of_the_rows_read(fresh: Callable[[], Registry], history: list[dict[int, Any]]) -> None:
    reg = fresh()
    for n, change in enumerate(history):
        table = pa.Table.from_pylist([{"k": k, "label": v[0], "tag": v[1], "n": v[2]} for k, v in change.items()],
                                     schema=SCHEMA)
        reg.commit(NAME, table, mode="replace" if n == 0 else "upsert")
    reader = reader_of(reg, NAME)
    rows = reg.read(NAME)
    for column, as_type in (("label", None), ("label", pa.string()), ("tag", None), ("n", None), ("n", pa.string())):
        assert reader.count_values(column, as_type) == _expected(rows, column, as_type), (column, as_type)


@pytest.fixture
def kinds(monkeypatch: pytest.MonkeyPatch) -> list[pa.DataType]:
    """The type of every array :meth:`ManifestReader.count_values` counts, in order."""
    import registry.snapshots.layer_reader as layer_reader

    seen: list[pa.DataType] = []
    real = layer_reader._count_into

    def spy(counts: dict[Any, int], values: Any, as_type: Any) -> None:
        seen.append(values.type)
        real(counts, values, as_type)

    monkeypatch.setattr(layer_reader, "_count_into", spy)
    return seen


def test_text_is_counted_by_its_dictionary_codes(fresh: Callable[[], Registry], kinds: list[pa.DataType]) -> None:
    """The label column reaches the counting as dictionary arrays, not one string per row."""
    reg = fresh()
    reg.commit(NAME, pa.table({"k": list(range(1000)), "label": [f"c{i % 7}" for i in range(1000)],
                               "tag": [b"t"] * 1000, "n": pa.array([1] * 1000, pa.int32())}))
    assert reader_of(reg, NAME).count_values("label", pa.string()) == {f"c{i}": 143 if i < 6 else 142 for i in range(7)}
    assert kinds and all(pa.types.is_dictionary(kind) for kind in kinds)


def test_a_column_of_mostly_distinct_text_switches_to_plain_reads(fresh: Callable[[], Registry],
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 kinds: list[pa.DataType]) -> None:
    """Read as codes, a column of distinct values makes pyarrow build a dictionary of every value (7x a plain
    read): after one such row group, the rest of the layer comes as plain text, and the counts stay right."""
    from registry.snapshots import layers

    monkeypatch.setattr(layers.write_parquet_object, "__defaults__", (100, None))
    reg = fresh()
    ids = [f"id-{i:04d}" for i in range(1000)]
    reg.commit(NAME, pa.table({"k": list(range(1000)), "label": ids, "tag": [b"t"] * 1000,
                               "n": pa.array([1] * 1000, pa.int32())}))
    reg.commit(NAME, pa.table({"k": [0, 500], "label": ["id-0001", None], "tag": [b"t"] * 2,
                               "n": pa.array([1, 2], pa.int32())}), mode="upsert")
    reader = reader_of(reg, NAME)
    assert reader.count_values("label") == _expected(reg.read(NAME), "label", None)
    base_groups = kinds[:10]  # the base layer: 10 row groups of 100 rows
    assert pa.types.is_dictionary(base_groups[0]) and base_groups[1:] == [pa.string()] * 9, kinds
