"""Catalog operations through the Python API, on SQLite and PostgreSQL: datasets, refs, history, schemas."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from sqlmodel import select

from registry import Registry, catalog
from registry.db import transaction
from registry.errors import (
    AlreadyExists,
    AmbiguousRef,
    BreakingSchemaChange,
    InvalidInput,
    InvalidName,
    NotFound,
)
from registry.models import DatasetRow, SnapshotRow

NAME = "labels"


def _table(ids: list[str], values: list[int], **extra: list[object]) -> pa.Table:
    return pa.table({"id": ids, "value": pa.array(values, pa.int64()), **extra})


def _history(reg: Registry, n: int = 3) -> list[str]:
    """``n`` snapshots of NAME; returns their ids oldest first."""
    reg.create_dataset(NAME, "id")
    ids = []
    for step in range(n):
        result = reg.commit(NAME, _table(["a", "b", "c"], [step, step + 1, step + 2]), message=f"step {step}")
        assert result.created
        ids.append(result.snapshot_id)
    return ids


def _rows(table: pa.Table) -> list[dict[str, object]]:
    return sorted(table.to_pylist(), key=lambda r: str(r["id"]))


# --- datasets --------------------------------------------------------------------------------------------


def test_create_and_list_datasets(reg: Registry) -> None:
    assert reg.datasets() == []
    created = reg.create_dataset("street-signs", "sample_id", description="signs", owner="vision-team")
    reg.create_dataset("audio", ["clip_id", "channel"])
    assert created.name == "street-signs" and created.key_columns == ["sample_id"] and created.head is None

    listed = reg.datasets()
    assert [d.name for d in listed] == ["audio", "street-signs"]
    audio, signs = listed
    assert audio.key_columns == ["clip_id", "channel"]
    assert signs.description == "signs" and signs.owner == "vision-team"
    assert (signs.head, signs.rows, signs.snapshots, signs.last_commit_at) == (None, 0, 0, None)

    result = reg.commit("street-signs", pa.table({"sample_id": ["x", "y"], "label": ["stop", "yield"]}))
    signs = next(d for d in reg.datasets() if d.name == "street-signs")
    assert (signs.head, signs.rows, signs.snapshots) == (result.snapshot_id, 2, 1)
    assert signs.last_commit_at is not None


def test_duplicate_dataset_name_is_already_exists(reg: Registry) -> None:
    reg.create_dataset("labels", "id", description="first")
    with pytest.raises(AlreadyExists, match="labels"):
        reg.create_dataset("labels", "other_key", description="second")
    [only] = reg.datasets()
    assert only.key_columns == ["id"] and only.description == "first"


def test_invalid_dataset_names(reg: Registry) -> None:
    for bad in ["Labels", "street signs", "a/b/c", ".hidden", "", "/leading", "trailing/", "x@y", "a" * 201]:
        with pytest.raises(InvalidName):
            reg.create_dataset(bad, "id")
    assert reg.datasets() == []


def test_namespaced_name_is_accepted_and_resolves(reg: Registry) -> None:
    reg.create_dataset("vision/street-signs", "id")
    result = reg.commit("vision/street-signs", _table(["a"], [1]))
    assert [d.name for d in reg.datasets()] == ["vision/street-signs"]
    assert reg.show("vision/street-signs").id == result.snapshot_id
    assert reg.show(f"vision/street-signs@{result.snapshot_id[:8]}").id == result.snapshot_id
    assert reg.read("vision/street-signs@main").to_pylist() == [{"id": "a", "value": 1}]


# --- ref resolution --------------------------------------------------------------------------------------


def test_ref_forms_resolve_to_the_right_snapshot(reg: Registry) -> None:
    first, second, third = _history(reg)
    reg.tag(f"{NAME}@{first}", "v1")
    assert reg.show(NAME).id == third
    assert reg.show(f"{NAME}@main").id == third
    assert reg.show(f"{NAME}@v1").id == first
    assert reg.show(f"{NAME}@{second}").id == second
    assert reg.show(f"{NAME}@{second[:8]}").id == second
    assert reg.show(f"{NAME}@{second[:20]}").id == second
    assert reg.show(f"{NAME}@main~0").id == third
    assert reg.show(f"{NAME}@main~1").id == second
    assert reg.show(f"{NAME}@main~2").id == first
    assert reg.show(f"{NAME}@{third[:10]}~2").id == first
    assert reg.show(f"{NAME}@v1~0").id == first
    assert _rows(reg.read(f"{NAME}@v1")) == _rows(_table(["a", "b", "c"], [0, 1, 2]))


def test_unresolvable_refs_are_not_found(reg: Registry) -> None:
    first, _, third = _history(reg)
    with pytest.raises(NotFound, match="only 3 snapshot"):
        reg.show(f"{NAME}@main~3")
    with pytest.raises(NotFound):
        reg.show(f"{NAME}@v1~1")  # the tag does not exist
    with pytest.raises(NotFound):
        reg.show(f"{NAME}@no-such-tag")
    with pytest.raises(NotFound):
        reg.show(f"{NAME}@{third[:7]}")  # under 8 characters is not read as an id prefix
    with pytest.raises(NotFound):
        reg.show(f"{NAME}@{'0' * 64}")
    with pytest.raises(NotFound, match="unknown dataset"):
        reg.show(f"nope@{first}")
    with pytest.raises(InvalidName):
        reg.show(f"{NAME}@")


def test_main_of_a_dataset_without_snapshots_is_not_found(reg: Registry) -> None:
    reg.create_dataset(NAME, "id")
    with pytest.raises(NotFound, match="no snapshots yet"):
        reg.read(NAME)
    with pytest.raises(NotFound):
        reg.log(NAME)


def _crafted_snapshot(template: SnapshotRow, snapshot_id: str) -> SnapshotRow:
    data = template.model_dump()
    data.update(id=snapshot_id, seq=template.seq + 100, parents=json.dumps([template.id]))
    return SnapshotRow(**data)


def test_ambiguous_id_prefix_lists_the_candidates(reg: Registry) -> None:
    [real] = _history(reg, 1)
    one, two = "deadbeef" + "0" * 56, "deadbeef" + "1" * 56
    with transaction(reg.ctx.engine) as session:
        template = session.get(SnapshotRow, real)
        assert template is not None
        session.add(_crafted_snapshot(template, one))
        session.add(_crafted_snapshot(template, two))

    with transaction(reg.ctx.engine) as session:
        dataset = session.exec(select(DatasetRow).where(DatasetRow.name == NAME)).one()
        with pytest.raises(AmbiguousRef) as caught:
            catalog.resolve(session, dataset, "deadbeef")
        assert catalog.resolve(session, dataset, "deadbeef1").id == two
        assert catalog.resolve(session, dataset, one).id == one
    assert one[:16] in caught.value.message and two[:16] in caught.value.message
    assert "2 snapshots" in caught.value.message

    with pytest.raises(AmbiguousRef, match=one[:16]):
        reg.show(f"{NAME}@deadbeef")
    assert reg.show(f"{NAME}@deadbeef0").id == one


def test_id_prefix_does_not_match_another_datasets_snapshot(reg: Registry) -> None:
    [mine] = _history(reg, 1)
    reg.create_dataset("other", "id")
    with pytest.raises(NotFound):
        reg.show(f"other@{mine[:8]}")


def test_composite_key_dataset(reg: Registry) -> None:
    reg.create_dataset("clips", ["clip", "channel"])
    first = reg.commit("clips", pa.table({"clip": ["c1", "c1", "c2"], "channel": [0, 1, 0], "db": [1, 2, 3]}))
    assert first.rows == 3
    second = reg.commit("clips", pa.table({"clip": ["c2", "c1"], "channel": [1, 0], "db": [9, 10]}),
                        mode="upsert", delete_keys=pa.table({"clip": ["c1"], "channel": [1]}))
    assert (second.added, second.changed, second.removed, second.rows) == (1, 1, 1, 3)
    rows = sorted(reg.read("clips").to_pylist(), key=lambda r: (r["clip"], r["channel"]))
    assert rows == [{"clip": "c1", "channel": 0, "db": 10}, {"clip": "c2", "channel": 0, "db": 3},
                    {"clip": "c2", "channel": 1, "db": 9}]
    diff = reg.diff("clips@main~1", "clips")
    assert (diff.added, diff.changed, diff.removed, diff.unchanged) == (1, 1, 1, 1)
    assert sorted((e["kind"], e["key"]["clip"], e["key"]["channel"]) for e in diff.examples) == [
        ("added", "c2", 1), ("changed", "c1", 0), ("removed", "c1", 1)]
    changes = reg.changes("clips@main~1", "clips")
    assert changes.deletes.to_pylist() == [{"clip": "c1", "channel": 1}]
    with pytest.raises(InvalidInput, match="channel"):
        reg.commit("clips", None, mode="upsert", delete_keys=pa.table({"clip": ["c1"]}))


# --- commit statistics against diff ----------------------------------------------------------------------


SCHEMA_CHANGES = {
    # int32 -> int64 is a compatible widening; values compare equal across widths (see hashing.py).
    "widen": (pa.table({"id": ["a", "b", "c"], "value": pa.array([1, 2, 3], pa.int32())}),
              pa.table({"id": ["a", "b", "c"], "value": pa.array([1, 20, 3], pa.int64())})),
    # The same rows with the columns in another order; row hashes ignore column order.
    "reorder": (pa.table({"id": ["a", "b", "c"], "value": [1, 2, 3], "note": ["x", "y", "z"]}),
                pa.table({"id": ["a", "b", "c"], "note": ["x", "y", "z"], "value": [1, 20, 3]})),
}


@pytest.mark.parametrize("change", sorted(SCHEMA_CHANGES))
def test_commit_counts_agree_with_diff_across_a_schema_change(reg: Registry, change: str) -> None:
    """``log`` shows a commit's +added ~changed -removed; ``diff parent..commit`` must tell the same story."""
    before, after = SCHEMA_CHANGES[change]
    reg.create_dataset(NAME, "id")
    reg.commit(NAME, before)
    result = reg.commit(NAME, after)
    diff = reg.diff(f"{NAME}@main~1", NAME)
    assert (diff.added, diff.changed, diff.removed, diff.unchanged) == (0, 1, 0, 2)
    assert (result.added, result.changed, result.removed) == (diff.added, diff.changed, diff.removed)
    logged = reg.log(NAME)[0]
    assert (logged.added, logged.changed, logged.removed) == (diff.added, diff.changed, diff.removed)


