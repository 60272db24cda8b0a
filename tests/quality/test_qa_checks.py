"""Each QA check passes at its threshold and fails just beyond it, evaluated through ``qa run`` on a
real registry (SQLite and PostgreSQL catalogs, real Parquet)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, select

from registry import Registry
from registry.audit.models import AuditEventRow
from registry.quality.agreement import cohen_kappa, fleiss_kappa, krippendorff_alpha_nominal, unit_counts

LABELS = ["a"] * 50 + ["b"] * 30 + ["c"] * 20


def labels(values: list[str | None], extra: dict[str, list[Any]] | None = None) -> pa.Table:
    """A keyed labels table: sample_id s000..., label, plus ``extra`` columns."""
    return pa.table({"sample_id": [f"s{i:03d}" for i in range(len(values))], "label": pa.array(values, pa.string()),
                     **(extra or {})})


def records(rows: list[tuple[str, str, str]], **columns: list[Any]) -> pa.Table:
    """Annotation records in long form from (sample_key, annotator_id, value) triples."""
    n = len(rows)
    return pa.table({
        "record_id": [f"r{i:05d}" for i in range(n)],
        "sample_key": [r[0] for r in rows], "annotator_id": [r[1] for r in rows], "value": [r[2] for r in rows],
        "created_at": columns.get("created_at", [f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z" for i in range(n)]),
        "guideline_version": columns.get("guideline_version", ["g1"] * n),
        "source_kind": columns.get("source_kind", ["human"] * n),
    })


def setup(reg: Registry, table: pa.Table, name: str = "labels") -> None:
    reg.create_dataset(name, "sample_id")
    reg.commit(name, table)


def evaluate(reg: Registry, check: dict[str, Any], ref: str = "labels") -> dict[str, Any]:
    """Set a one-check policy on ``ref``'s dataset, run QA, return that check's outcome."""
    reg.set_policy(ref.split("@")[0], yaml.safe_dump({"checks": [check]}))
    result = reg.qa_run(ref)
    (outcome,) = result.checks
    assert result.status == ("passed" if outcome["passed"] or outcome["severity"] == "warn" else "failed")
    return outcome


def at_and_beyond(reg: Registry, check: dict[str, Any], field: str, passing: Any, failing: Any,
                  ref: str = "labels") -> tuple[dict[str, Any], dict[str, Any]]:
    """The outcomes with ``field`` at the passing threshold and just beyond it; asserts pass then fail."""
    ok = evaluate(reg, {**check, field: passing}, ref)
    bad = evaluate(reg, {**check, field: failing}, ref)
    assert ok["passed"], ok
    assert not bad["passed"], bad
    assert ok["metric"] == bad["metric"]
    return ok, bad


def test_row_count(reg: Registry) -> None:
    setup(reg, labels(LABELS))
    ok, bad = at_and_beyond(reg, {"check": "row_count"}, "min", 100, 101)
    assert ok["metric"] == 100 and bad["threshold"] == ">= 101"
    at_and_beyond(reg, {"check": "row_count"}, "max", 100, 99)


def test_unique_key(reg: Registry) -> None:
    setup(reg, labels(LABELS, {"uid": list(range(100)), "pair": [i // 2 for i in range(100)]}))
    assert evaluate(reg, {"check": "unique_key"})["metric"] == 0
    assert evaluate(reg, {"check": "unique_key", "columns": ["uid"]})["passed"]
    dup = evaluate(reg, {"check": "unique_key", "columns": ["pair"]})
    assert not dup["passed"] and dup["metric"] == 50


def test_not_null(reg: Registry) -> None:
    setup(reg, labels([*LABELS[:99], None], {"note": ["x"] * 100}))
    assert evaluate(reg, {"check": "not_null", "columns": ["note"]})["passed"]
    bad = evaluate(reg, {"check": "not_null", "columns": ["label", "note"]})
    assert not bad["passed"] and bad["metric"] == 1 and bad["details"]["nulls"] == {"label": 1, "note": 0}


def test_allowed_values(reg: Registry) -> None:
    setup(reg, labels(LABELS))
    assert evaluate(reg, {"check": "allowed_values", "column": "label", "values": ["a", "b", "c"]})["passed"]
    bad = evaluate(reg, {"check": "allowed_values", "column": "label", "values": ["a", "b"]})
    assert not bad["passed"] and bad["metric"] == 20
    assert bad["details"]["examples"] == [{"value": "c", "rows": 20}]


def test_counting_checks_read_a_layered_snapshot_in_batches(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """``not_null`` and ``allowed_values`` count batch by batch (3 rows here, over 7-row groups and three
    layers) and give what one pass over the whole columns gives."""
    from registry.quality import subject
    from registry.snapshots import layers

    monkeypatch.setattr(layers.write_parquet_object, "__defaults__", (7, None))
    monkeypatch.setattr(subject, "BATCH_ROWS", 3)
    values = [["a", "b", "x", None, "y"][i % 5] for i in range(60)]
    setup(reg, labels(values))
    reg.commit("labels", labels(["z", None, "a"]), mode="upsert")  # s000..s002 change
    reg.commit("labels", None, mode="upsert", delete_keys=pa.table({"sample_id": ["s003", "s008"]}))
    table = reg.read("labels")
    column = table.column("label").to_pylist()
    outside = [v for v in column if v is not None and v not in ("a", "b")]
    nulls = evaluate(reg, {"check": "not_null", "columns": ["label", "sample_id"]})
    assert nulls["details"]["nulls"] == {"label": column.count(None), "sample_id": 0}
    bad = evaluate(reg, {"check": "allowed_values", "column": "label", "values": ["a", "b"]})
    assert bad["metric"] == len(outside)
    first_seen = list(dict.fromkeys(outside))
    expected = sorted(((v, outside.count(v)) for v in first_seen), key=lambda item: -item[1])
    assert bad["details"]["examples"] == [{"value": v, "rows": n} for v, n in expected]


def test_not_null_does_not_read_the_key_columns(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key column cannot hold a null (every commit refuses one), so ``not_null`` counts it as none without
    reading it: at 100M rows, seconds of decoding ids."""
    from registry.errors import InvalidInput
    from registry.quality.subject import Subject

    setup(reg, labels([*LABELS[:98], None, None]))
    with pytest.raises(InvalidInput, match="null"):
        reg.commit("labels", pa.table({"sample_id": pa.array([None], pa.string()), "label": ["a"]}), mode="upsert")
    asked: list[list[str]] = []
    real = Subject.batches

    def spy(self: Subject, names: list[str], as_codes: bool = False) -> Any:
        asked.append(list(names))
        return real(self, names, as_codes)

    monkeypatch.setattr(Subject, "batches", spy)
    bad = evaluate(reg, {"check": "not_null", "columns": ["sample_id", "label"]})
    assert asked == [["label"]]
    assert bad["details"] == {"nulls": {"sample_id": 0, "label": 2}, "key_columns_not_read": ["sample_id"]}
    asked.clear()
    assert evaluate(reg, {"check": "not_null", "columns": ["sample_id"]})["passed"] and asked == []


