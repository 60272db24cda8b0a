"""A commit keeps, with its layer's index, where each of the layer's ids was in the parent (``below.npy``).

A diff of that parent and child (either direction), and a label diff, read that record instead of looking the
ids up in the parent's layers again. Each case checks the record against a fresh lookup, the diff against the
same diff without the record, and every case where the record must not be used (another set of layers under
the parent after compaction, an index rebuilt from the object, deletions, a bulk match, alternate ids).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from registry import Registry
from registry.snapshots.layer_reader import ManifestReader
from registry.snapshots.layers import BELOW_FILE
from registry.snapshots.manifest import layer_names
from tests.support.collisions import colliding_keys
from tests.support.helpers import labels_table
from tests.support.readers import reader_of, snapshot_row

NAME = "labels"
A, B, _ = colliding_keys()


def _relabeled(table: pa.Table, rows: np.ndarray, seed: int) -> pa.Table:
    labels = table.column("label").to_pylist()
    rng = np.random.default_rng(seed)
    for r in rows.tolist():
        labels[r] = str(rng.choice(["cat", "dog", "owl", "fox"]))
    return table.set_column(1, "label", pa.array(labels))


def _history(tmp_path: Path) -> tuple[Registry, pa.Table, pa.Table]:
    """v1 in two layers (a base and an upsert), then v2: 40 relabels and 25 new rows upserted on top."""
    reg = Registry.init(tmp_path / "home")
    reg.create_dataset(NAME, "sample_id")
    base = labels_table(3_000, seed=1)
    reg.commit(NAME, base.slice(0, 2_500), mode="replace", message="base")
    v1 = _relabeled(base, np.arange(2_400, 2_600), seed=2)
    reg.commit(NAME, v1.slice(2_400), mode="upsert", message="v1")
    reg.tag(NAME, "v1")
    rows = np.random.default_rng(3).choice(3_000, 40, replace=False)
    upsert = pa.concat_tables([_relabeled(v1, rows, seed=4).take(pa.array(np.sort(rows))),
                               labels_table(25, seed=5, prefix="new")])
    reg.commit(NAME, upsert, mode="upsert", message="v2")
    reg.tag(NAME, "v2")
    return reg, v1, upsert


def _lookups(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every ``ManifestReader.lookup`` call from now on: (the reader's top layer, how many ids)."""
    calls: list[tuple[str, int]] = []
    original = ManifestReader.lookup

    def counting(self: ManifestReader, ids: np.ndarray) -> object:
        calls.append((self.manifest.layers[-1].rows or "", len(ids)))
        return original(self, ids)

    monkeypatch.setattr(ManifestReader, "lookup", counting)
    return calls


def _without_record(reg: Registry, layer: str) -> None:
    for suffix in (".npy", ".json"):
        (reg.ctx.cache.folder / layer / f"{BELOW_FILE}{suffix}").unlink()


def test_the_commit_records_what_a_lookup_in_its_parent_finds(tmp_path: Path) -> None:
    reg, _v1, upsert = _history(tmp_path)
    v1, v2 = reader_of(reg, f"{NAME}@v1"), snapshot_row(reg, f"{NAME}@v2")
    assert len(v1.manifest.layers) == 2  # so layer numbers are part of what is checked
    records = reg.ctx.cache.below(v2.change_sha256, layer_names(v1.manifest.layers))
    assert records is not None and len(records) == upsert.num_rows
    index = reg.ctx.cache.rows_index(v2.change_sha256, ["sample_id"])
    in_file = np.empty(len(index), np.uint64)
    in_file[np.asarray(index.rows, np.int64)] = np.asarray(index.kh)
    fresh = v1.lookup(in_file)
    assert np.array_equal(records["layer"], fresh.layer)
    assert np.array_equal(records["position"][fresh.present], fresh.position[fresh.present])
    assert np.array_equal(records["rh"][fresh.present], fresh.rh[fresh.present])
    assert int(fresh.present.sum()) == 40 and set(fresh.layer[fresh.present].tolist()) == {0, 1}
    assert reg.ctx.cache.below(v2.change_sha256, layer_names(v1.manifest.layers[:1])) is None  # other layers


