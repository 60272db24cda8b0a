"""The streamed first commit of a Parquet file (``registry.snapshots.first_commit``) against the general path.

The same rows committed from a file (streamed: a row group at a time, ids sorted in buckets by their top
bits) and from an in-memory table (the general commit path) must give the same content, the same index
(entries, fences, cell hashes, key columns, alternate ids) and the same errors for bad input, and a refused
input must leave nothing behind. Colliding keys are a real pair (``tests/support/collisions.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from registry import Registry
from registry.errors import InvalidInput, NotFound, TooLarge
from registry.lineage.metrics import ColumnMetrics, column_metrics
from registry.snapshots.first_commit import BUCKETS
from registry.snapshots.layers import KEYS_FILE, alt_ids_of, read_keys
from registry.snapshots.tables import read_table_file
from tests.support.collisions import colliding_keys
from tests.support.helpers import labels_table

A, B, _ = colliding_keys()
NAME = "signs"


def _homes(tmp_path: Path, key: str | list[str] = "sample_id") -> tuple[Registry, Registry]:
    """Two fresh registries with one empty dataset each: one commits files, the other tables."""
    found = []
    for way in ("streamed", "general"):
        reg = Registry.init(tmp_path / way)
        reg.create_dataset(NAME, key)
        found.append(reg)
    return found[0], found[1]


def _table(n: int, seed: int = 3) -> pa.Table:
    """Every kind of column the streamed path normalizes or hashes differently: nulls, NaN, a dictionary,
    second-resolution timestamps (stored as milliseconds), booleans, a list column."""
    rng = np.random.default_rng(seed)
    base = labels_table(n, seed=seed)
    score = rng.random(n)
    score[::97] = np.nan
    return base.append_column("score", pa.array(score)) \
        .append_column("note", pa.array([None if i % 7 == 0 else f"n{i % 13}" for i in range(n)])) \
        .append_column("split", pa.array([("train", "val", "test")[i % 3] for i in range(n)]).dictionary_encode()) \
        .append_column("seen", pa.array((1_700_000_000 + rng.integers(0, 10**6, n)).astype("datetime64[s]"))) \
        .append_column("flag", pa.array(rng.random(n) < 0.5)) \
        .append_column("tags", pa.array([[f"t{i % 5}"] * (i % 3) for i in range(n)], pa.list_(pa.string())))


def _bits(table: pa.Table) -> pa.Table:
    """``table`` with float columns as their bits, so NaN equals NaN in ``Table.equals``."""
    for i, field in enumerate(table.schema):
        if pa.types.is_float64(field.type):
            bits = table.column(i).combine_chunks().to_numpy(zero_copy_only=False).view(np.uint64)
            table = table.set_column(i, field.name, pa.array(bits))
    return table


def _layer(reg: Registry) -> tuple[str, Path]:
    """The head's only rows object and its index folder."""
    from registry.db import transaction
    from registry.models import SnapshotRow

    with transaction(reg.ctx.engine, readonly=True) as session:
        row = session.get(SnapshotRow, reg.show(NAME).id)
        assert row is not None
        sha = row.change_sha256
    return sha, reg.ctx.cache.folder / sha


def _index_files(folder: Path) -> dict[str, object]:
    """An index folder's contents, loaded: every array, the column list and the key columns."""
    found: dict[str, object] = {p.stem: np.load(p) for p in folder.glob("*.npy")}
    found["columns"] = json.loads((folder / "columns.json").read_text())
    keys = read_keys(folder / KEYS_FILE)
    assert keys is not None
    found["keys"] = keys.combine_chunks().to_pydict()
    return found


def _assert_same_index(left: dict[str, object], right: dict[str, object]) -> None:
    assert sorted(left) == sorted(right)
    for name, value in left.items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(value, right[name]), name  # type: ignore[arg-type]
        else:
            assert value == right[name], name


def _leftovers(reg: Registry) -> list[Path]:
    """Staging files in the store and scratch folders in the index cache."""
    store_tmp = sorted((reg.home / "objects" / "tmp").glob("*"))
    cache = reg.ctx.cache.folder
    return store_tmp + (sorted(cache.glob(".*")) if cache.is_dir() else [])


def _objects(reg: Registry) -> set[str]:
    root = reg.home / "objects"
    return {p.name for p in root.rglob("*") if p.is_file() and "tmp" not in p.parts}