values = st.one_of(st.none(), st.sampled_from(["a", "b", "x", "y", ""]), st.text(min_size=1, max_size=3))
changes = st.lists(st.tuples(st.dictionaries(st.integers(0, 59), st.tuples(values, st.none() | st.integers(0, 4)),
                                             max_size=30),
                             st.sets(st.integers(0, 59), max_size=5)), max_size=3)


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(first=st.lists(st.tuples(values, st.none() | st.integers(0, 4)), min_size=1, max_size=60), later=changes)
def test_counting_checks_equal_a_count_of_the_rows_read(tmp_path_factory: pytest.TempPathFactory,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        first: list[tuple[str | None, int | None]],
                                                        later: list[tuple[dict[int, Any], set[int]]]) -> None:
    """``not_null`` and ``allowed_values`` over random layered snapshots (upserts and deletions over 7-row
    groups; text read as dictionary codes, or plainly once a row group holds mostly distinct values; an
    integer column compared as text with a text list) give what a count over ``read``'s rows gives."""
    from registry.snapshots import layers

    monkeypatch.setattr(layers.write_parquet_object, "__defaults__", (7, None))
    for var in ("REGISTRY_HOME", "REGISTRY_DATABASE_URL", "REGISTRY_STORAGE_URL"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path_factory.mktemp("counting") / "home"
    Registry.init(home).close()
    with Registry.open(home) as reg:
        def table(rows: dict[int, tuple[str | None, int | None]]) -> pa.Table:
            return pa.table({"sample_id": [f"s{k:03d}" for k in rows], "label": pa.array([v[0] for v in rows.values()],
                                                                                    pa.string()),
                             "grade": pa.array([v[1] for v in rows.values()], pa.int32())})

        setup(reg, table(dict(enumerate(first))))
        present = set(range(len(first)))
        for upserts, deletes in later:
            deletes = (deletes & present) - upserts.keys()  # a commit deletes keys it has, and upserts others
            if not upserts and not deletes:
                continue
            gone = pa.table({"sample_id": [f"s{k:03d}" for k in sorted(deletes)]}) if deletes else None
            reg.commit("labels", table(upserts) if upserts else None, mode="upsert", delete_keys=gone)
            present = (present | upserts.keys()) - deletes
        rows = reg.read("labels")
        for column, allowed in (("label", ["a", "b", ""]), ("grade", ["0", "1"]), ("grade", [2, 3])):
            got = evaluate(reg, {"check": "allowed_values", "column": column, "values": allowed})
            text = [None if v is None else str(v) for v in rows.column(column).to_pylist()]
            outside = Counter(v for v in text if v is not None and v not in {str(a) for a in allowed})
            assert got["metric"] == sum(outside.values()), (column, allowed)
            listed = {str(e["value"]) for e in got["details"]["examples"]}
            assert all(outside[str(e["value"])] == e["rows"] for e in got["details"]["examples"])
            assert len(listed) == min(len(outside), 5) and all(
                outside[v] <= min(e["rows"] for e in got["details"]["examples"]) for v in outside if v not in listed)
        nulls = evaluate(reg, {"check": "not_null", "columns": ["label", "grade", "sample_id"]})
        assert nulls["details"]["nulls"] == {c: rows.column(c).null_count for c in ("label", "grade", "sample_id")}


def test_schema_compatible_against_last_passed(reg: Registry) -> None:
    setup(reg, labels(LABELS, {"score": [1.0] * 100}))
    first = evaluate(reg, {"check": "schema_compatible"})
    assert first["passed"] and "nothing to compare" in first["details"]["note"]
    reg.commit("labels", labels(LABELS, {"score": [1.0] * 100, "extra": [1] * 100}))
    added = evaluate(reg, {"check": "schema_compatible"})
    assert added["passed"] and added["metric"] == 0 and added["details"]["compatible"] == ["+ extra int64"]
    reg.commit("labels", labels(LABELS, {"extra": [1] * 100}), allow_breaking=True)
    dropped = evaluate(reg, {"check": "schema_compatible"})
    assert not dropped["passed"] and dropped["metric"] == 1 and dropped["details"]["breaking"] == ["- score double"]


def test_max_changed_fraction(reg: Registry) -> None:
    setup(reg, labels(LABELS))
    assert evaluate(reg, {"check": "max_changed_fraction", "max": 0.0})["metric"] is None  # no parent yet
    changed = LABELS.copy()
    changed[:10] = ["z"] * 10
    reg.commit("labels", labels(changed))
    ok, _ = at_and_beyond(reg, {"check": "max_changed_fraction"}, "max", 0.1, 0.09)
    assert ok["metric"] == pytest.approx(0.1) and ok["details"]["changed"] == 10


def test_class_balance(reg: Registry) -> None:
    setup(reg, labels(LABELS))
    ok, _ = at_and_beyond(reg, {"check": "class_balance", "column": "label"}, "min_share", 0.2, 0.21)
    assert ok["details"]["shares"] == {"a": 0.5, "b": 0.3, "c": 0.2}
    _, bad = at_and_beyond(reg, {"check": "class_balance", "column": "label"}, "max_share", 0.5, 0.49)
    assert bad["details"]["above_max"] == ["a"]


def test_distribution_shift_against_last_passed(reg: Registry) -> None:
    setup(reg, labels(["a"] * 50 + ["b"] * 50))
    assert evaluate(reg, {"check": "distribution_shift", "column": "label", "max_tvd": 0.0})["passed"]  # baseline
    reg.commit("labels", labels(["a"] * 60 + ["b"] * 40))
    ok, _ = at_and_beyond(reg, {"check": "distribution_shift", "column": "label"}, "max_tvd", 0.1, 0.09)
    assert ok["metric"] == pytest.approx(0.1)
    with Session(reg.ctx.engine) as session:
        first = session.exec(select(AuditEventRow).where(AuditEventRow.action == "snapshot.commit")
                             .order_by(col(AuditEventRow.seq))).first()
    assert first is not None and ok["details"]["against"] == first.snapshot


def test_nan_is_one_value_for_the_share_checks(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """NaN equals no NaN: counted a row group at a time (7 rows here), each group's NaN would be a value of
    its own, and one snapshot's NaN share would never meet another's."""
    from registry.snapshots import layers

    monkeypatch.setattr(layers.write_parquet_object, "__defaults__", (7, None))
    scores = [float("nan") if i % 2 else 1.0 for i in range(40)]
    setup(reg, labels(["a"] * 40, {"score": scores}))
    balance = evaluate(reg, {"check": "class_balance", "column": "score", "min_share": 0.5})
    assert balance["passed"] and balance["details"]["shares"] == {"1.0": 0.5, "nan": 0.5}, balance
    reg.commit("labels", labels(["b"] * 40, {"score": scores}))  # the same scores again: nothing moved
    shift = evaluate(reg, {"check": "distribution_shift", "column": "score", "max_tvd": 0.0})
    assert shift["passed"] and shift["metric"] == 0, shift


def test_gold_accuracy(reg: Registry) -> None:
    setup(reg, labels(LABELS))
    # 8 of the 10 gold labels agree: s004 is a (gold says b), s080 is c (gold says b).
    gold = pa.table({"sample_id": [f"s{i:03d}" for i in [0, 1, 2, 3, 4, 50, 51, 52, 80, 81]],
                     "truth": ["a", "a", "a", "a", "b", "b", "b", "b", "b", "c"]})
    reg.create_dataset("gold", "sample_id")
    reg.commit("gold", gold)
    check = {"check": "gold_accuracy", "gold": "gold@main", "label": "label", "gold_label": "truth"}
    ok, _ = at_and_beyond(reg, check, "min_accuracy", 0.8, 0.81)
    assert ok["details"]["matched"] == 10 and ok["details"]["per_class"]["b"] == {"items": 5, "accuracy": 0.6}
    per_class = evaluate(reg, {**check, "min_accuracy": 0.8, "min_class_accuracy": 0.61})
    assert not per_class["passed"] and per_class["details"]["classes_below_min"] == ["b"]
    assert evaluate(reg, {**check, "min_accuracy": 0.8, "min_class_accuracy": 0.6})["passed"]
    # Joined on another column than the dataset key (a hash join instead of key-index lookups).
    reg.commit("labels", labels(LABELS, {"uid": [f"u{i}" for i in range(100)]}))
    reg.create_dataset("gold-by-uid", "uid")
    reg.commit("gold-by-uid", pa.table({"uid": ["u0", "u4", "u99", "u500"], "truth": ["a", "b", "c", "c"]}))
    by_uid = evaluate(reg, {**check, "gold": "gold-by-uid", "key": ["uid"], "min_accuracy": 0.66})
    assert by_uid["passed"] and by_uid["metric"] == pytest.approx(2 / 3) and by_uid["details"]["missing"] == 1


def _two_annotator_records(n: int = 40, seed: int = 3) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    first = rng.integers(0, 3, n)
    second = np.where(rng.random(n) < 0.7, first, rng.integers(0, 3, n))
    rows = [(f"s{i:03d}", "ann1", f"c{v}") for i, v in enumerate(first)]
    rows += [(f"s{i:03d}", "ann2", f"c{v}") for i, v in enumerate(second)]
    return records(rows), first, second


@pytest.mark.parametrize("metric", ["cohen_kappa", "fleiss_kappa", "krippendorff_alpha"])
def test_agreement_over_a_records_dataset(reg: Registry, metric: str) -> None:
    setup(reg, labels(LABELS))
    table, first, second = _two_annotator_records()
    reg.create_dataset("annotations", "record_id")
    reg.commit("annotations", table)
    unit = np.concatenate([np.arange(40), np.arange(40)])
    counts = unit_counts(unit, np.concatenate([first, second]), 40, 3)
    expected = {"cohen_kappa": cohen_kappa(first, second), "fleiss_kappa": fleiss_kappa(counts),
                "krippendorff_alpha": krippendorff_alpha_nominal(counts)}[metric]
    check = {"check": "agreement", "metric": metric, "records": "annotations@main", "min_items": 40}
    ok, _ = at_and_beyond(reg, check, "min", round(expected, 9) - 1e-9, round(expected, 9) + 1e-6)
    assert ok["metric"] == pytest.approx(expected, abs=1e-12)
    assert ok["details"]["overlapping_items"] == 40
    too_few = evaluate(reg, {**check, "min": -1.0, "min_items": 41})
    assert not too_few["passed"] and "only 40 overlapping" in too_few["details"]["note"]


def test_agreement_uses_each_annotators_latest_label_and_humans_only(reg: Registry) -> None:
    setup(reg, labels(LABELS))
    rows = [("s000", "ann1", "a"), ("s000", "ann2", "b"), ("s000", "ann2", "a"), ("s001", "ann1", "b"),
            ("s001", "ann2", "b"), ("s002", "ann1", "a"), ("s002", "ann2", "b"), ("s003", "bot", "a"),
            ("s003", "ann1", "b"), ("s003", "ann2", "a")]
    kinds = ["human"] * 7 + ["model", "human", "human"]
    reg.create_dataset("annotations", "record_id")
    reg.commit("annotations", records(rows, source_kind=kinds))
    outcome = evaluate(reg, {"check": "agreement", "metric": "cohen_kappa", "records": "annotations", "min": -1})
    # ann2's later "a" on s000 replaces its "b"; the model's record is not an annotator here.
    expected = cohen_kappa(np.array(["a", "b", "a", "b"]), np.array(["a", "b", "b", "a"]))
    assert outcome["metric"] == pytest.approx(expected) and outcome["details"]["annotators"] == ["ann1", "ann2"]
    three = evaluate(reg, {"check": "agreement", "metric": "cohen_kappa", "records": "annotations", "min": -1,
                           "include_models": True})
    assert not three["passed"] and "two annotators" in three["details"]["error"]


def test_annotator_accuracy(reg: Registry) -> None:
    setup(reg, labels(LABELS))
    reg.create_dataset("gold", "sample_id")
    reg.commit("gold", pa.table({"sample_id": [f"s{i:03d}" for i in range(5)], "label": ["a", "b", "c", "a", "b"]}))
    truth = ["a", "b", "c", "a", "b"]
    rows = [(f"s{i:03d}", "good", truth[i] if i < 4 else "x") for i in range(5)]       # 4/5
    rows += [(f"s{i:03d}", "weak", truth[i] if i < 2 else "x") for i in range(5)]      # 2/5
    rows += [("s000", "new", "x"), ("s090", "new", "a")]                                # 1 gold item
    reg.create_dataset("annotations", "record_id")
    reg.commit("annotations", records(rows))
    check = {"check": "annotator_accuracy", "gold": "gold@main", "label": "label", "records": "annotations@main",
             "min_items": 2}
    ok, bad = at_and_beyond(reg, check, "min_accuracy", 0.4, 0.41)
    per = ok["details"]["per_annotator"]
    assert per["good"] == {"gold_items": 5, "accuracy": 0.8, "judged": True, "shown_as": "good"}
    assert per["weak"]["accuracy"] == 0.4
    assert per["new"] == {"gold_items": 1, "accuracy": 0.0, "judged": False, "shown_as": "new"}
    assert bad["details"]["below_min"] == ["weak"]
    nobody = evaluate(reg, {**check, "min_items": 6, "min_accuracy": 0.0})
    assert not nobody["passed"] and "no annotator has 6" in nobody["details"]["note"]


def test_provenance_complete(reg: Registry) -> None:
    setup(reg, labels([*["a"] * 10, None, None]))
    rows = [(f"s{i:03d}", "ann1", "a") for i in range(10)]
    reg.create_dataset("annotations", "record_id")
    reg.commit("annotations", records(rows, guideline_version=["g1"] * 9 + [None]))
    check = {"check": "provenance_complete", "label": "label", "records": "annotations@main"}
    ok, bad = at_and_beyond(reg, check, "min_fraction", 0.9, 0.91)
    assert ok["metric"] == pytest.approx(0.9) and ok["details"]["labeled_rows"] == 10
    assert bad["details"]["examples"] == ["s009"] and bad["details"]["records_lacking"]["guideline_version"] == 1
    every_row = evaluate(reg, {**check, "label": None, "min_fraction": 0.75})  # answered from the key index
    assert every_row["passed"] and every_row["metric"] == pytest.approx(0.75)
    assert sorted(every_row["details"]["examples"]) == ["s009", "s010", "s011"]
    assert every_row["details"]["rows_without_provenance"] == 3


def test_record_checks_default_to_the_snapshots_own_annotation_records(reg: Registry) -> None:
    from registry.provenance.records import RECORD_SCHEMA
    from registry.snapshots.commit import AnnotationInput, commit

    reg.create_dataset("labels", "sample_id")
    acts = [("s000", "ann1", "a"), ("s001", "ann1", "b"), ("s002", "ann1", "a"), ("s003", "ann1", "b"),
            ("s000", "ann2", "a"), ("s001", "ann2", "b"), ("s002", "ann2", "b"), ("s003", "ann2", "b"),
            ("s003", "ann2", "a")]  # the last one was cancelled: it does not count
    own = pa.Table.from_pylist([
        {"sample_key": key, "annotation_id": f"x{i}", "annotator_id": who, "value": value, "source_kind": "human",
         "created_at": f"2026-01-01T00:00:0{i}Z", "guideline_version": "g1", "was_cancelled": i == 8}
        for i, (key, who, value) in enumerate(acts)], schema=RECORD_SCHEMA)
    commit(reg.ctx, "labels", labels(["a", "b", "a", "b"]), annotations=AnnotationInput(own))
    outcome = evaluate(reg, {"check": "agreement", "metric": "cohen_kappa", "min": -1})
    expected = cohen_kappa(np.array(["a", "b", "a", "b"]), np.array(["a", "b", "b", "b"]))
    assert outcome["passed"] and outcome["metric"] == pytest.approx(expected)
    assert outcome["details"]["records"].startswith("snapshot ") and outcome["details"]["ratings"] == 8
    assert evaluate(reg, {"check": "provenance_complete"})["metric"] == 1.0


def test_record_checks_fail_without_records(reg: Registry) -> None:
    setup(reg, labels(LABELS))
    for check in ({"check": "provenance_complete"}, {"check": "agreement", "metric": "fleiss_kappa", "min": 0},
                  {"check": "annotator_accuracy", "gold": "labels", "label": "label", "min_accuracy": 0}):
        outcome = evaluate(reg, check)
        assert not outcome["passed"] and outcome["metric"] is None
        assert "no annotation records for this snapshot" in outcome["details"]["error"]


def test_a_check_that_cannot_run_fails_and_warn_only_reports(reg: Registry) -> None:
    setup(reg, labels(LABELS))
    missing = evaluate(reg, {"check": "not_null", "columns": ["nope"]})
    assert not missing["passed"] and "no column 'nope'" in missing["details"]["error"]
    gone = evaluate(reg, {"check": "gold_accuracy", "gold": "nothing", "label": "label", "min_accuracy": 0})
    assert not gone["passed"] and "unknown dataset 'nothing'" in gone["details"]["error"]
    warned = evaluate(reg, {"check": "row_count", "min": 1000, "severity": "warn"})
    assert not warned["passed"]
    status = reg.gate("labels")
    assert status.passes and status.state == "passed" and [w["name"] for w in status.warnings] == ["row_count"]


def test_gate_results_are_immutable_rows_in_the_query_view(reg: Registry) -> None:
    from registry.quality.views import query_views

    setup(reg, labels(LABELS))
    reg.set_policy("labels", yaml.safe_dump({"checks": [{"check": "row_count", "min": 1},
                                                        {"check": "not_null", "columns": ["label"]}]}))
    first = reg.qa_run("labels")
    second = reg.qa_run("labels")
    assert first.id != second.id
    view = query_views(reg.ctx)["gate_results"]
    assert view.num_rows == 4
    assert set(view.column("gate_result_id").to_pylist()) == {first.id, second.id}
    assert set(view.column("check_name").to_pylist()) == {"row_count", "not_null"}
    assert view.column("policy_hash").to_pylist() == [first.policy_hash] * 4
    stored = json.loads(json.dumps(first.checks))
    assert stored == reg.qa_run("labels").checks  # the same inputs give the same outcomes
