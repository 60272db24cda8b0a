"""The replace commit's fast path: an input that starts with the parent's rows in the parent's read order
(an export edited in place, new rows appended) is compared in place and only the rows that differ are
hashed. Every case is checked against the general path (the same rows shuffled), which must agree on
counts, content and diffs; inputs the fast path cannot take (a key given twice, another order) must end
exactly as the general path ends them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from registry import Registry
from registry.errors import InvalidInput
from registry.snapshots import commit as commit_module
from registry.snapshots import first_commit
from tests.snapshots.test_row_identity import A, B
from tests.support.helpers import sorted_rows

NAME = "labels"


def _table(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({
        "sample_id": [f"s{i:05d}" for i in range(n)],
        "label": pa.array(rng.choice(["cat", "dog", "bird"], n).tolist()),
        "score": pa.array(rng.random(n)),
    })


def _edit(table: pa.Table, rows: list[int], label: str = "fox") -> pa.Table:
    labels = table.column("label").to_pylist()
    for r in rows:
        labels[r] = label
    return table.set_column(table.column_names.index("label"), "label", pa.array(labels))


def _shuffled(table: pa.Table, seed: int = 1) -> pa.Table:
    return table.take(pa.array(np.random.default_rng(seed).permutation(table.num_rows)))


def _fast_path_calls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records, per replace commit, whether the fast path took it."""
    taken: list[bool] = []
    original = commit_module._diff_in_parent_order

    def spy(*args: object, **kwargs: object) -> object:
        result = original(*args, **kwargs)  # type: ignore[arg-type]
        taken.append(result is not None)
        return result

    monkeypatch.setattr(commit_module, "_diff_in_parent_order", spy)
    return taken


def _twin_homes(tmp_path_factory: pytest.TempPathFactory, first: pa.Table) -> tuple[Registry, Registry]:
    regs = []
    for label in ("fast", "general"):
        reg = Registry.init(tmp_path_factory.mktemp(label))
        reg.create_dataset(NAME, "sample_id")
        reg.commit(NAME, first, message="v1")
        regs.append(reg)
    return regs[0], regs[1]


