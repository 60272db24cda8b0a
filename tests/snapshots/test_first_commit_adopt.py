"""A first commit of a file that already is what a rows object is: its bytes are stored as they are.

``registry.snapshots.first_commit.adoptable`` decides (zstd, the normalized Arrow schema in the footer, row
groups of a size the registry reads); the rows are then read back from the copy in the store's staging
area. Each case is checked against the general path (an in-memory table of the same rows): the same
content, the same index, the same errors; and against the input's own bytes (stored as they are, or not).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from registry import Registry
from registry.errors import InvalidInput, NotFound
from registry.snapshots import first_commit
from registry.snapshots.inputs import InputLimits
from registry.snapshots.layers import alt_ids_of
from registry.snapshots.tables import read_table_file
from registry.storage.base import HashingFile
from tests.snapshots.test_first_commit import (
    NAME,
    A,
    B,
    _assert_duplicates_refused_alike,
    _assert_same_index,
    _bits,
    _homes,
    _index_files,
    _layer,
    _leftovers,
    _objects,
)
from tests.support.helpers import labels_table

GROUP = 700
"""Row groups of the test files; the registry's parts are lowered to 1,000 rows (and adoption's smallest
group to 500) so that a few thousand rows exercise several groups and parts."""


@pytest.fixture(autouse=True)
def _small_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(first_commit, "ROW_GROUP_ROWS", 1_000)
    monkeypatch.setattr(first_commit, "ADOPT_MIN_GROUP_ROWS", 500)


def _rows(n: int = 4_500) -> pa.Table:
    """Rows in the normalized form (nullable columns, no dictionaries), with nulls and NaN."""
    table = labels_table(n, seed=11)
    score = np.random.default_rng(4).random(n)
    score[::31] = np.nan
    return table.append_column("score", pa.array(score)) \
        .append_column("note", pa.array([None if i % 9 == 0 else f"n{i % 17}" for i in range(n)]))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _commit_both(tmp_path: Path, path: Path) -> tuple[Registry, Registry, list[str]]:
    streamed, general = _homes(tmp_path)
    notes: list[str] = []
    streamed.commit(NAME, path, message="v1", progress=notes.append)
    general.commit(NAME, pq.read_table(path), message="v1")
    return streamed, general, notes


def _assert_like_the_general_path(streamed: Registry, general: Registry) -> None:
    """Same rows, same index (also rebuilt from the stored bytes alone), verify passes, nothing left over."""
    assert _bits(streamed.read(NAME)).equals(_bits(general.read(NAME)))
    (sha, folder), (_, general_folder) = _layer(streamed), _layer(general)
    index = _index_files(folder)
    _assert_same_index(index, _index_files(general_folder))
    streamed.ctx.cache.drop(sha)
    streamed.ctx.cache.rebuild_rows(sha, ["sample_id"])
    _assert_same_index(_index_files(folder), index)
    assert streamed.verify().ok
    assert _leftovers(streamed) == []


def test_a_file_in_the_stored_form_is_stored_byte_for_byte(tmp_path: Path) -> None:
    table = _rows()
    path = tmp_path / "in.parquet"
    pq.write_table(table, path, compression="zstd", row_group_size=GROUP)
    streamed, general, notes = _commit_both(tmp_path, path)
    assert any("bytes as they are" in n for n in notes)
    assert f"read {table.num_rows:,} of {table.num_rows:,} rows" in notes
    sha, _ = _layer(streamed)
    assert sha == _sha(path)  # the object is the input's bytes
    assert _layer(general)[0] != sha  # the general path encodes anew (other row groups)
    _assert_like_the_general_path(streamed, general)


def _dictionary(table: pa.Table) -> pa.Table:
    return table.set_column(1, "label", table.column("label").dictionary_encode())


def _not_null(table: pa.Table) -> pa.Table:
    return table.cast(pa.schema([f.with_nullable(f.name != "sample_id") for f in table.schema]))


@pytest.mark.parametrize(("change", "options"), [
    (None, {"compression": "snappy"}),
    (None, {"compression": {"sample_id": "zstd", "label": "gzip"}}),
    (None, {"compression": "zstd", "store_schema": False}),
    (None, {"compression": "zstd", "row_group_size": 1_200}),  # more rows than a part
    (None, {"compression": "zstd", "row_group_size": 300}),  # too small to read well
    (_dictionary, {"compression": "zstd"}),
    (_not_null, {"compression": "zstd"}),
    (lambda t: t.replace_schema_metadata({"origin": "elsewhere"}), {"compression": "zstd"}),
], ids=["snappy", "mixed-codecs", "no-arrow-schema", "large-groups", "small-groups", "dictionary", "not-null",
        "schema-metadata"])
def test_any_other_file_is_written_anew(tmp_path: Path, change: object, options: dict[str, object]) -> None:
    """Another codec, no stored Arrow schema, row groups too large or too small, or a schema that the
    normalized form changes: the rows object is encoded anew, as before, and holds the same rows."""
    table = _rows()
    if change is not None:
        table = change(table)  # type: ignore[operator]
    path = tmp_path / "in.parquet"
    pq.write_table(table, path, **{"row_group_size": GROUP, **options})  # type: ignore[arg-type]
    with pq.ParquetFile(path) as parquet:
        assert not first_commit.adoptable(parquet, first_commit.input_schema(path, InputLimits()))
    streamed, general, notes = _commit_both(tmp_path, path)
    assert not any("bytes as they are" in n for n in notes)
    assert _layer(streamed)[0] != _sha(path)
    _assert_like_the_general_path(streamed, general)


def test_colliding_key_hashes_get_an_object_written_anew_with_their_alternate_ids(tmp_path: Path) -> None:
    table = _rows()
    ids = table.column("sample_id").to_pylist()
    ids[10], ids[3_000] = A, B
    table = table.set_column(0, "sample_id", pa.array(ids))
    path = tmp_path / "in.parquet"
    pq.write_table(table, path, compression="zstd", row_group_size=GROUP)
    with pq.ParquetFile(path) as parquet:
        assert first_commit.adoptable(parquet, first_commit.input_schema(path, InputLimits()))
    streamed, general, notes = _commit_both(tmp_path, path)
    assert any("colliding key hashes" in n for n in notes)
    sha, folder = _layer(streamed)
    assert sha != _sha(path)
    rows, alternate = alt_ids_of(pq.ParquetFile(streamed.ctx.store.local_path(sha)).metadata.metadata)
    assert len(rows) == len(alternate) == 1 and "alt" in _index_files(folder)
    _assert_like_the_general_path(streamed, general)
    assert _sha(path) not in _objects(streamed)  # the copy was not kept


def test_duplicate_keys_and_a_damaged_page_are_refused_as_before_and_leave_nothing(tmp_path: Path) -> None:
    streamed, general = _homes(tmp_path)
    before = _objects(streamed)
    duplicated = _rows()
    ids = duplicated.column("sample_id").to_pylist()
    ids[4_000] = ids[20]
    duplicated = duplicated.set_column(0, "sample_id", pa.array(ids))
    path = tmp_path / "dup.parquet"
    pq.write_table(duplicated, path, compression="zstd", row_group_size=GROUP)
    _assert_duplicates_refused_alike(streamed, general, path, duplicated)

    damaged = tmp_path / "damaged.parquet"
    pq.write_table(_rows(), damaged, compression="zstd", row_group_size=GROUP)
    data = bytearray(damaged.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 10_000] = b"\xff" * 10_000  # page data that zstd refuses to decode
    damaged.write_bytes(bytes(data))
    notes: list[str] = []
    with pytest.raises(InvalidInput) as error:
        streamed.commit(NAME, damaged, progress=notes.append)
    with pytest.raises(InvalidInput) as whole_error:  # how the general path reads a file
        read_table_file(damaged)
    assert type(error.value) is InvalidInput
    assert str(error.value) == str(whole_error.value)
    assert f"{damaged}: cannot read as parquet: " in str(error.value)
    assert any("bytes as they are" in n for n in notes)  # the copy was read, and refused
    assert _objects(streamed) == before and _leftovers(streamed) == []
    with pytest.raises(NotFound, match="no snapshots"):
        streamed.log(NAME)


def test_the_stored_rows_are_the_copy_whatever_happens_to_the_file_after_it(tmp_path: Path) -> None:
    """The file is overwritten in place while its rows are hashed: what is stored (and indexed, and read)
    is the copy taken before, byte for byte."""
    table = _rows()
    path = tmp_path / "in.parquet"
    pq.write_table(table, path, compression="zstd", row_group_size=GROUP)
    original = _sha(path)
    streamed, general = _homes(tmp_path)
    other = _rows(3_000).set_column(1, "label", pa.array(["changed"] * 3_000))

    def overwrite(note: str) -> None:
        if note.startswith("read ") and _sha(path) == original:
            with open(path, "r+b") as handle:  # in place: the same file, other bytes
                pq.write_table(other, handle, compression="zstd")
                handle.truncate()

    streamed.commit(NAME, path, progress=overwrite)
    assert _sha(path) != original
    assert _layer(streamed)[0] == original
    general.commit(NAME, table)
    _assert_like_the_general_path(streamed, general)


def test_a_file_that_changes_while_it_is_copied_is_refused_and_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = _rows()
    path = tmp_path / "in.parquet"
    pq.write_table(table, path, compression="zstd", row_group_size=GROUP)
    streamed, _ = _homes(tmp_path)
    before = _objects(streamed)
    monkeypatch.setattr(first_commit, "_COPY_CHUNK", 4_096)
    store = HashingFile._store

    def store_then_rewrite(self: HashingFile, data: bytes | bytearray | memoryview) -> int:
        written = store(self, data)
        if self.size == 0:  # after the first chunk: the file is rewritten with other rows
            pq.write_table(_rows(4_000), path, compression="zstd", row_group_size=GROUP)
        return written

    monkeypatch.setattr(HashingFile, "_store", store_then_rewrite)
    with pytest.raises(InvalidInput, match="the file changed while it was read"):
        streamed.commit(NAME, path)
    assert _objects(streamed) == before and _leftovers(streamed) == []
    with pytest.raises(NotFound, match="no snapshots"):
        streamed.log(NAME)
