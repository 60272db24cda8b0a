"""Row identity by key values (design invariant 11), tested with a real pair of colliding keys.

``A`` and ``B`` below are distinct printable keys with the same 64-bit key hash (found by
``tests/support/collisions.py`` in a few hundred tries). Every operation must treat them as two rows: an upsert
never overwrites the other, a delete never removes the other, a replace that swaps one for the other is a
change, diffs name the right keys, compaction and a rebuilt index keep both, and change detection is by
values when the row hashes collide too.
"""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow as pa
import pytest

from registry import Registry
from registry.errors import InvalidInput
from registry.snapshots import diff as diff_module
from registry.snapshots.hashing import key_hash
from registry.snapshots.layer_reader import ManifestReader
from tests.support.collisions import colliding_keys
from tests.support.readers import reader_of

A = "sample-0MMMMMMMM"
B = "s0000422\\>-Bz);'"
NAME = "signs"


def _rows(labels: dict[str, str], score: int = 1) -> pa.Table:
    keys = sorted(labels)
    return pa.table({"sample_id": keys, "label": [labels[k] for k in keys],
                     "score": pa.array([score] * len(keys), pa.int64())})


def _content(reg: Registry, ref: str = NAME) -> dict[str, tuple[str, int]]:
    rows = reg.read(ref).to_pylist()
    assert len(rows) == len({r["sample_id"] for r in rows}), "a key is stored twice"
    return {r["sample_id"]: (r["label"], r["score"]) for r in rows}


@pytest.fixture
def signs(reg: Registry) -> Registry:
    reg.create_dataset(NAME, "sample_id")
    reg.commit(NAME, _rows({A: "cat", "other": "dog"}), message="v1")
    return reg


def test_the_pair_really_collides() -> None:
    hashes = key_hash(pa.table({"k": [A, B]}), ["k"])
    assert A != B and hashes[0] == hashes[1]
    assert all(c.isprintable() for c in A + B)
    found_a, found_b, tries = colliding_keys()
    assert (found_a, found_b) == (A, B) and tries < 1000


def test_upsert_of_the_colliding_key_adds_a_row_and_keeps_the_other(signs: Registry) -> None:
    result = signs.commit(NAME, _rows({B: "bird"}), mode="upsert", message="add B")
    assert result.created and (result.added, result.changed, result.removed, result.rows) == (1, 0, 0, 3)
    assert _content(signs) == {A: ("cat", 1), B: ("bird", 1), "other": ("dog", 1)}
    # Each key is found again by its own values, whichever layer holds it.
    again = signs.commit(NAME, _rows({A: "lion", B: "bird"}), mode="upsert", message="relabel A")
    assert (again.added, again.changed) == (0, 1)
    assert _content(signs) == {A: ("lion", 1), B: ("bird", 1), "other": ("dog", 1)}
    unchanged = signs.commit(NAME, _rows({B: "bird"}), mode="upsert")
    assert not unchanged.created
    assert signs.verify().ok


def test_both_keys_in_one_input_are_two_rows_not_a_duplicate(reg: Registry) -> None:
    reg.create_dataset(NAME, "sample_id")
    result = reg.commit(NAME, _rows({A: "cat", B: "bird"}))
    assert result.rows == 2 and result.added == 2
    assert _content(reg) == {A: ("cat", 1), B: ("bird", 1)}
    with pytest.raises(InvalidInput, match="duplicate key"):
        reg.commit(NAME, pa.table({"sample_id": [A, B, A], "label": ["x", "y", "z"],
                                   "score": pa.array([1, 2, 3], pa.int64())}))
    assert _content(reg) == {A: ("cat", 1), B: ("bird", 1)}


def test_delete_of_the_colliding_key_never_deletes_the_other(signs: Registry) -> None:
    with pytest.raises(InvalidInput, match="not in the dataset"):
        signs.commit(NAME, None, mode="upsert", delete_keys=pa.table({"sample_id": [B]}))
    assert _content(signs) == {A: ("cat", 1), "other": ("dog", 1)}
    signs.commit(NAME, _rows({B: "bird"}), mode="upsert")
    gone = signs.commit(NAME, None, mode="upsert", delete_keys=pa.table({"sample_id": [B]}))
    assert gone.removed == 1 and _content(signs) == {A: ("cat", 1), "other": ("dog", 1)}
    signs.commit(NAME, _rows({B: "bird"}), mode="upsert")
    gone = signs.commit(NAME, None, mode="upsert", delete_keys=pa.table({"sample_id": [A]}))
    assert gone.removed == 1 and _content(signs) == {B: ("bird", 1), "other": ("dog", 1)}
    assert signs.verify().ok


