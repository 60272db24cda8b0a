"""Merges identify rows by their key values (design invariant 11), tested with the real colliding pair of
tests/snapshots/test_row_identity.py: ``A`` and ``B`` are distinct keys with the same 64-bit key hash, so a
branch and main that each add one store both under the same id. The merge must keep both as distinct rows,
and a true conflict on one key must still be a conflict."""

from __future__ import annotations

import pyarrow as pa
import pytest

from registry import Registry
from registry.errors import UnresolvedConflicts
from tests.snapshots.test_row_identity import A, B

NAME = "signs"


def _rows(labels: dict[str, str]) -> pa.Table:
    keys = sorted(labels)
    return pa.table({"sample_id": keys, "label": [labels[k] for k in keys],
                     "score": pa.array([1] * len(keys), pa.int64())})


def _content(reg: Registry, ref: str = NAME) -> dict[str, str]:
    rows = reg.read(ref).to_pylist()
    assert len(rows) == len({r["sample_id"] for r in rows}), "a key is stored twice"
    return {r["sample_id"]: r["label"] for r in rows}


@pytest.fixture
def signs(reg: Registry) -> Registry:
    reg.create_dataset(NAME, "sample_id")
    reg.commit(NAME, _rows({"other": "dog", "x": "y"}), message="base")
    reg.branch(f"{NAME}@fix")
    return reg


def test_a_branch_and_main_each_adding_one_of_the_pair_keep_both(signs: Registry) -> None:
    signs.commit(f"{NAME}@fix", _rows({A: "cat"}), mode="upsert")
    signs.commit(NAME, _rows({B: "bird"}), mode="upsert")
    result = signs.merge(f"{NAME}@fix")
    assert result.conflicts == []
    assert _content(signs) == {A: "cat", B: "bird", "other": "dog", "x": "y"}
    assert signs.show(NAME).rows == 4
    # each key is found again by its own values after the merge
    again = signs.commit(NAME, _rows({A: "lion"}), mode="upsert")
    assert (again.added, again.changed) == (0, 1)
    assert _content(signs) == {A: "lion", B: "bird", "other": "dog", "x": "y"}
    assert signs.verify().ok


def test_the_pair_merged_the_other_way_round_and_with_other_changes(signs: Registry) -> None:
    signs.commit(f"{NAME}@fix", _rows({B: "bird", "x": "z"}), mode="upsert")
    signs.commit(NAME, _rows({A: "cat", "other": "wolf"}), mode="upsert")
    signs.merge(f"{NAME}@fix")
    assert _content(signs) == {A: "cat", B: "bird", "other": "wolf", "x": "z"}
    assert signs.verify().ok


def test_a_true_conflict_on_one_key_is_still_a_conflict(signs: Registry) -> None:
    signs.commit(f"{NAME}@fix", _rows({A: "cat"}), mode="upsert")
    signs.commit(NAME, _rows({A: "lion", B: "bird"}), mode="upsert")
    with pytest.raises(UnresolvedConflicts) as refused:
        signs.merge(f"{NAME}@fix")
    assert [(c["key"], c["column"], c["ours"], c["theirs"]) for c in refused.value.conflicts] == [
        ({"sample_id": A}, "label", "lion", "cat")]
    signs.merge(f"{NAME}@fix", strategy="theirs")
    assert _content(signs) == {A: "cat", B: "bird", "other": "dog", "x": "y"}
    assert signs.verify().ok


def test_main_replacing_one_of_the_pair_by_the_other_while_the_branch_edits_it(signs: Registry) -> None:
    """Main deletes A then adds B (stored where A was); the branch relabels A: A deleted on one side and
    changed on the other is a row conflict, B is main's new row."""
    signs.commit(NAME, _rows({A: "cat"}), mode="upsert")
    signs.delete_branch(f"{NAME}@fix", force=True)
    signs.branch(f"{NAME}@fix")
    signs.commit(f"{NAME}@fix", _rows({A: "lion"}), mode="upsert")
    signs.commit(NAME, None, mode="upsert", delete_keys=pa.table({"sample_id": [A]}))
    signs.commit(NAME, _rows({B: "bird"}), mode="upsert")
    with pytest.raises(UnresolvedConflicts) as refused:
        signs.merge(f"{NAME}@fix")
    assert [(c["key"], c["column"], c["kind"]) for c in refused.value.conflicts] == [
        ({"sample_id": A}, "*", "deleted-ours")]
    signs.merge(f"{NAME}@fix", strategy="theirs")
    assert _content(signs) == {A: "lion", B: "bird", "other": "dog", "x": "y"}
    assert signs.verify().ok


def test_a_branch_deleting_one_of_the_pair_while_main_adds_the_other(signs: Registry) -> None:
    signs.commit(NAME, _rows({A: "cat"}), mode="upsert")
    signs.delete_branch(f"{NAME}@fix", force=True)
    signs.branch(f"{NAME}@fix")
    signs.commit(f"{NAME}@fix", None, mode="upsert", delete_keys=pa.table({"sample_id": [A]}))
    signs.commit(NAME, _rows({B: "bird"}), mode="upsert")
    signs.merge(f"{NAME}@fix")
    assert _content(signs) == {B: "bird", "other": "dog", "x": "y"}
    assert signs.verify().ok
