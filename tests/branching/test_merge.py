"""Three-way merge: clean merges against an independent reference, every conflict kind, resolutions,
preferences, strategies, annotation records, the target's gate, audit, lineage and the SQL view."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from registry import Registry
from registry.errors import GateBlocked, InvalidInput, NotFound, RefConflict, UnresolvedConflicts
from registry.provenance.records import RECORD_SCHEMA
from registry.snapshots.commit import AnnotationInput, commit
from tests.conftest import Cli
from tests.lineage.test_lineage_spec import check_event, emitted
from tests.support.helpers import labels_table

SCHEMA = labels_table(1).schema


def _rows(reg: Registry, ref: str) -> dict[str, dict[str, Any]]:
    return {r["sample_id"]: r for r in reg.read(ref).to_pylist()}


def _upsert(reg: Registry, ref: str, rows: list[dict[str, Any]], delete: list[str] | None = None) -> None:
    table = pa.Table.from_pylist(rows, schema=SCHEMA) if rows else None
    deletes = pa.table({"sample_id": delete}) if delete else None
    if table is None:
        reg.commit(ref, None, mode="upsert", delete_keys=deletes)
    else:
        reg.commit(ref, table, mode="upsert", delete_keys=deletes)


def _edit(rows: dict[str, dict[str, Any]], key: str, **cells: Any) -> dict[str, Any]:
    return {**rows[key], **cells}


def _setup(reg: Registry, n: int = 300) -> dict[str, dict[str, Any]]:
    reg.create_dataset("ds", "sample_id")
    reg.commit("ds", labels_table(n), message="v1")
    reg.branch("ds/feat")
    return _rows(reg, "ds")


def _reference(base: dict[str, Any], ours: dict[str, Any], theirs: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """An independent three-way merge of whole tables (dicts by key) taking ours on conflicts, and the
    number of conflicting cells/rows."""
    merged, conflicts = {}, 0
    for key in set(base) | set(ours) | set(theirs):
        b, o, t = base.get(key), ours.get(key), theirs.get(key)
        if o == t:
            result = o
        elif o == b:
            result = t
        elif t == b:
            result = o
        elif o is None or t is None:
            conflicts += 1
            result = o
        else:
            result = dict(o)
            for column in o:
                base_value = b[column] if b else None
                if o[column] == t[column]:
                    continue
                if b is not None and o[column] == base_value:
                    result[column] = t[column]
                elif b is None or t[column] != base_value:
                    conflicts += 1
        if result is not None:
            merged[key] = result
    return merged, conflicts


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_merges_match_an_independent_three_way_merge(reg: Registry, seed: int) -> None:
    base = _setup(reg, 400)
    rng = random.Random(seed)
    keys = sorted(base)
    for ref in ("ds@main", "ds@feat"):
        rows = _rows(reg, ref)
        touched = rng.sample(keys, 80)
        edits = [_edit(rows, k, **{rng.choice(["label", "annotator_id"]): f"{ref[-4:]}-{rng.randint(0, 2)}"})
                 for k in touched[:60]]
        added = [_edit(rows, keys[0], sample_id=f"new{rng.randint(0, 30):03d}", label=f"L{rng.randint(0, 1)}")
                 for _ in range(10)]
        added = list({r["sample_id"]: r for r in added}.values())
        _upsert(reg, ref, edits + added, delete=touched[60:70])
    ours, theirs = _rows(reg, "ds@main"), _rows(reg, "ds@feat")
    expected, expected_conflicts = _reference(base, ours, theirs)
    dry = reg.merge("ds@feat", "main", dry_run=True)
    assert len(dry.conflicts) == expected_conflicts
    result = reg.merge("ds@feat", "main", strategy="ours")
    assert result.outcome == "merged" and len(result.conflicts) == expected_conflicts
    assert _rows(reg, "ds@main") == expected
    head = reg.show("ds")
    assert head.parents == [dry.target_before, dry.source_snapshot]
    assert head.rows == len(expected)
    assert reg.verify().ok


def test_clean_merge_keeps_changes_of_both_sides_in_different_columns(reg: Registry) -> None:
    base = _setup(reg)
    _upsert(reg, "ds", [_edit(base, "s00000001", label="ours-label")], delete=["s00000009"])
    _upsert(reg, "ds@feat", [_edit(base, "s00000001", annotator_id="theirs-ann"),
                             _edit(base, "s00000002", label="t2"), _edit(base, "s00000003", sample_id="added")])
    result = reg.merge("ds@feat", "main")
    assert (result.outcome, result.conflicts, result.added, result.changed) == ("merged", [], 1, 2)
    rows = _rows(reg, "ds")
    assert rows["s00000001"]["label"] == "ours-label" and rows["s00000001"]["annotator_id"] == "theirs-ann"
    assert rows["s00000002"]["label"] == "t2" and "added" in rows and "s00000009" not in rows
    assert reg.diff("ds@main~1", "ds@main").changed == 2  # first-parent diff: what the merge brought
    # Merging again changes nothing; feat is now merged into main.
    assert reg.merge("ds@feat", "main").outcome == "up-to-date"
    assert {b.name: b.merged for b in reg.branches("ds")}["feat"] is True
    assert reg.verify().ok and reg.verify_audit().ok


def test_fast_forward_moves_the_ref_without_a_snapshot(reg: Registry) -> None:
    base = _setup(reg)
    _upsert(reg, "ds@feat", [_edit(base, "s00000004", label="ff")])
    feat = reg.show("ds@feat").id
    snapshots = len(reg.log("ds@feat"))
    result = reg.merge("ds@feat", "main")
    assert result.outcome == "fast-forward" and result.snapshot_id == feat
    assert reg.show("ds").id == feat and len(reg.log("ds")) == snapshots
    event = reg.audit_log(dataset="ds", action="merge")[-1]
    assert event.details["fast_forward"] is True and event.details["to"] == feat


def test_every_conflict_kind_is_listed_and_nothing_changes(reg: Registry, cli: Cli) -> None:
    base = _setup(reg)
    new = _edit(base, "s00000000", sample_id="both-new")
    _upsert(reg, "ds", [_edit(base, "s00000001", label="ours"), _edit(base, "s00000002", label="o2"),
                        {**new, "label": "A"}], delete=["s00000003"])
    _upsert(reg, "ds@feat", [_edit(base, "s00000001", label="theirs"), _edit(base, "s00000003", label="t3"),
                             {**new, "label": "B"}], delete=["s00000002"])
    head = reg.show("ds").id
    with pytest.raises(UnresolvedConflicts) as raised:
        reg.merge("ds@feat", "main")
    assert reg.show("ds").id == head
    found = {(c["key"]["sample_id"], c["column"], c["kind"]) for c in raised.value.conflicts}
    assert found == {("s00000001", "label", "changed"), ("s00000002", "*", "deleted-theirs"),
                     ("s00000003", "*", "deleted-ours"), ("both-new", "label", "added")}
    cell = next(c for c in raised.value.conflicts if c["key"]["sample_id"] == "s00000001")
    assert (cell["base"], cell["ours"], cell["theirs"]) == (base["s00000001"]["label"], "ours", "theirs")
    refused = reg.audit_log(dataset="ds", action="merge.refused")
    assert refused[-1].details["reason"] == "conflicts" and refused[-1].details["conflicts"] == 4
    view = reg.query("SELECT key, column_name, kind, ours, theirs FROM merge_conflicts WHERE dataset = 'ds' "
                     "ORDER BY kind").to_pylist()
    assert [r["kind"] for r in view] == ["added", "changed", "deleted-ours", "deleted-theirs"]
    assert reg.merge_conflicts("ds@feat").num_rows == 4
    res = cli("merge", "ds@feat", "--into", "main", "--json")
    assert res.code == 1
    assert len(json.loads(res.stdout)["conflicts"]) == 4
    text = cli("merge", "ds@feat")
    assert text.code == 1 and "s00000001" in text.stdout and "unresolved conflict" in text.stderr


def test_resolutions_file_then_strategy(reg: Registry, tmp_path: Path) -> None:
    base = _setup(reg)
    _upsert(reg, "ds", [_edit(base, f"s0000000{i}", label=f"o{i}") for i in range(4)])
    _upsert(reg, "ds@feat", [_edit(base, f"s0000000{i}", label=f"t{i}") for i in range(4)])
    path = tmp_path / "res.csv"
    pacsv.write_csv(pa.table({"sample_id": ["s00000000", "s00000001", "s00000002"],
                              "column": ["label"] * 3, "value": ["ours", "theirs", "hand-fixed"]}), path)
    with pytest.raises(UnresolvedConflicts) as raised:
        reg.merge("ds@feat", "main", resolutions=path)
    assert [c["key"]["sample_id"] for c in raised.value.conflicts] == ["s00000003"]
    result = reg.merge("ds@feat", "main", resolutions=path, strategy="theirs")
    rows = _rows(reg, "ds")
    assert [rows[f"s0000000{i}"]["label"] for i in range(4)] == ["o0", "t1", "hand-fixed", "t3"]
    assert sorted(c["resolution"]["by"] for c in result.conflicts) == [
        "resolutions file", "resolutions file", "resolutions file", "strategy theirs"]
    assert reg.audit_log(dataset="ds", action="merge")[-1].details["resolved"] == 4


def test_bad_resolutions_are_refused_with_one_line(reg: Registry, tmp_path: Path) -> None:
    base = _setup(reg)
    _upsert(reg, "ds", [_edit(base, "s00000001", confidence=0.25)])
    _upsert(reg, "ds@feat", [_edit(base, "s00000001", confidence=0.75)])
    cases = {
        "missing.csv": pa.table({"sample_id": ["s00000001"], "value": ["ours"]}),
        "nowhere.csv": pa.table({"sample_id": ["s00000099"], "column": ["label"], "value": ["ours"]}),
        "badvalue.csv": pa.table({"sample_id": ["s00000001"], "column": ["confidence"], "value": ["lots"]}),
        "twice.csv": pa.table({"sample_id": ["s00000001"] * 2, "column": ["confidence"] * 2,
                               "value": ["ours", "theirs"]}),
    }
    for name, table in cases.items():
        pacsv.write_csv(table, tmp_path / name)
        with pytest.raises(InvalidInput):
            reg.merge("ds@feat", "main", resolutions=tmp_path / name)
    with pytest.raises(InvalidInput):
        reg.merge("ds@feat", "main", resolutions=tmp_path / "absent.csv")
    with pytest.raises(InvalidInput):
        reg.merge("ds@feat", "main", strategy="both")
    with pytest.raises(NotFound):
        reg.merge("ds@feat", "nobranch")
    with pytest.raises(NotFound):
        reg.merge("ds@nosuch", "main")
    value = tmp_path / "value.csv"
    pacsv.write_csv(pa.table({"sample_id": ["s00000001"], "column": ["confidence"], "value": ["0.5"]}), value)
    reg.merge("ds@feat", "main", resolutions=value)
    assert _rows(reg, "ds")["s00000001"]["confidence"] == 0.5


def _records(rows: list[tuple[str, str, str, str, bool, str | None]]) -> pa.Table:
    """(annotation_id, sample, annotator, value, ground_truth, reviewer) -> records."""
    data = [{"annotation_id": a, "sample_key": s, "annotator_id": who, "value": v, "ground_truth": gt,
             "reviewer": rev, "review_state": "accepted" if rev else None, "source_kind": "human",
             "created_at": f"2026-01-0{i + 1}T00:00:00Z", "guideline_version": "g1"}
            for i, (a, s, who, v, gt, rev) in enumerate(rows)]
    return pa.Table.from_pylist(data, schema=RECORD_SCHEMA)


def _label_commit(reg: Registry, ref: str, base: dict[str, Any], labels: dict[str, str], records: pa.Table) -> None:
    rows = pa.Table.from_pylist([_edit(base, k, label=v) for k, v in labels.items()], schema=SCHEMA)
    commit(reg.ctx, ref, rows, mode="upsert", annotations=AnnotationInput(records, "label", replace=False))


@pytest.mark.parametrize(("prefer", "winner"), [("ground-truth", "theirs"), ("reviewer", "ours"),
                                                 ("majority", "ours")])
def test_prefer_resolves_label_conflicts_from_the_records(reg: Registry, prefer: str, winner: str) -> None:
    base = _setup(reg)
    _label_commit(reg, "ds", base, {"s00000001": "cat"}, _records([
        ("o1", "s00000001", "ann-a", "cat", False, "rev-1"), ("o2", "s00000001", "ann-b", "cat", False, None)]))
    _label_commit(reg, "ds@feat", base, {"s00000001": "dog"}, _records([
        ("t1", "s00000001", "ann-c", "dog", True, None)]))
    dry = reg.merge("ds@feat", "main", dry_run=True)
    conflict = dry.conflicts[0]
    assert conflict["ours_annotator"] == "ann-b" and conflict["theirs_annotator"] == "ann-c"
    assert conflict["theirs_guideline"] == "g1" and conflict["theirs_labeled_at"].startswith("2026-01-01")
    result = reg.merge("ds@feat", "main", prefer=prefer)
    assert result.conflicts[0]["resolution"] == {"take": winner, "value": None, "by": f"prefer {prefer}"}
    assert _rows(reg, "ds")["s00000001"]["label"] == ("cat" if winner == "ours" else "dog")
    ids = sorted(reg.annotations("ds").column("annotation_id").to_pylist())
    assert ids == ["o1", "o2", "t1"], "the merged record set is the union of both sides' acts"


def test_prefer_ties_stay_conflicts(reg: Registry) -> None:
    base = _setup(reg)
    _label_commit(reg, "ds", base, {"s00000001": "cat"}, _records([("o1", "s00000001", "a", "cat", False, None)]))
    _label_commit(reg, "ds@feat", base, {"s00000001": "dog"}, _records([("t1", "s00000001", "b", "dog", False, None)]))
    for prefer in ("majority", "ground-truth", "reviewer"):
        with pytest.raises(UnresolvedConflicts):
            reg.merge("ds@feat", "main", prefer=prefer)


def test_gate_of_the_target_decides_and_is_recorded(reg: Registry) -> None:
    base = _setup(reg, 100)
    reg.set_policy("ds", "checks:\n  - check: row_count\n    min: 100\n")
    _upsert(reg, "ds", [_edit(base, "s00000001", label="x")])
    _upsert(reg, "ds@feat", [], delete=[f"s000000{i:02d}" for i in range(10, 20)])
    head = reg.show("ds").id
    with pytest.raises(GateBlocked, match=r"row_count: 90 vs >= 100"):
        reg.merge("ds@feat", "main")
    assert reg.show("ds").id == head
    refused = reg.audit_log(dataset="ds", action="merge.refused")[-1]
    assert refused.details["reason"] == "gate" and refused.details["failed"][0]["name"] == "row_count"
    # A passing merge records its gate result on the merge snapshot.
    reg.branch("ds/ok", from_ref=base_ref(reg))
    _upsert(reg, "ds@ok", [_edit(base, "s00000002", label="y")])
    result = reg.merge("ds@ok", "main")
    assert result.gate is not None and result.gate["state"] == "passed"
    assert reg.gate(f"ds@{result.snapshot_id}").passes
    assert reg.audit_log(dataset="ds", action="merge")[-1].details["gate"] == "passed"


def base_ref(reg: Registry) -> str:
    return reg.log("ds")[-1].id


def test_merge_emits_a_lineage_run_with_both_parents_as_inputs(reg: Registry) -> None:
    base = _setup(reg)
    _upsert(reg, "ds", [_edit(base, "s00000001", label="o")])
    _upsert(reg, "ds@feat", [_edit(base, "s00000002", label="t")])
    result = reg.merge("ds@feat", "main")
    events = [e for e in emitted(reg.home) if e["job"]["name"] == "merge/ds"]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    for event in events:
        check_event(event)
    complete = events[-1]
    assert sorted(i["facets"]["version"]["datasetVersion"] for i in complete["inputs"]) == sorted(
        [result.target_before, result.source_snapshot])
    assert complete["outputs"][0]["facets"]["version"]["datasetVersion"] == result.snapshot_id


def test_expect_target_and_schema_conflicts(reg: Registry) -> None:
    base = _setup(reg)
    _upsert(reg, "ds@feat", [_edit(base, "s00000001", label="t")])
    _upsert(reg, "ds", [_edit(base, "s00000002", label="o")])
    with pytest.raises(RefConflict):
        reg.merge("ds@feat", "main", expect_target=base_ref(reg))
    wide = reg.read("ds@feat")
    reg.commit("ds@feat", wide.set_column(3, "confidence", wide.column("confidence").cast(pa.float64())),
               allow_breaking=True)
    reg.commit("ds", reg.read("ds").set_column(3, "confidence", pa.array(["x"] * wide.num_rows)),
               allow_breaking=True)
    with pytest.raises(UnresolvedConflicts, match="confidence") as raised:
        reg.merge("ds@feat", "main", strategy="theirs")
    assert raised.value.conflicts[0]["kind"] == "schema"
    assert reg.audit_log(dataset="ds", action="merge.refused")[-1].details["reason"] == "schema"


def test_fast_forward_is_gated_and_a_waiver_on_the_result_applies(reg: Registry) -> None:
    reg.create_dataset("ds", "sample_id", owner="alice")
    reg.commit("ds", labels_table(100), author="alice")
    reg.set_policy("ds", "checks:\n  - check: row_count\n    min: 100\n", actor="alice")
    reg.branch("ds/shrink")
    _upsert(reg, "ds@shrink", [], delete=["s00000001"])
    head, shrunk = reg.show("ds").id, reg.show("ds@shrink").id
    with pytest.raises(GateBlocked, match="99 vs >= 100"):
        reg.merge("ds@shrink", "main")
    assert reg.show("ds").id == head
    reg.waive("ds@shrink", "one sample withdrawn by its owner", actor="alice")
    result = reg.merge("ds@shrink", "main")
    assert result.outcome == "fast-forward" and reg.show("ds").id == shrunk
    assert result.gate is not None and result.gate["state"] == "waived"


def test_composite_keys_merge_and_resolve(reg: Registry, tmp_path: Path) -> None:
    reg.create_dataset("boxes", ["image", "box"])
    reg.commit("boxes", pa.table({"image": ["a", "a", "b"], "box": [1, 2, 1], "label": ["x", "y", "z"]}))
    reg.branch("boxes/fix")
    reg.commit("boxes@fix", pa.table({"image": ["a", "b"], "box": [2, 1], "label": ["t2", "tz"]}), mode="upsert")
    reg.commit("boxes", pa.table({"image": ["b"], "box": [1], "label": ["oz"]}), mode="upsert")
    dry = reg.merge("boxes@fix", "main", dry_run=True)
    assert [(c["key"], c["ours"], c["theirs"]) for c in dry.conflicts] == [({"image": "b", "box": 1}, "oz", "tz")]
    path = tmp_path / "res.jsonl"
    path.write_text(json.dumps({"image": "b", "box": 1, "column": "label", "value": "theirs"}) + "\n")
    reg.merge("boxes@fix", "main", resolutions=path)
    rows = {(r["image"], r["box"]): r["label"] for r in reg.read("boxes").to_pylist()}
    assert rows == {("a", 1): "x", ("a", 2): "t2", ("b", 1): "tz"}


def test_verify_cross_check_replays_branches_and_merges(reg: Registry) -> None:
    """verify replays branch.create/delete and both kinds of merge from the audit chain: a registry that only
    the registry changed verifies clean, and moving a merged-into branch behind its back is named."""
    rows = _setup(reg, 50)
    reg.branch("ds/fix")
    _upsert(reg, "ds@fix", [_edit(rows, "s00000001", label="cat")])
    reg.branch("ds/ff")
    reg.merge("ds@fix", "ff")  # fast-forward
    _upsert(reg, "ds@main", [_edit(rows, "s00000002", label="dog")])
    merged = reg.merge("ds@fix", "main")  # merge snapshot with two parents
    reg.branch("ds/tmp")
    reg.delete_branch("ds/tmp")
    report = reg.verify()
    assert report.ok, report.problems
    with reg.ctx.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE ref SET snapshot_id = (SELECT snapshot_id FROM ref WHERE name = 'fix') "
                             "WHERE name = 'main'")
    problems = reg.verify().problems
    assert any("ds@main" in p and merged.snapshot_id[:12] in p for p in problems), problems


def _with_note(table: pa.Table, notes: dict[str, str | None]) -> pa.Table:
    ids = table.column("sample_id").to_pylist()
    return table.append_column(pa.field("note", pa.string(), nullable=True),
                               pa.array([notes.get(i) for i in ids], pa.string()))


def test_a_column_added_on_one_side_merges_and_the_other_sides_rows_get_null(reg: Registry) -> None:
    """Adding a nullable column is a compatible change: merged into a moved, unchanged-schema main, the
    result has the column (main's own new and changed rows hold null in it) and every change of both."""
    base = _setup(reg, 50)
    _upsert(reg, "ds", [_edit(base, "s00000004", label="o"), {**base["s00000000"], "sample_id": "new-main"}],
            delete=["s00000005"])
    feat = reg.read("ds@feat")
    reg.commit("ds@feat", _with_note(feat, {"s00000001": "blurry", "s00000002": "ok"}).set_column(
        1, "label", pa.array(["t" if i == "s00000003" else v for i, v in
                              zip(feat.column("sample_id").to_pylist(), feat.column("label").to_pylist(),
                                  strict=True)])))
    result = reg.merge("ds@feat", "main")
    assert result.outcome == "merged" and not result.conflicts
    merged = _rows(reg, "ds")
    assert reg.read("ds").schema.names == [*SCHEMA.names, "note"]
    assert merged["s00000001"]["note"] == "blurry" and merged["s00000002"]["note"] == "ok"
    assert merged["s00000003"]["label"] == "t" and merged["s00000004"]["label"] == "o"
    assert merged["s00000004"]["note"] is None and merged["new-main"]["note"] is None
    assert "s00000005" not in merged and len(merged) == 50
    assert reg.show("ds").rows == 50
    assert reg.show("ds").schema_version == reg.show("ds@feat").schema_version, "the merged schema is feat's"
    assert reg.verify().ok


def test_the_same_column_added_on_both_sides_merges_and_its_values_merge_by_cell(reg: Registry) -> None:
    _setup(reg, 30)
    reg.commit("ds@feat", _with_note(reg.read("ds@feat"), {"s00000001": "feat", "s00000003": "same"}))
    reg.commit("ds", _with_note(reg.read("ds"), {"s00000002": "main", "s00000003": "same"}))
    result = reg.merge("ds@feat", "main")
    assert result.outcome == "merged" and not result.conflicts
    merged = _rows(reg, "ds")
    assert [merged[f"s0000000{i}"]["note"] for i in range(5)] == [None, "feat", "main", "same", None]
    reg.branch("ds/again")
    reg.commit("ds@again", _with_note(reg.read("ds@again").drop_columns(["note"]), {"s00000009": "x"}))
    reg.commit("ds", _with_note(reg.read("ds").drop_columns(["note"]), {"s00000009": "y"}))
    with pytest.raises(UnresolvedConflicts) as raised:
        reg.merge("ds@again", "main")
    assert [(c["column"], c["ours"], c["theirs"]) for c in raised.value.conflicts] == [("note", "y", "x")]


def test_a_breaking_change_on_one_side_is_still_refused_clearly(reg: Registry) -> None:
    base = _setup(reg, 30)
    _upsert(reg, "ds", [_edit(base, "s00000004", label="o")])
    reg.commit("ds@feat", reg.read("ds@feat").drop_columns(["annotator_id"]), allow_breaking=True)
    head = reg.show("ds").id
    with pytest.raises(InvalidInput, match="annotator_id"):
        reg.merge("ds@feat", "main")
    assert reg.show("ds").id == head