def test_replace_that_swaps_one_key_for_the_other_is_a_change(signs: Registry) -> None:
    v1 = signs.show(NAME).id
    result = signs.commit(NAME, _rows({B: "cat", "other": "dog"}), message="swap")
    assert result.created, "the swap was taken for no change"
    assert (result.added, result.removed, result.changed) == (1, 1, 0)
    assert _content(signs) == {B: ("cat", 1), "other": ("dog", 1)}
    diff = signs.diff(f"{NAME}@{v1}", NAME)
    assert (diff.added, diff.removed, diff.changed) == (1, 1, 0)
    kinds = {e["kind"]: e["key"] for e in diff.examples}
    assert kinds == {"added": B, "removed": A}
    changes = signs.changes(f"{NAME}@{v1}", NAME)
    assert changes.upserts.column("sample_id").to_pylist() == [B]
    assert changes.deletes.column("sample_id").to_pylist() == [A]


def test_diff_and_history_name_the_right_key(signs: Registry) -> None:
    v1 = signs.show(NAME).id
    signs.commit(NAME, _rows({B: "bird"}), mode="upsert")
    diff = signs.diff(f"{NAME}@{v1}", NAME)
    assert (diff.added, diff.removed, diff.changed, diff.unchanged) == (1, 0, 0, 2)
    assert [(e["kind"], e["key"]) for e in diff.examples] == [("added", B)]
    reverse = signs.diff(NAME, f"{NAME}@{v1}")
    assert [(e["kind"], e["key"]) for e in reverse.examples] == [("removed", B)]


def test_compaction_and_a_rebuilt_index_keep_both_rows(signs: Registry) -> None:
    signs.commit(NAME, _rows({B: "bird"}), mode="upsert")
    signs.commit(NAME, _rows({A: "lion"}), mode="upsert")
    expected = {A: ("lion", 1), B: ("bird", 1), "other": ("dog", 1)}
    assert signs.compact(NAME, full=False).layers_after == 2
    assert _content(signs) == expected
    assert signs.compact(NAME).layers_after == 1
    assert _content(signs) == expected
    # Indexes are derived data: rebuilt from the objects' bytes alone, they give the same ids (the merged
    # object names the rows it stores under alternate ids, as the layer it came from did).
    kept = _reader(signs).effective_index()[0]
    shutil.rmtree(signs.ctx.cache.folder)
    fresh = Registry.open(signs.home)
    try:
        rebuilt = _reader(fresh)
        assert np.array_equal(rebuilt.effective_index()[0], kept) and len(np.unique(kept)) == 3
        assert rebuilt.has_alt_ids()
        assert _content(fresh) == expected
        relabel = fresh.commit(NAME, _rows({B: "owl"}), mode="upsert")
        assert (relabel.added, relabel.changed) == (0, 1)
        assert _content(fresh) == {**expected, B: ("owl", 1)}
        assert fresh.verify().ok
    finally:
        fresh.close()


def test_a_change_whose_row_hash_collides_is_still_a_change(reg: Registry) -> None:
    """Labels A and B hash alike, so rows that differ only by them have equal row hashes: the values
    decide that the row changed (commit, replace, diff and its changed-cell count)."""
    reg.create_dataset(NAME, "sample_id")
    v1 = reg.commit(NAME, pa.table({"sample_id": ["x", "y"], "label": [A, "keep"]})).snapshot_id
    upsert = reg.commit(NAME, pa.table({"sample_id": ["x"], "label": [B]}), mode="upsert")
    assert upsert.created and upsert.changed == 1
    assert dict(zip(*reg.read(NAME).to_pydict().values(), strict=True))["x"] == B
    diff = reg.diff(f"{NAME}@{v1}", NAME)
    assert (diff.changed, diff.unchanged) == (1, 1) and diff.changed_cells == {"label": 1}
    back = reg.commit(NAME, pa.table({"sample_id": ["x", "y"], "label": [A, "keep"]}), message="replace back")
    assert back.created and back.changed == 1
    assert dict(zip(*reg.read(NAME).to_pydict().values(), strict=True))["x"] == A


