"""The replace commit's fast path: an input that starts with the parent's rows in the parent's read order
(an export edited in place, new rows appended) is compared in place and only the rows that differ are
hashed. Every case is checked against the general path (the same rows shuffled), which must agree on
counts, content and diffs; inputs the fast path cannot take (a key given twice, another order) must end
exactly as the general path ends them.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from registry import Registry
from registry.errors import InvalidInput
from registry.snapshots import commit as commit_module
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
