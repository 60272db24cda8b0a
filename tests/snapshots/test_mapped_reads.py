"""Reads of memory-mapped index files by ``pread`` (``registry.snapshots.mapped_reads``).

Each read must give what indexing the mapped array (or taking from the mapped Arrow table) gives, for every
layout an index uses (plain arrays, structured entries, field views, slices, several Arrow batches), and it
must not touch the mapping: the mapped file's pages stay out of the reader's RSS (read from
``/proc/self/smaps``), which is the point of the module.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.snapshots import mapped_reads
from registry.snapshots.layers import ENTRY_DTYPE, FENCE, KEYS_FILE, IndexCache, LayerIndex
from registry.snapshots.mapped_reads import gather, open_mapped_table, read_part, region_of, take_mapped
from registry.storage import LocalObjectStore

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps (Linux)")


def _saved(tmp_path: Path, array: np.ndarray, name: str = "a.npy") -> np.ndarray:
    np.save(tmp_path / name, array)
    return np.load(tmp_path / name, mmap_mode="r")


def _mapped_rss_kib(path: Path) -> int:
    """Resident KiB of this process's mappings of ``path``."""
    total, current = 0, None
    for line in Path("/proc/self/smaps").read_text().splitlines():
        parts = line.split()
        if parts and "-" in parts[0] and ":" not in parts[0]:
            current = parts[5] if len(parts) > 5 else None
        elif parts and parts[0] == "Rss:" and current == str(path):
            total += int(parts[1])
    return total