@pytest.mark.parametrize(("rows", "row_group"), [(6_000, 700), (2_300_000, 400_000)])
def test_the_streamed_first_commit_writes_what_the_general_path_writes(tmp_path: Path, rows: int,
                                                                       row_group: int) -> None:
    """Content, counts, index and footer agree; the larger case spans three streamed parts (1Mi rows each)
    cut across the input's row groups."""
    table = _table(rows) if rows < 10_000 else labels_table(rows, seed=3)
    if rows < 10_000:  # a real hash collision: the later key (by value) takes an alternate id on both paths
        ids = table.column("sample_id").to_pylist()
        ids[10], ids[4000] = A, B
        table = table.set_column(0, "sample_id", pa.array(ids))
    path = tmp_path / "in.parquet"
    pq.write_table(table, path, row_group_size=row_group)
    streamed, general = _homes(tmp_path)
    notes: list[str] = []
    left = streamed.commit(NAME, path, message="v1", progress=notes.append)
    right = general.commit(NAME, pq.read_table(path), message="v1")
    assert f"read {rows:,} of {rows:,} rows" in notes  # the streamed path ran
    assert (left.added, left.changed, left.removed, left.rows) == (right.added, right.changed, right.removed,
                                                                   right.rows) == (rows, 0, 0, rows)
    assert (left.schema_version, left.compatibility) == (right.schema_version, right.compatibility)
    assert [(v.fingerprint, v.columns) for v in streamed.schema(NAME)] == \
        [(v.fingerprint, v.columns) for v in general.schema(NAME)]
    assert _bits(streamed.read(NAME)).equals(_bits(general.read(NAME)))
    (left_sha, left_folder), (right_sha, right_folder) = _layer(streamed), _layer(general)
    streamed_index, general_index = _index_files(left_folder), _index_files(right_folder)
    _assert_same_index(streamed_index, general_index)
    footer = [alt_ids_of(pq.ParquetFile(reg.ctx.store.local_path(sha)).metadata.metadata)
              for reg, sha in ((streamed, left_sha), (general, right_sha))]
    assert all(np.array_equal(a, b) for a, b in zip(*footer, strict=True))
    if rows < 10_000:
        assert len(footer[0][0]) == 1 and "alt" in streamed_index
    # The index is derived data: rebuilt from the streamed object's bytes alone, it is the same.
    streamed.ctx.cache.drop(left_sha)
    streamed.ctx.cache.rebuild_rows(left_sha, ["sample_id"])
    _assert_same_index(_index_files(left_folder), streamed_index)
    assert streamed.verify().ok and general.verify().ok
    assert _leftovers(streamed) == []


def _with_duplicates() -> pa.Table:
    """Duplicates in three groups, one of them mixed with a colliding key (A, B, A): the general path names
    them in id order."""
    table = labels_table(3_000, seed=5)
    ids = table.column("sample_id").to_pylist()
    ids[7], ids[1500], ids[2999] = A, B, A
    ids[100] = ids[20]
    ids[2000] = ids[1999] = ids[30]
    return table.set_column(0, "sample_id", pa.array(ids))


def _assert_duplicates_refused_alike(streamed: Registry, general: Registry, path: Path, table: pa.Table) -> None:
    """Committing the file (streamed) and the table (general path) is refused with the same duplicate-key error."""
    with pytest.raises(InvalidInput) as streamed_error:
        streamed.commit(NAME, path)
    with pytest.raises(InvalidInput) as general_error:
        general.commit(NAME, table)
    assert "duplicate key(s)" in str(streamed_error.value)
    assert str(streamed_error.value) == str(general_error.value)


@pytest.mark.parametrize("make", [_with_duplicates, lambda: labels_table(2_000).take(list(range(2_000)) * 2)],
                         ids=["three-groups", "every-key-twice"])
def test_duplicate_keys_get_the_general_paths_error_and_leave_nothing(tmp_path: Path, make: object) -> None:
    table = make()  # type: ignore[operator]
    path = tmp_path / "dup.parquet"
    pq.write_table(table, path, row_group_size=512)
    streamed, general = _homes(tmp_path)
    before = _objects(streamed)
    _assert_duplicates_refused_alike(streamed, general, path, table)
    assert _objects(streamed) == before and _leftovers(streamed) == []
    with pytest.raises(NotFound, match="no snapshots"):
        streamed.log(NAME)


