"""Reading a layered snapshot: rows hidden by upper layers (upserts, deletes) are cut out of each row group
of the layers below, by zero-copy slices when few and by a filter when many; both give exactly the rows of
a plain model of the table, in the documented order, for files of one and of many row groups."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from registry import Registry
from registry.snapshots import layer_reader
from registry.snapshots.layer_reader import _visible_row_groups
from tests.support.readers import reader_of

NAME = "layered"


def _rows(ids: range | list[int], label: str) -> pa.Table:
    ids = list(ids)
    return pa.table({"sample_id": [f"s{i:05d}" for i in ids], "label": [f"{label}{i % 5}" for i in ids],
                     "score": pa.array([float(i) for i in ids])})


@pytest.mark.parametrize("slice_limit", [0, 10**9], ids=["filter", "slices"])
@pytest.mark.parametrize("row_group_size", [7, 10_000])
def test_cutting_hidden_rows_out_of_row_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               slice_limit: int, row_group_size: int) -> None:
    monkeypatch.setattr(layer_reader, "SLICE_LIMIT", slice_limit)
    table = _rows(range(100), "a")
    path = tmp_path / "layer.parquet"
    pq.write_table(table, path, row_group_size=row_group_size)
    rng = np.random.default_rng(7)
    for hidden in (np.zeros(0, np.int64), np.array([0, 6, 7, 13, 14, 99]), np.sort(rng.choice(100, 60, replace=False)),
                   np.arange(100)):
        keep = np.ones(100, bool)
        keep[hidden] = False
        with ThreadPoolExecutor(max_workers=2) as pool:
            parts = [future.result() for future in _visible_row_groups(pool, str(path), None, lambda h=hidden: h)]
        got = pa.concat_tables(parts)
        assert got.equals(table.filter(pa.array(keep))), hidden


@pytest.mark.parametrize("slice_limit", [0, 10**9], ids=["filter", "slices"])
def test_a_layered_read_equals_the_model(reg: Registry, monkeypatch: pytest.MonkeyPatch, slice_limit: int) -> None:
    monkeypatch.setattr(layer_reader, "SLICE_LIMIT", slice_limit)
    reg.create_dataset(NAME, "sample_id")
    model = {row["sample_id"]: row for row in _rows(range(3000), "base").to_pylist()}
    reg.commit(NAME, _rows(range(3000), "base"), message="base")
    upserted = _rows(list(range(0, 3000, 3)) + list(range(3000, 3100)), "up")
    reg.commit(NAME, upserted, mode="upsert", message="upsert")
    model.update({row["sample_id"]: row for row in upserted.to_pylist()})
    deleted = [f"s{i:05d}" for i in range(1, 3000, 7)]
    reg.commit(NAME, None, mode="upsert", delete_keys=pa.table({"sample_id": deleted}), message="deletes")
    for key in deleted:
        model.pop(key, None)
    got = reg.read(NAME)
    assert got.num_rows == len(model)
    assert sorted(got.to_pylist(), key=lambda r: r["sample_id"]) == [model[k] for k in sorted(model)]
    assert reg.read(NAME, columns=["label"]).column("label").to_pylist() == got.column("label").to_pylist()


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_a_layered_export_streams_the_rows_of_the_read(reg: Registry, monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path, suffix: str) -> None:
    """Export reads one row group at a time (layers of 100-row groups here) and writes Parquet in row groups of
    at most ``EXPORT_ROW_GROUP_ROWS`` (250 here); the file holds exactly the rows of a read, in its order."""
    from registry.snapshots import layers, tables

    monkeypatch.setattr(layers.write_parquet_object, "__defaults__", (100, None))
    monkeypatch.setattr(tables, "EXPORT_ROW_GROUP_ROWS", 250)
    reg.create_dataset(NAME, "sample_id")
    reg.commit(NAME, _rows(range(3000), "base"), message="base")
    reg.commit(NAME, _rows(list(range(0, 3000, 3)) + list(range(3000, 3100)), "up"), mode="upsert")
    reg.commit(NAME, None, mode="upsert", delete_keys=pa.table({"sample_id": [f"s{i:05d}" for i in range(1, 3000, 7)]}))
    expected = reg.read(NAME)
    out = tmp_path / f"export{suffix}"
    assert reg.export(NAME, out) == expected.num_rows
    if suffix == ".parquet":
        assert pq.read_table(out).equals(expected)
        groups = pq.ParquetFile(out).metadata
        sizes = [groups.row_group(i).num_rows for i in range(groups.num_row_groups)]
        assert len(sizes) > 1 and max(sizes) <= 250
    elif suffix == ".csv":
        import pyarrow.csv as pacsv

        assert pacsv.read_csv(out).column("sample_id").to_pylist() == expected.column("sample_id").to_pylist()
        assert pacsv.read_csv(out).column("label").to_pylist() == expected.column("label").to_pylist()
    else:
        import json

        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert lines == expected.to_pylist()
    base = pq.ParquetFile(next(p for p in (reg.home / "objects").rglob("*") if p.is_file() and _rows_object(p)))
    assert base.metadata.num_row_groups > 1  # the layers really were written in many row groups


def _rows_object(path: Path) -> bool:
    try:
        return pq.ParquetFile(path).metadata.num_rows == 3000
    except Exception:  # noqa: BLE001 - manifests and other objects are not Parquet
        return False


def test_fetching_scattered_rows_keeps_one_row_group_at_a_time(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows fetched from many row groups, in any order and with repeats, are exactly the rows asked for."""
    from registry.snapshots import layers
    from registry.snapshots.hashing import key_hash

    monkeypatch.setattr(layers.write_parquet_object, "__defaults__", (7, None))
    reg.create_dataset(NAME, "sample_id")
    table = _rows(range(200), "a")
    reg.commit(NAME, table)
    reader = reader_of(reg, NAME)
    assert pq.ParquetFile(reader.layer_path(0)).metadata.num_row_groups > 20
    wanted = np.random.default_rng(3).choice(200, 60, replace=True)
    kh = key_hash(table, ["sample_id"])[wanted]
    assert reader.fetch(kh).to_pylist() == table.take(pa.array(wanted)).to_pylist()
    assert reader.fetch(kh, columns=["label"]).column("label").to_pylist() == \
        table.column("label").take(pa.array(wanted)).to_pylist()