def test_in_order_replace_agrees_with_the_general_path(tmp_path_factory: pytest.TempPathFactory,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    v1 = _table(3000)
    fast, general = _twin_homes(tmp_path_factory, v1)
    v2 = pa.concat_tables([_edit(v1, [5, 17, 2999]), _table(3010, seed=9).slice(3000)])
    taken = _fast_path_calls(monkeypatch)
    got = fast.commit(NAME, v2, message="v2")
    want = general.commit(NAME, _shuffled(v2), message="v2")
    assert taken == [True, False]
    assert (got.added, got.changed, got.removed, got.rows) == (want.added, want.changed, want.removed, want.rows) \
        == (10, 3, 0, 3010)
    assert sorted_rows(fast.read(NAME)) == sorted_rows(general.read(NAME)) == sorted_rows(v2)
    assert fast.diff(f"{NAME}@main~1", NAME).to_dict()["changed_cells"] == {"label": 3, "score": 0}
    assert fast.verify().ok


def test_in_order_replace_on_a_layered_parent_reads_its_read_order(reg: Registry) -> None:
    reg.create_dataset(NAME, "sample_id")
    reg.commit(NAME, _table(2000), message="v1")
    reg.commit(NAME, _edit(_table(2000), [3, 4]).slice(0, 10), mode="upsert", message="relabel")
    current = reg.read(NAME)  # the parent's read order: base rows left visible, then the upper layer
    result = reg.commit(NAME, _edit(current, [0, 1999], label="owl"), message="v3")
    assert (result.added, result.changed, result.removed) == (0, 2, 0)
    assert sorted_rows(reg.read(NAME)) == sorted_rows(_edit(current, [0, 1999], label="owl"))


def test_unchanged_in_order_input_is_no_commit(reg: Registry) -> None:
    reg.create_dataset(NAME, "sample_id")
    first = reg.commit(NAME, _table(500), message="v1")
    again = reg.commit(NAME, _table(500), message="same")
    assert not again.created and again.snapshot_id == first.snapshot_id


def test_a_key_given_twice_is_refused_as_before(reg: Registry) -> None:
    reg.create_dataset(NAME, "sample_id")
    v1 = _table(500)
    reg.commit(NAME, v1, message="v1")
    head = reg.log(NAME)[0].id
    with pytest.raises(InvalidInput, match="duplicate key"):
        reg.commit(NAME, pa.concat_tables([v1, v1.slice(7, 1)]), message="twice")
    assert reg.log(NAME)[0].id == head


def test_a_colliding_key_appended_in_order_is_a_distinct_row(reg: Registry) -> None:
    reg.create_dataset(NAME, "sample_id")
    v1 = pa.table({"sample_id": [A, "other"], "label": ["cat", "dog"], "score": [1.0, 2.0]})
    reg.commit(NAME, v1, message="v1")
    v2 = pa.table({"sample_id": [A, "other", B], "label": ["cat", "emu", "bird"], "score": [1.0, 2.0, 3.0]})
    result = reg.commit(NAME, v2, message="v2")
    assert (result.added, result.changed, result.removed) == (1, 1, 0)
    assert sorted_rows(reg.read(NAME)) == sorted_rows(v2)
    # The colliding key was stored under an alternate id: changing it in place keeps it distinct from A.
    current = reg.read(NAME)
    v3 = _edit(current, [current.column("sample_id").to_pylist().index(B)], label="crow")
    again = reg.commit(NAME, v3, message="v3")
    assert (again.added, again.changed, again.removed) == (0, 1, 0)
    assert sorted_rows(reg.read(NAME)) == sorted_rows(v3)
    assert reg.verify().ok


def _committed_in_row_groups(reg: Registry, table: pa.Table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             rows_per_group: int) -> None:
    """``table`` as the first commit of a Parquet file whose rows object holds row groups of ``rows_per_group``."""
    monkeypatch.setattr(first_commit, "ROW_GROUP_ROWS", rows_per_group)
    path = tmp_path / "v1.parquet"
    pq.write_table(table, path)
    reg.create_dataset(NAME, "sample_id")
    reg.commit(NAME, path, message="v1")
    monkeypatch.undo()


def test_in_order_replace_compares_a_parent_of_many_row_groups(reg: Registry, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The parent is compared a row group at a time: edits in the first, a middle and the last group, under
    an upper layer hiding rows of several groups, are all found, and nothing else changes."""
    _committed_in_row_groups(reg, _table(2000), tmp_path, monkeypatch, rows_per_group=300)
    reg.commit(NAME, _edit(_table(2000), [10, 650, 1990]).take(pa.array([10, 650, 1990])), mode="upsert",
               message="relabel three")
    current = reg.read(NAME)
    taken = _fast_path_calls(monkeypatch)
    v3 = _edit(current, [0, 299, 300, 1200, 1996, 1999], label="owl")
    result = reg.commit(NAME, v3, message="v3")
    assert taken == [True]
    assert (result.added, result.changed, result.removed) == (0, 6, 0)
    assert sorted_rows(reg.read(NAME)) == sorted_rows(v3)
    assert reg.verify().ok


def test_an_order_broken_in_a_later_row_group_takes_the_general_path(reg: Registry, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _committed_in_row_groups(reg, _table(2000), tmp_path, monkeypatch, rows_per_group=300)
    current = reg.read(NAME)
    order = np.arange(2000)
    order[[1500, 1501]] = order[[1501, 1500]]  # two rows of the sixth group swap places
    v2 = _edit(current.take(pa.array(order)), [3], label="owl")
    taken = _fast_path_calls(monkeypatch)
    result = reg.commit(NAME, v2, message="v2")
    assert taken == [False]
    assert (result.added, result.changed, result.removed) == (0, 1, 0)
    assert sorted_rows(reg.read(NAME)) == sorted_rows(v2)