def test_null_and_empty_keys_get_the_general_paths_error(tmp_path: Path) -> None:
    """An empty second key column early, nulls in the first key column later (in other row groups): the
    first key column's nulls are named, with their count over the whole file."""
    table = pa.table({"source": [f"s{i % 50}" for i in range(4_000)], "item": [f"i{i}" for i in range(4_000)],
                      "label": ["x"] * 4_000})
    items = table.column("item").to_pylist()
    items[10] = ""
    sources = table.column("source").to_pylist()
    sources[2500] = sources[3999] = None
    table = table.set_column(1, "item", pa.array(items)).set_column(0, "source", pa.array(sources))
    path = tmp_path / "bad.parquet"
    pq.write_table(table, path, row_group_size=300)
    streamed, general = _homes(tmp_path, ["source", "item"])
    without_nulls = table.set_column(0, "source", pa.array([f"s{i % 50}" for i in range(4_000)]))
    for bad_table, expected in ((table, "key column 'source' has 2 null value(s), first at row 2501"),
                                (without_nulls, "key column 'item' has an empty value at row 11")):
        pq.write_table(bad_table, path, row_group_size=300)
        with pytest.raises(InvalidInput) as streamed_error:
            streamed.commit(NAME, path)
        with pytest.raises(InvalidInput) as general_error:
            general.commit(NAME, bad_table)
        assert str(streamed_error.value) == str(general_error.value) == f"input: {expected}"
        assert _leftovers(streamed) == []


def test_a_missing_key_column_and_the_input_limits_are_checked_before_anything_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "in.parquet"
    pq.write_table(labels_table(5_000), path, row_group_size=1_000)
    streamed, _ = _homes(tmp_path, "item")
    with pytest.raises(InvalidInput, match="item"):
        streamed.commit(NAME, path)
    monkeypatch.setenv("REGISTRY_MAX_INPUT_ROWS", "4999")
    limited = Registry.open(streamed.home)
    limited.create_dataset("other", "sample_id")
    with pytest.raises(TooLarge, match="5,000 rows"):
        limited.commit("other", path)
    assert _leftovers(limited) == []
    with pytest.raises(NotFound, match="no snapshots"):
        limited.log("other")


def test_every_bucket_is_used_and_sorted(tmp_path: Path) -> None:
    """The ids' top bits spread 20,000 keys over all buckets, and the written entries are sorted by id
    with every file row once (an index the lookups can bisect)."""
    path = tmp_path / "in.parquet"
    pq.write_table(labels_table(20_000), path, row_group_size=3_000)
    streamed, _ = _homes(tmp_path)
    streamed.commit(NAME, path)
    entries = np.load(_layer(streamed)[1] / "entries.npy")
    assert np.all(entries["kh"][1:] > entries["kh"][:-1])
    assert np.array_equal(np.sort(entries["row"]), np.arange(20_000))
    assert len(np.unique(entries["kh"] >> np.uint64(64 - 6))) == BUCKETS


def test_column_metrics_counted_in_parts_equal_the_whole_tables() -> None:
    table = _table(3_000)
    whole = column_metrics(table, 100_000)
    parts = ColumnMetrics(table.column_names, table.num_rows, 100_000)
    for start in range(0, 3_000, 700):
        parts.add(table.slice(start, 700))
    assert parts.result() == whole
    assert whole["note"]["nullCount"] > 0
    assert whole["annotator_id"]["distinctCount"] == len(set(table.column("annotator_id").to_pylist())) > 1
    assert "distinctCount" not in ColumnMetrics(["label"], 3_000, 2_999).add(table).result()["label"]


def test_a_damaged_page_is_bad_input_like_the_general_paths_and_leaves_nothing(tmp_path: Path) -> None:
    """The footer is whole, but a data page in the middle does not decode: the same "cannot read as parquet"
    error (InvalidInput, exit 2) as a file read whole, not an internal error, and nothing left behind."""
    path = tmp_path / "damaged.parquet"
    pq.write_table(labels_table(200_000), path, row_group_size=50_000)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4_000] = b"\xff" * 4_000
    path.write_bytes(bytes(data))
    streamed, _ = _homes(tmp_path)
    with pytest.raises(InvalidInput) as streamed_error:
        streamed.commit(NAME, path)
    with pytest.raises(InvalidInput) as whole_error:  # how the general path reads a file
        read_table_file(path)
    assert type(streamed_error.value) is InvalidInput
    assert str(streamed_error.value) == str(whole_error.value)
    assert f"{path}: cannot read as parquet: " in str(streamed_error.value)
    assert _leftovers(streamed) == []
    with pytest.raises(NotFound, match="no snapshots"):
        streamed.log(NAME)