def test_gather_matches_indexing_for_each_layout(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    values = rng.integers(0, 2**63, 50_000, dtype=np.uint64)
    entries = np.zeros(20_001, ENTRY_DTYPE)
    entries["kh"], entries["row"], entries["rh"] = (rng.integers(0, 2**63, 20_001, dtype=np.uint64) for _ in range(3))
    mapped, mapped_entries = _saved(tmp_path, values), _saved(tmp_path, entries, "e.npy")
    for array, expected in [(mapped, values), (mapped[17:], values[17:]), (mapped_entries, entries),
                            (mapped_entries["row"], entries["row"]), (mapped_entries[5:]["rh"], entries[5:]["rh"])]:
        assert region_of(array) is not None
        n = len(array)
        positions = np.concatenate([[0, n - 1, n - 1, 3], rng.integers(0, n, 500)])  # unsorted, repeated, both ends
        assert np.array_equal(gather(array, positions), expected[positions])
        assert np.array_equal(read_part(array, 7, n + 5), expected[7:])
        assert np.array_equal(read_part(array, 0, 3), expected[:3])
        assert len(gather(array, np.zeros(0, np.int64))) == 0
    assert region_of(values) is None and np.array_equal(gather(values, [4, 2]), values[[4, 2]])  # in memory


def test_gather_in_batches_and_every_position(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a batch of one block, every block is its own read: the pieces must land in the right places."""
    values = np.arange(10_000, dtype=np.uint64) * 3
    mapped = _saved(tmp_path, values)
    monkeypatch.setattr(mapped_reads, "BATCH_BYTES", 1)
    everything = np.arange(len(values))[::-1]
    assert np.array_equal(gather(mapped, everything), values[everything])


def test_gather_refuses_positions_outside_the_array(tmp_path: Path) -> None:
    mapped = _saved(tmp_path, np.arange(100, dtype=np.uint64))
    for bad in ([100], [-1]):
        with pytest.raises(IndexError, match="out of range"):
            gather(mapped, np.array(bad))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(max_size=12), min_size=1, max_size=300), st.data())
def test_take_mapped_matches_take(tmp_path_factory: pytest.TempPathFactory, texts: list[str],
                                  data: st.DataObject) -> None:
    n = len(texts)
    table = pa.table({
        "s": pa.array(texts, pa.string()),
        "ls": pa.array(texts, pa.large_string()),
        "b": pa.array([t.encode() for t in texts], pa.binary()),
        "i": pa.array(range(n), pa.int64()),
        "t": pa.array([dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=i) for i in range(n)],
                      pa.timestamp("us", tz="UTC")),
        "flag": pa.array([i % 3 == 0 for i in range(n)]),  # bit-packed: taken through the map
        "maybe": pa.array([None if i % 4 == 0 else i for i in range(n)], pa.int32()),  # nulls: through the map
    })
    path = tmp_path_factory.mktemp("keys") / KEYS_FILE
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=data.draw(st.integers(1, 64)))  # several batches
    positions = np.array(data.draw(st.lists(st.integers(0, n - 1), max_size=80)), np.int64)
    taken = take_mapped(open_mapped_table(str(path)), positions)
    assert taken.equals(table.take(pa.array(positions, pa.int64())))


CELL_COLUMNS = ("label", "annotator_id", "confidence", "created_at")


def _saved_index(tmp_path: Path, n: int, seed: int = 3) -> tuple[LayerIndex, LayerIndex, Path]:
    """An index of ``n`` rows in memory and the same one saved and opened memory-mapped."""
    rng = np.random.default_rng(seed)
    kh = np.unique(rng.integers(0, 2**64 - 1, n, dtype=np.uint64))
    rng.shuffle(kh)
    keys = pa.table({"sample_id": pa.array([f"s{i:08d}" for i in range(len(kh))])})
    cells = {c: rng.integers(0, 2**63, len(kh), dtype=np.uint64) for c in CELL_COLUMNS}
    built = LayerIndex.from_file_order(kh, rng.integers(0, 2**63, len(kh), dtype=np.uint64), cells,
                                       ["sample_id"], keys=keys)
    store, name = LocalObjectStore(tmp_path / "objects"), "x" * 64
    IndexCache(store, tmp_path / "cache").save_rows(name, built)
    reopened = IndexCache(store, tmp_path / "cache").rows_index(name, ["sample_id"])  # a fresh cache maps the files
    return built, reopened, tmp_path / "cache" / name


def test_find_in_a_mapped_index_matches_the_index_in_memory(tmp_path: Path) -> None:
    built, mapped, _ = _saved_index(tmp_path, 3 * FENCE * 7 + 11)  # a short last window
    assert isinstance(mapped.entries, np.memmap) and mapped.keys_file is not None
    kh = np.asarray(built.kh)
    wanted = np.concatenate([kh[[0, -1, 5, 5, FENCE, FENCE - 1]], [0, 2**64 - 1, kh[7] + 1], kh[::97]])
    for index in (built, mapped):
        found, entry, records = index.find(wanted)
        assert np.array_equal(found, np.isin(wanted, kh))
        assert np.array_equal(built.entries[entry[found]], records[found])
        assert np.array_equal(records[found]["kh"], wanted[found])
        assert index.search(wanted)[0].tolist() == found.tolist()
    empty = LayerIndex.empty().find(wanted)
    assert not empty[0].any()


@linux_only
def test_lookups_leave_the_mapped_files_out_of_resident_memory(tmp_path: Path) -> None:
    """find, gather and take_keys read by pread: no page of the mapped files becomes resident beyond what
    opening them maps. (Through the map, each read would map a whole page-cache folio: up to 2 MiB.)"""
    built, mapped, folder = _saved_index(tmp_path, 200_000)
    names = ("entries.npy", "cells.npy", KEYS_FILE)
    opened = {name: _mapped_rss_kib(folder / name) for name in names}  # the Arrow file's footer and batch headers
    assert opened["entries.npy"] == opened["cells.npy"] == 0
    wanted = np.asarray(built.kh)[::50]
    found, _, records = mapped.find(wanted)
    assert found.all()
    rows = records["row"].astype(np.int64)
    assert np.array_equal(gather(mapped.cells["label"], rows), np.asarray(built.cells["label"])[rows])
    cells = mapped.cells_at(rows, CELL_COLUMNS)
    assert all(np.array_equal(cells[c], built.cells[c][rows]) for c in CELL_COLUMNS)
    assert mapped.take_keys(rows).equals(built.keys.take(pa.array(rows)))
    assert np.array_equal(gather(mapped.rows, np.arange(0, len(mapped), 40)), built.rows[::40])
    assert {name: _mapped_rss_kib(folder / name) for name in names} == opened
    int(mapped.entries["kh"][len(mapped) // 2])  # through the map: the same check sees it
    assert _mapped_rss_kib(folder / "entries.npy") > 0


def test_a_rows_cells_are_read_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cell hashes of a row are one record of ``cells.npy``: the cells of 300 scattered rows, every column,
    cost one read per row (four columns in separate files took four), and equal the index in memory's."""
    built, mapped, folder = _saved_index(tmp_path, 200_000)
    assert isinstance(mapped.cell_rows, np.memmap) and list(mapped.cells) == list(CELL_COLUMNS)
    assert np.load(folder / "cells.npy").dtype.names == ("c0", "c1", "c2", "c3")
    rows = np.sort(np.random.default_rng(8).choice(len(built), 300, replace=False))[::-1]  # unsorted is fine
    reads = []
    preadv = mapped_reads.os.preadv
    monkeypatch.setattr(mapped_reads.os, "preadv", lambda *a: reads.append(1) or preadv(*a))
    got = mapped.cells_at(rows, ["created_at", "label"])
    assert list(got) == ["created_at", "label"]
    assert all(np.array_equal(got[c], built.cells[c][rows]) and got[c].flags.c_contiguous for c in got)
    assert 0 < len(reads) <= len(rows)
    assert all(np.array_equal(h, built.cells[c][rows]) for c, h in built.cells_at(rows, ["confidence"]).items())


def test_near_blocks_are_read_together_and_far_ones_apart() -> None:
    """Gaps of up to GAP_BYTES are filled (one read instead of two); wider ones are not (bytes nobody wants)."""
    per_gap = mapped_reads.GAP_BYTES // 4096
    blocks = np.array([1, 3, 3 + per_gap + 1, 3 + 2 * per_gap + 3, 900])
    filled = mapped_reads.with_gaps_filled(blocks, 4096)
    assert filled.tolist() == [1, 2, 3, *range(4, 3 + per_gap + 2), 3 + 2 * per_gap + 3, 900]
    assert mapped_reads.with_gaps_filled(blocks, 1 << 20).tolist() == blocks.tolist()  # blocks too big to fill


def test_lookups_go_on_after_the_index_files_are_removed(tmp_path: Path) -> None:
    """Compaction drops the indexes no head reads while a commit that loaded the old head may still look keys up
    in them (seen in CI as a commit failing during `compact --auto`): reads go through descriptors of the
    mapped files, which outlive the names; and those descriptors close with the index."""
    import gc
    import shutil

    built, mapped, folder = _saved_index(tmp_path, 30_000)
    wanted = np.asarray(built.kh)[::7]
    expected = mapped.find(wanted)
    open_before = len(list(Path("/proc/self/fd").iterdir())) if Path("/proc/self/fd").is_dir() else None
    shutil.rmtree(folder)
    found, entry, records = mapped.find(wanted)
    assert np.array_equal(found, expected[0]) and np.array_equal(records, expected[2]) and found.all()
    rows = records["row"].astype(np.int64)
    assert np.array_equal(gather(mapped.cells["label"], rows), np.asarray(built.cells["label"])[rows])
    cells = mapped.cells_at(rows, CELL_COLUMNS)
    assert all(np.array_equal(cells[c], built.cells[c][rows]) for c in CELL_COLUMNS)
    assert np.array_equal(read_part(mapped.entries, 5, 500), built.entries[5:500])
    assert mapped.take_keys(rows).equals(built.keys.take(pa.array(rows)))
    if open_before is not None:
        del mapped
        gc.collect()
        assert len(list(Path("/proc/self/fd").iterdir())) < open_before