def _reader(reg: Registry) -> ManifestReader:
    """The head of ``main``'s reader, with this registry's index cache."""
    return reader_of(reg, NAME)


def test_stored_ids_are_unique_per_key(signs: Registry) -> None:
    signs.commit(NAME, _rows({B: "bird"}), mode="upsert")
    reader = _reader(signs)
    ids, _ = reader.effective_index()
    assert len(ids) == 3 and len(np.unique(ids)) == 3
    assert reader.has_alt_ids()


def test_a_far_apart_diff_sees_a_change_whose_row_hash_collides(reg: Registry) -> None:
    """Two branches are compared through their whole indexes (no commit chain links them): equal 64-bit
    row hashes do not hide a change; the values decide (design invariant 11)."""
    reg.create_dataset(NAME, "sample_id")
    reg.commit(NAME, pa.table({"sample_id": ["x", "y", "z"], "label": [A, "keep", "same"]}))
    reg.branch(f"{NAME}/relabel")
    reg.commit(f"{NAME}@relabel", pa.table({"sample_id": ["x"], "label": [B]}), mode="upsert")
    reg.commit(NAME, pa.table({"sample_id": ["y"], "label": ["moved"]}), mode="upsert")
    diff = reg.diff(NAME, f"{NAME}@relabel")
    assert (diff.added, diff.removed, diff.changed, diff.unchanged) == (0, 0, 2, 1)
    assert diff.changed_cells == {"label": 2}
    assert sorted(e["key"] for e in diff.examples) == ["x", "y"]
    assert sorted(reg.changes(NAME, f"{NAME}@relabel").upserts.column("sample_id").to_pylist()) == ["x", "y"]


def test_a_far_apart_diff_tells_colliding_keys_apart(reg: Registry) -> None:
    """Each branch adds one of two keys with one 64-bit key hash: they are two keys (one removed, one
    added), not one changed row."""
    reg.create_dataset(NAME, "sample_id")
    reg.commit(NAME, _rows({"other": "dog"}))
    reg.branch(f"{NAME}/b")
    reg.commit(NAME, _rows({A: "cat"}), mode="upsert")
    reg.commit(f"{NAME}@b", _rows({B: "cat"}), mode="upsert")
    diff = reg.diff(NAME, f"{NAME}@b")
    assert (diff.added, diff.removed, diff.changed, diff.unchanged) == (1, 1, 0, 1)
    assert sorted((e["kind"], e["key"]) for e in diff.examples) == [("added", B), ("removed", A)]


def test_branches_on_one_base_are_diffed_by_their_upper_layers(reg: Registry, monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    """Two branches on one base layer are compared by the ids their upper layers hold (three here, whatever
    the base's size), with the whole-index comparison's answer: one id given to two keys with other rows on
    each branch is a removal and an addition, not a change."""
    reg.create_dataset(NAME, "sample_id")
    reg.commit(NAME, _rows({"other": "dog", "x": "cat", "y": "owl"}))
    reg.branch(f"{NAME}/b")
    reg.commit(NAME, _rows({A: "cat", "x": "lion"}), mode="upsert")
    reg.commit(f"{NAME}@b", _rows({B: "bird"}), mode="upsert")
    reg.commit(f"{NAME}@b", None, mode="upsert", delete_keys=pa.table({"sample_id": ["y"]}))
    seen: list[np.ndarray | None] = []
    real = diff_module._above_shared_base

    def spy(*readers: ManifestReader) -> np.ndarray | None:
        seen.append(real(*readers))
        return seen[-1]

    monkeypatch.setattr(diff_module, "_above_shared_base", spy)
    expected = (1, 2, 1, 1)  # B added; A and y removed; x changed; other unchanged
    above = reg.diff(NAME, f"{NAME}@b")
    assert len(seen) == 1 and seen[0] is not None and len(seen[0]) == 3
    assert (above.added, above.removed, above.changed, above.unchanged) == expected
    assert sorted((e["kind"], e["key"]) for e in above.examples) == [("added", B), ("changed", "x"),
                                                                      ("removed", A), ("removed", "y")]
    monkeypatch.setattr(diff_module, "_above_shared_base", lambda *_readers: None)
    whole = reg.diff(NAME, f"{NAME}@b")
    assert (whole.added, whole.removed, whole.changed, whole.unchanged) == expected
    assert whole.changed_cells == above.changed_cells and above.changed_cells["label"] == 1
