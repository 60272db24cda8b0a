"""Property tests: random replace / upsert / delete histories against a plain-Python model of the table.

Each example gets a fresh SQLite home. Keys come from a small alphabet so that steps keep touching the
same keys (re-adding deleted keys, changing rows back and forth, emptying the table).
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry import Registry
from registry.arrays import union_sorted
from registry.db import transaction
from registry.models import SnapshotRow
from registry.snapshots import diff as diff_module
from registry.snapshots.manifest import load_manifest
from tests.support.fresh_homes import fresh_registries

NAME = "props"
KEYS = ["a", "b", "c", "d", "e", "f"]
SCHEMA = pa.schema([("k", pa.string()), ("n", pa.int64()), ("s", pa.string())])

Row = dict[str, Any]
Fresh = Callable[..., Registry]
Model = dict[str, Row]

values = st.tuples(st.one_of(st.none(), st.integers(-3, 3), st.integers(-2**62, 2**62)),
                   st.one_of(st.none(), st.sampled_from(["", "x", "y", "longer than eight bytes", "ü"])))
tables = st.dictionaries(st.sampled_from(KEYS), values, max_size=len(KEYS))

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture
def fresh(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[Callable[..., Registry]]:
    """A factory of new SQLite homes, one per hypothesis example (closed at the end of the test)."""
    yield from fresh_registries(tmp_path_factory, monkeypatch, NAME, "k")


def _table(model: Model) -> pa.Table:
    return pa.Table.from_pylist(list(model.values()), schema=SCHEMA)


def _model(rows: dict[str, tuple[Any, Any]]) -> Model:
    return {k: {"k": k, "n": n, "s": s} for k, (n, s) in rows.items()}


def _sorted(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: r["k"])


def _read(reg: Registry, ref: str) -> list[Row]:
    return _sorted(reg.read(ref).to_pylist())


def _step(reg: Registry, data: st.DataObject, current: Model, first: bool) -> tuple[Model, Any]:
    """Draw one commit, make it, and return the intended table after it and the commit result."""
    kinds = ["replace", "upsert", "delete", "upsert+delete"]
    kind = "replace" if first else data.draw(st.sampled_from(kinds))
    if kind == "replace":
        new = _model(data.draw(tables))
        return new, reg.commit(NAME, _table(new), message="replace")
    upserts: Model = {}
    if kind != "delete":
        upserts = _model(data.draw(tables))
    deletable = sorted(set(current) - set(upserts))
    deletes: list[str] = []
    if kind != "upsert" and deletable:
        deletes = data.draw(st.lists(st.sampled_from(deletable), unique=True, min_size=1))
    new = {k: v for k, v in current.items() if k not in deletes}
    new.update(upserts)
    delete_table = pa.table({"k": pa.array(deletes, pa.string())}) if deletes else None
    source = _table(upserts) if upserts or not deletes else None
    return new, reg.commit(NAME, source, mode="upsert", delete_keys=delete_table, message=kind)


def _apply(rows: Model, upserts: list[Row], deletes: list[Row]) -> Model:
    result = {k: v for k, v in rows.items() if k not in {d["k"] for d in deletes}}
    result.update({r["k"]: r for r in upserts})
    return result


def _check_without_index_cache(reg: Registry, history: list[tuple[str, Model]]) -> None:
    """Key indexes are derived data: with the cache folder gone, a new process reads and diffs the same."""
    shutil.rmtree(reg.home / "cache", ignore_errors=True)
    with Registry.open(reg.home) as again:
        for snapshot_id, model in history:
            assert _read(again, f"{NAME}@{snapshot_id}") == _sorted(list(model.values()))
        (first, model_a), (last, model_b) = history[0], history[-1]
        diff = again.diff(f"{NAME}@{first}", f"{NAME}@{last}")
        both = model_a.keys() & model_b.keys()
        assert (diff.added, diff.removed, diff.changed) == (
            len(model_b.keys() - model_a.keys()), len(model_a.keys() - model_b.keys()),
            sum(1 for k in both if model_a[k] != model_b[k]))


COMPACTIONS = ["none", "auto", "full", "upper"]


def _compact_between(reg: Registry, data: st.DataObject) -> None:
    """Whatever compaction a worker or an operator might run between two commits (drawn)."""
    how = data.draw(st.sampled_from(COMPACTIONS), label="compaction")
    if how == "auto":
        for result in reg.compact_auto():
            assert result.layers_after <= reg.ctx.settings.compaction.max_layers
    elif how in ("full", "upper"):
        reg.compact(NAME, full=how == "full")


def _run_history(reg: Registry, data: st.DataObject, steps: int, compact: bool = False
                 ) -> list[tuple[str, Model]]:
    """Random commits (with random compactions between them when ``compact``); after each, the head reads
    exactly as the model. Returns (id, model) oldest first."""
    history: list[tuple[str, Model]] = []
    current: Model = {}
    for number in range(steps):
        if compact and number:
            _compact_between(reg, data)
            assert _read(reg, NAME) == _sorted(list(current.values()))
        new, result = _step(reg, data, current, first=number == 0)
        if number and new == current:
            assert not result.created and result.snapshot_id == history[-1][0]
        else:
            assert result.created, (current, new)
            assert result.rows == len(new)
            assert result.added == len(new.keys() - current.keys())
            assert result.removed == len(current.keys() - new.keys())
            assert result.changed == sum(1 for k in new.keys() & current.keys() if new[k] != current[k])
            history.append((result.snapshot_id, new))
        current = new
        assert _read(reg, NAME) == _sorted(list(current.values()))
    assert [s.id for s in reg.log(NAME)] == [i for i, _ in reversed(history)]
    return history


def _diff_matches(reg: Registry, a: str, b: str, model_a: Model, model_b: Model) -> None:
    diff = reg.diff(a, b, rows=3)
    both = model_a.keys() & model_b.keys()
    changed = sum(1 for k in both if model_a[k] != model_b[k])
    expected = (len(model_b.keys() - model_a.keys()), len(model_a.keys() - model_b.keys()), changed,
                len(both) - changed)
    assert (diff.added, diff.removed, diff.changed, diff.unchanged) == expected, (a, b)
    for column in ("n", "s"):
        cells = sum(1 for k in both if model_a[k][column] != model_b[k][column])
        assert diff.changed_cells.get(column, 0) == cells, (a, b, column)


@SETTINGS
@given(data=st.data(), steps=st.integers(1, 6))
def test_reads_changes_and_diffs_match_the_model(fresh: Fresh, data: st.DataObject, steps: int) -> None:
    reg = fresh()
    history = _run_history(reg, data, steps)

    for snapshot_id, model in history:
        assert _read(reg, f"{NAME}@{snapshot_id}") == _sorted(list(model.values()))
    for (id_a, model_a), (id_b, model_b) in itertools.product(history, repeat=2):
        a, b = f"{NAME}@{id_a}", f"{NAME}@{id_b}"
        changes = reg.changes(a, b)
        applied = _apply(model_a, changes.upserts.to_pylist(), changes.deletes.to_pylist())
        assert _sorted(list(applied.values())) == _sorted(list(model_b.values())), (a, b)
        assert changes.deletes.column_names == ["k"]

        _diff_matches(reg, a, b, model_a, model_b)
    assert reg.verify().ok
    _check_without_index_cache(reg, history)


@settings(SETTINGS, max_examples=15)
@given(data=st.data(), steps=st.integers(2, 6))
def test_compaction_keeps_ids_and_content(fresh: Fresh, data: st.DataObject, steps: int) -> None:
    reg = fresh()
    history = _run_history(reg, data, steps)
    log_before = [s.to_dict() for s in reg.log(NAME)]

    head = reg.compact(NAME)
    assert head.snapshot_id == history[-1][0] and head.layers_after == 1
    results = [head]
    for snapshot_id, _ in history[:-1]:
        results.append(reg.compact(f"{NAME}@{snapshot_id}"))
        assert results[-1].layers_after == 1

    assert [s.to_dict() for s in reg.log(NAME)] == log_before
    for snapshot_id, model in history:
        assert _read(reg, f"{NAME}@{snapshot_id}") == _sorted(list(model.values()))
    first_id, first_model = history[0]
    changes = reg.changes(f"{NAME}@{first_id}", NAME)
    applied = _apply(first_model, changes.upserts.to_pylist(), changes.deletes.to_pylist())
    assert _sorted(list(applied.values())) == _sorted(list(history[-1][1].values()))
    assert reg.verify().ok

    # Compaction left the old manifests unreferenced; gc removes them and nothing any snapshot needs.
    swept = reg.gc(min_age=0)
    assert len(swept.deleted) >= sum(1 for r in results if r.layers_before > 1)
    assert reg.verify().ok
    _check_without_index_cache(reg, history)

    # History keeps growing correctly on top of a compacted head.
    extra = _model(data.draw(tables))
    result = reg.commit(NAME, _table(extra), mode="upsert")
    expected = {**history[-1][1], **extra}
    assert result.created == (expected != history[-1][1])
    assert _read(reg, NAME) == _sorted(list(expected.values()))


def _layers(reg: Registry, snapshot_id: str) -> int:
    with transaction(reg.ctx.engine) as session:
        row = session.get(SnapshotRow, snapshot_id)
        assert row is not None
    return len(load_manifest(reg.ctx, row).layers)


@settings(SETTINGS, max_examples=8)
@given(data=st.data(), steps=st.integers(6, 12))
def test_random_commits_compactions_and_reads_agree(fresh: Fresh, data: st.DataObject, steps: int) -> None:
    """Commits never compact; compactions drawn between them (the policy, full, upper) keep every
    snapshot's rows, diffs and ids, and the policy keeps heads within REGISTRY_MAX_LAYERS."""
    reg = fresh(max_layers=3)
    assert reg.ctx.settings.compaction.max_layers == 3
    history = _run_history(reg, data, steps, compact=True)
    reg.compact_auto()
    assert _layers(reg, history[-1][0]) <= 3
    for snapshot_id, model in history:
        assert _read(reg, f"{NAME}@{snapshot_id}") == _sorted(list(model.values()))
    for (id_a, model_a), (id_b, model_b) in zip(history, history[1:], strict=False):
        diff = reg.diff(f"{NAME}@{id_a}", f"{NAME}@{id_b}")
        assert (diff.added, diff.removed) == (len(model_b.keys() - model_a.keys()),
                                              len(model_a.keys() - model_b.keys()))
    assert reg.verify().ok