def test_schema_versions_are_initial_compatible_or_breaking(reg: Registry) -> None:
    """A reordering of columns must not record a schema version classified 'unchanged'."""
    before, after = SCHEMA_CHANGES["reorder"]
    reg.create_dataset(NAME, "id")
    reg.commit(NAME, before)
    reg.commit(NAME, after)
    assert {v.compatibility for v in reg.schema(NAME)} <= {"initial", "compatible", "breaking"}


# --- tags ------------------------------------------------------------------------------------------------


def test_tags_never_move(reg: Registry) -> None:
    first, second, _ = _history(reg)
    info = reg.tag(f"{NAME}@{first}", "v1")
    assert info.id == first and "v1" in info.tags
    with pytest.raises(AlreadyExists, match="never move"):
        reg.tag(f"{NAME}@{second}", "v1")
    with pytest.raises(AlreadyExists):
        reg.tag(f"{NAME}@{first}", "v1")
    with pytest.raises(InvalidName):
        reg.tag(NAME, "main")  # the branch's name can never become a tag
    assert reg.show(f"{NAME}@v1").id == first
    assert reg.show(NAME).id != first  # main did not move either


def test_invalid_tag_names(reg: Registry) -> None:
    _history(reg, 1)
    for bad in ["main", "deadbeef", "0123456789abcdef", "has space", "-dash", "a@b", "x~1", ""]:
        with pytest.raises((InvalidName, AlreadyExists)):
            reg.tag(NAME, bad)
    assert reg.show(NAME).tags == []