def test_diffs_of_parent_and_child_use_the_record_and_agree_with_lookups(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    reg, _v1, _upsert = _history(tmp_path)
    layer_v1 = reader_of(reg, f"{NAME}@v1").manifest.layers[-1].rows
    layer_v2 = snapshot_row(reg, f"{NAME}@v2").change_sha256
    calls = _lookups(monkeypatch)
    forward, backward = reg.diff(f"{NAME}@v1", f"{NAME}@v2"), reg.diff(f"{NAME}@v2", f"{NAME}@v1")
    labels = reg.label_diff(f"{NAME}@v1", f"{NAME}@v2", "label")
    assert (forward.added, forward.changed, forward.removed) == (25, 40, 0)
    assert (backward.added, backward.changed, backward.removed) == (0, 40, 25)
    assert all(top != layer_v1 for top, n in calls if n)  # v1's layers were never searched for an id
    _without_record(reg, layer_v2)
    calls.clear()
    fresh = Registry.open(reg.home)
    assert fresh.diff(f"{NAME}@v1", f"{NAME}@v2") == forward
    assert fresh.diff(f"{NAME}@v2", f"{NAME}@v1") == backward
    assert fresh.label_diff(f"{NAME}@v1", f"{NAME}@v2", "label").to_dict() == labels.to_dict()
    assert any(top == layer_v1 for top, _ in calls)  # without the record, v1 is looked up


def test_the_record_is_ignored_where_it_does_not_hold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After v1's layers are merged (compaction keeps v1's content but not its layers) the record no longer
    names v1's layers: the diff looks the ids up, with the same result. An index rebuilt from its object has
    no record at all."""
    reg, _v1, _upsert = _history(tmp_path)
    expected = reg.diff(f"{NAME}@v1", f"{NAME}@v2")
    layer_v2 = snapshot_row(reg, f"{NAME}@v2").change_sha256
    reg.compact(f"{NAME}@v1")
    compacted = reader_of(reg, f"{NAME}@v1")
    assert len(compacted.manifest.layers) == 1
    calls = _lookups(monkeypatch)
    assert reg.diff(f"{NAME}@v1", f"{NAME}@v2") == expected
    assert any(top == compacted.manifest.layers[-1].rows for top, _ in calls)  # looked up: the record is stale
    reg.ctx.cache.drop(layer_v2)
    reg.ctx.cache.rows_index(layer_v2, ["sample_id"])  # rebuilt from the object
    assert not (reg.ctx.cache.folder / layer_v2 / f"{BELOW_FILE}.npy").exists()
    assert Registry.open(reg.home).diff(f"{NAME}@v1", f"{NAME}@v2") == expected


def test_no_record_for_deletions_bulk_matches_or_alternate_ids(tmp_path: Path) -> None:
    reg = Registry.init(tmp_path / "home")
    reg.create_dataset(NAME, "sample_id")
    base = labels_table(2_000, seed=1)
    reg.commit(NAME, base, mode="replace", message="base")

    def recorded() -> bool:
        return (reg.ctx.cache.folder / snapshot_row(reg, NAME).change_sha256 / f"{BELOW_FILE}.npy").exists()

    reg.commit(NAME, _relabeled(base.slice(0, 10), np.arange(3), seed=6), mode="upsert", message="plain")
    assert recorded()
    reg.commit(NAME, _relabeled(base, np.arange(0, 2_000, 3), seed=7), mode="upsert", message="bulk")
    assert not recorded()  # matched against one read of the parent: positions in read order, not lookups
    colliding = labels_table(2, seed=8).set_column(0, "sample_id", pa.array([A, B]))
    reg.commit(NAME, colliding, mode="upsert", message="alternate ids")
    assert not recorded()
    before = reg.show(NAME).id
    reg.commit(NAME, _relabeled(base.take(pa.array([1, 4])), np.arange(2), seed=9), mode="upsert", message="after alt")
    assert not recorded()  # the parent stores a row under an alternate id: probes may have moved ids
    diff = reg.diff(f"{NAME}@{before}", NAME)
    assert (diff.added, diff.changed, diff.removed) == (0, 2, 0)


def test_a_commit_with_deletions_is_diffed_by_lookups(tmp_path: Path) -> None:
    reg = Registry.init(tmp_path / "home")
    reg.create_dataset(NAME, "sample_id")
    base = labels_table(2_000, seed=1)
    reg.commit(NAME, base, mode="replace", message="base")
    reg.tag(NAME, "v1")
    gone = base.slice(100, 5).select(["sample_id"])
    reg.commit(NAME, _relabeled(base.slice(0, 10), np.arange(4), seed=6), mode="upsert", delete_keys=gone)
    diff = reg.diff(f"{NAME}@v1", NAME)
    assert (diff.added, diff.changed, diff.removed) == (0, 4, 5)
    back = reg.diff(NAME, f"{NAME}@v1")
    assert (back.added, back.changed, back.removed) == (5, 4, 0)