def test_automatic_compaction_after_many_upserts(fresh: Fresh) -> None:
    """Deterministic companion: 12 single-row upserts with REGISTRY_MAX_LAYERS=3, each followed by a policy
    pass (as the serve worker or cron runs it), never leave a head above 3 layers; a commit alone never
    compacts."""
    reg = fresh(max_layers=3)
    # only the size tiers: the tiny base would be rewritten
    reg.ctx.settings = reg.ctx.settings.replace(compaction={"base_fraction": 0})
    grew = False
    model: Model = {}
    ids = []
    for step in range(12):
        key = KEYS[step % len(KEYS)]
        row = {"k": key, "n": step, "s": None if step % 3 else "x"}
        if step == 7:
            result = reg.commit(NAME, None, mode="upsert", delete_keys=pa.table({"k": ["a"]}))
            del model["a"]
        else:
            result = reg.commit(NAME, _table({key: row}), mode="upsert")
            model[key] = row
        assert result.created
        ids.append(result.snapshot_id)
        grew |= _layers(reg, result.snapshot_id) == 4  # the commit appended a layer and did not compact
        reg.compact_auto()
        assert _layers(reg, result.snapshot_id) <= 3
        assert _read(reg, NAME) == _sorted(list(model.values()))
    assert grew and max(_layers(reg, i) for i in ids) >= 2
    assert reg.verify().ok