# --- log and show ----------------------------------------------------------------------------------------


def test_log_is_newest_first_with_parents(reg: Registry) -> None:
    first, second, third = _history(reg)
    reg.tag(f"{NAME}@{second}", "mid")
    log = reg.log(NAME)
    assert [s.id for s in log] == [third, second, first]
    assert [s.parents for s in log] == [[second], [first], []]
    assert [s.message for s in log] == ["step 2", "step 1", "step 0"]
    assert log[0].branches == ["main"] and log[1].tags == ["mid"] and log[2].tags == []
    assert [s.id for s in reg.log(NAME, limit=2)] == [third, second]
    assert [s.id for s in reg.log(f"{NAME}@mid")] == [second, first]
    assert all(s.dataset == NAME and s.rows == 3 for s in log)
    assert (log[2].added, log[2].changed, log[2].removed) == (3, 0, 0)
    assert (log[0].added, log[0].changed, log[0].removed) == (0, 3, 0)


def test_show_includes_schema(reg: Registry) -> None:
    [only] = _history(reg, 1)
    info = reg.show(f"{NAME}@{only[:8]}")
    assert info.id == only and info.schema_version == 1
    assert [(c["name"], c["type"]) for c in info.schema] == [("id", "string"), ("value", "int64")]
    assert info.bytes_written > 0 and info.rows == 3 and info.branches == ["main"]


# --- schema versions -------------------------------------------------------------------------------------


def test_schema_versions_compatible_then_breaking(reg: Registry) -> None:
    reg.create_dataset(NAME, "id")
    reg.commit(NAME, _table(["a", "b"], [1, 2]))
    [v1] = reg.schema(NAME)
    assert (v1.version, v1.compatibility) == (1, "initial")

    widened = reg.commit(NAME, _table(["a", "b"], [1, 2], note=pa.array(["x", None], pa.string())))
    assert widened.created and widened.compatibility == "compatible" and widened.schema_version == 2
    versions = reg.schema(NAME)
    assert [(v.version, v.compatibility) for v in versions] == [(1, "initial"), (2, "compatible")]
    assert [c["kind"] for c in versions[1].changes] == ["column_added"]
    assert versions[1].first_snapshot_id == widened.snapshot_id
    assert reg.show(NAME).schema_version == 2

    log_before = [s.id for s in reg.log(NAME)]
    narrowed = pa.table({"id": ["a", "b"], "note": ["x", None]})
    with pytest.raises(BreakingSchemaChange, match="value"):
        reg.commit(NAME, narrowed)
    assert [s.id for s in reg.log(NAME)] == log_before
    assert len(reg.schema(NAME)) == 2
    assert _rows(reg.read(NAME)) == [{"id": "a", "value": 1, "note": "x"},
                                     {"id": "b", "value": 2, "note": None}]

    broken = reg.commit(NAME, narrowed, allow_breaking=True)
    assert broken.created and broken.schema_version == 3 and broken.compatibility == "breaking"
    versions = reg.schema(NAME)
    assert [(v.version, v.compatibility) for v in versions] == [
        (1, "initial"), (2, "compatible"), (3, "breaking")]
    assert [(c["kind"], c["column"], c["breaking"]) for c in versions[2].changes] == [
        ("column_removed", "value", True)]
    assert len(reg.log(NAME)) == len(log_before) + 1
    assert _rows(reg.read(NAME)) == [{"id": "a", "note": "x"}, {"id": "b", "note": None}]
    # Old snapshots still read with their own schema.
    assert _rows(reg.read(f"{NAME}@main~2")) == [{"id": "a", "value": 1}, {"id": "b", "value": 2}]


def test_narrowing_a_type_is_breaking_and_widening_is_not(reg: Registry) -> None:
    reg.create_dataset(NAME, "id")
    reg.commit(NAME, pa.table({"id": ["a"], "value": pa.array([1], pa.int32())}))
    widened = reg.commit(NAME, pa.table({"id": ["a"], "value": pa.array([1], pa.int64())}))
    assert widened.compatibility == "compatible"
    head = reg.show(NAME).id
    with pytest.raises(BreakingSchemaChange):
        reg.commit(NAME, pa.table({"id": ["a"], "value": pa.array([1], pa.int16())}))
    assert reg.show(NAME).id == head
    assert [v.compatibility for v in reg.schema(NAME)] == ["initial", "compatible"]