def test_property_homes_are_sqlite(fresh: Callable[..., Registry], tmp_path: Path) -> None:
    reg = fresh()
    assert reg.ctx.engine.url.get_backend_name() == "sqlite"
    assert (reg.home / "catalog.db").is_file()


sorted_ids = st.lists(st.integers(0, 2**64 - 1) | st.integers(0, 20), max_size=40).map(
    lambda values: np.sort(np.array(values, dtype=np.uint64)))


@given(st.lists(sorted_ids, max_size=4))
@settings(max_examples=200, deadline=None, derandomize=True)
def test_union_sorted_is_the_sorted_distinct_union(arrays: list[np.ndarray]) -> None:
    """The merge that finds hidden rows equals numpy's union, duplicates within and across arrays included."""
    expected = np.unique(np.concatenate(arrays)) if arrays else np.zeros(0, np.uint64)
    got = union_sorted(*arrays)
    assert got.dtype == np.uint64 and got.tolist() == expected.tolist()


@SETTINGS
@given(data=st.data(), steps=st.integers(2, 6))
def test_diffs_without_the_commit_chain_match_the_model(fresh: Fresh, data: st.DataObject, steps: int,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every pair diffed as two branches are (no commit chain walked): by the ids above their shared base
    layer when they have one, else through both whole indexes; random compactions between the commits
    give pairs of both kinds, and each way must match the model."""
    reg = fresh()
    history = _run_history(reg, data, steps, compact=True)
    for whole in (False, True):
        with monkeypatch.context() as patched:
            patched.setattr(diff_module, "_touched_between", lambda *_args: None)
            if whole:
                patched.setattr(diff_module, "_above_shared_base", lambda *_args: None)
            for (id_a, model_a), (id_b, model_b) in itertools.product(history, repeat=2):
                _diff_matches(reg, f"{NAME}@{id_a}", f"{NAME}@{id_b}", model_a, model_b)
