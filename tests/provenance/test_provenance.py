"""Annotator provenance end to end: imports commit rows with their records, re-imports store only
what changed, and history, blame and label diffs answer who labeled what, when, under which guideline."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry import Registry
from registry.errors import InvalidInput
from tests.conftest import Cli
from tests.support import provenance_fixtures as lsx
from tests.support.audit_helpers import events


@pytest.fixture
def two_imports(reg: Registry, tmp_path: Path) -> Registry:
    reg.import_annotations("label-studio", "signs", lsx.write(tmp_path / "v1.json", lsx.export_v1()), key="image",
                           guideline_version="g1", author="importer")
    reg.tag("signs@main", "v1")
    reg.import_annotations("label-studio", "signs", lsx.write(tmp_path / "v2.json", lsx.export_v2()), key="image",
                           guideline_version="g2", author="importer")
    return reg


def test_first_import_creates_the_dataset_with_resolved_rows(reg: Registry, tmp_path: Path) -> None:
    result = reg.import_annotations("label-studio", "signs", lsx.write(tmp_path / "v1.json", lsx.export_v1()),
                                    key="image", guideline_version="g1")
    assert result.dataset_created and result.commit.created and result.samples == 6
    rows = {r["image"]: r for r in reg.read("signs").to_pylist()}
    assert rows["s3://signs/1.jpg"]["label"] == "stop" and rows["s3://signs/2.jpg"]["label"] == "yield"
    assert rows["s3://signs/5.jpg"]["label"] == "stop"  # ground truth beats the 1:1 tie
    assert rows["s3://signs/6.jpg"]["label"] is None and rows["s3://signs/6.jpg"]["disputed"] is True
    assert rows["s3://signs/5.jpg"]["annotations"] == 2  # the cancelled one does not count
    records = reg.annotations("signs")
    assert records.num_rows == 6 * 2 + 1 + 4  # annotations, the cancelled one, predictions
    assert set(pc.unique(records.column("guideline_version")).to_pylist()) == {"g1"}
    actions = [e["action"] for e in events(reg.ctx.engine)]
    assert actions == ["dataset.create", "snapshot.import"]


def test_reimport_stores_only_the_changes_and_summarises_them(two_imports: Registry) -> None:
    head = two_imports.show("signs")
    assert head.summary == "+1 new, 2 relabeled, 1 removed; annotations +1 ~3 -4"
    changes = two_imports.query(f"SELECT change, count(*) AS n FROM annotations WHERE snapshot_id = '{head.id}' "
                                "GROUP BY change ORDER BY change").to_pylist()
    assert changes == [{"change": "added", "n": 1}, {"change": "removed", "n": 4}, {"change": "updated", "n": 3}]
    removed = two_imports.query(f"SELECT annotation_id FROM annotations WHERE snapshot_id = '{head.id}' AND "
                                "change = 'removed' ORDER BY 1").column(0).to_pylist()
    assert removed == ["annotation:30", "annotation:40", "annotation:41", "prediction:904"]
    full = two_imports.annotations("signs")
    assert "annotation:30" not in full.column("annotation_id").to_pylist()
    unchanged = full.filter(pc.equal(full.column("annotation_id"), "annotation:20")).to_pylist()[0]
    assert unchanged["guideline_version"] == "g1", "an unchanged act keeps the guideline it was labeled under"
    relabel = full.filter(pc.equal(full.column("annotation_id"), "annotation:11")).to_pylist()[0]
    assert (relabel["value"], relabel["guideline_version"]) == ("yield", "g2")
    log = two_imports.log("signs")
    assert [e.summary.split(";")[0] for e in log] == ["+1 new, 2 relabeled, 1 removed", "+6 new, 0 changed, 0 removed"]


def test_label_diff_matrix_and_annotators_exactly(two_imports: Registry) -> None:
    d = two_imports.label_diff("signs@v1", "signs@main")
    assert (d.rows_a, d.rows_b, d.rows_in_both, d.relabeled) == (6, 6, 5, 2)
    assert d.matrix == {"stop": {"yield": 2, "stop": 1}, "yield": {"yield": 1}, "(null)": {"(null)": 1}}
    assert d.distribution_a == {"(null)": 1, "stop": 3, "yield": 2}
    assert d.distribution_b == {"(null)": 1, "merge": 1, "stop": 1, "yield": 3}
    assert d.net_change == {"(null)": 0, "merge": 1, "stop": -2, "yield": 1}
    assert d.total_variation == pytest.approx(0.5 * (0 + 1 / 6 + 2 / 6 + 1 / 6))
    assert d.by_annotator == {"2": 2}
    assert d.by_guideline == {"g2": 2}
    assert sorted((c["key"], c["from"], c["to"], c["annotator"]) for c in d.changes) == [
        ("s3://signs/1.jpg", "stop", "yield", "2"), ("s3://signs/3.jpg", "stop", "yield", "2")]


def test_history_of_one_sample_oldest_first(two_imports: Registry) -> None:
    entries = two_imports.history("signs", "s3://signs/3.jpg")
    v1, head = two_imports.show("signs@v1").id, two_imports.show("signs").id
    labels = [(e.snapshot_id, e.annotator, e.value, e.change, e.guideline_version) for e in entries
              if e.kind == "label"]
    # In time order: Bob's relabel (Nov 20) came before the import that found Alice's act removed.
    assert labels == [(v1, None, "stop", "added", "g1"), (v1, "1 (alice@example.com)", "stop", "added", "g1"),
                      (v1, "2", "stop", "added", "g1"), (head, "2", "yield", "updated", "g2"),
                      (head, "1 (alice@example.com)", "stop", "removed", "g1")]
    assert [e.time for e in entries] == sorted(e.time for e in entries)
    assert [(e.snapshot_id, e.change) for e in entries if e.kind == "snapshot"] == [(v1, "upserted"),
                                                                                  (head, "upserted")]
    assert entries[0].source_kind == "model"
    gone = two_imports.history("signs", "s3://signs/4.jpg")
    assert [(e.snapshot_id, e.change) for e in gone if e.kind == "snapshot"] == [(v1, "upserted"), (head, "deleted")]


def test_blame_names_the_last_change_and_the_annotator(two_imports: Registry) -> None:
    rows = {r["image"]: r for r in two_imports.blame("signs").to_pylist()}
    v1, head = two_imports.show("signs@v1").id, two_imports.show("signs").id
    assert rows["s3://signs/1.jpg"]["snapshot_id"] == head and rows["s3://signs/2.jpg"]["snapshot_id"] == v1
    assert rows["s3://signs/1.jpg"]["annotator"] == "2"  # Bob's 11:00 act is the latest with that value
    assert rows["s3://signs/5.jpg"]["annotator"] == "1 (alice@example.com)"  # ground truth first
    assert rows["s3://signs/6.jpg"]["annotator"] is None  # disputed: no act has the (null) label
    assert len(two_imports.blame("signs", limit=2)) == 2


def test_cli_import_history_blame_and_label_diff(cli: Cli, tmp_path: Path) -> None:
    v1 = lsx.write(tmp_path / "v1.json", lsx.export_v1())
    first = cli("import", "label-studio", "signs", str(v1), "--key", "image", "--json")
    assert first.code == 0, first.stderr
    assert json.loads(first.stdout)["dataset_created"] is True
    assert cli("tag", "signs@main", "v1").code == 0
    second = cli("import", "label-studio", "signs", str(lsx.write(tmp_path / "v2.json", lsx.export_v2())),
                 "--key", "image", "--guideline-version", "g2")
    assert second.code == 0, second.stderr
    diff = cli("diff", "signs@v1", "signs@main", "--labels", "--json")
    assert json.loads(diff.stdout)["matrix"]["stop"] == {"stop": 1, "yield": 2}
    text = cli("diff", "signs@v1", "signs@main", "--labels")
    assert "2 of 5 rows on both sides relabeled" in text.stdout
    history = cli("history", "signs", "s3://signs/1.jpg", "--json")
    assert history.code == 0 and {e["kind"] for e in json.loads(history.stdout)} == {"label", "snapshot"}
    blame = cli("blame", "signs", "--limit", "3")
    assert blame.code == 0 and len(blame.stdout.splitlines()) == 4
    log = cli("log", "signs")
    assert "+1 new, 2 relabeled, 1 removed" in log.stdout
    audit = json.loads(cli("audit", "log", "--action", "snapshot.import", "--json").stdout)
    assert [e["details"]["format"] for e in audit] == ["label-studio", "label-studio"]


@pytest.mark.parametrize("content, words", [
    ("[{\"id\": 1, \"data\": ", "malformed JSON at line 1"),
    (json.dumps({"images": [], "annotations": [], "categories": []}), "COCO"),
    (json.dumps([{"id": 1, "data": {"other": 1}, "annotations": []}]), "image"),
])
def test_bad_import_commits_nothing(cli: Cli, tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    result = cli("import", "label-studio", "signs", str(path), "--key", "image")
    assert result.code == 2, result.stderr
    assert words.lower() in result.stderr.lower()
    assert cli("dataset", "list", "--json").stdout.strip() == "[]"
    assert json.loads(cli("audit", "log", "--json").stdout) == []


def test_import_refuses_another_key_and_wrong_options(reg: Registry, tmp_path: Path) -> None:
    path = lsx.write(tmp_path / "v1.json", lsx.export_v1())
    reg.import_annotations("label-studio", "signs", path, key="image")
    with pytest.raises(InvalidInput, match="keyed by image"):
        reg.import_annotations("label-studio", "signs", path)
    with pytest.raises(InvalidInput, match="column mapping"):
        reg.import_annotations("label-studio", "signs", path, mapping="key=x")
    with pytest.raises(InvalidInput, match="unknown import format"):
        reg.import_annotations("cvat", "signs", path)
    assert len(reg.log("signs")) == 1


def test_records_are_part_of_the_snapshot_id_and_verified(two_imports: Registry) -> None:
    head = two_imports.show("signs")
    assert head.annotations_sha256 is not None
    assert two_imports.verify().ok
    assert head.annotations_sha256 not in two_imports.gc(min_age=0).deleted
    path = two_imports.ctx.store.local_path(head.annotations_sha256)
    path.chmod(0o644)
    pq.write_table(pa.Table.from_pylist([{"x": 1}]), path)
    report = two_imports.verify()
    assert not report.ok and any("annotation records" in p for p in report.problems)


def test_reimporting_the_same_export_changes_nothing(reg: Registry, tmp_path: Path) -> None:
    path = lsx.write(tmp_path / "v1.json", lsx.export_v1())
    reg.import_annotations("label-studio", "signs", path, key="image")
    again = reg.import_annotations("label-studio", "signs", path, key="image")
    assert not again.commit.created and len(reg.log("signs")) == 1


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["a", "b", "c", None]), min_size=1, max_size=40),
       st.lists(st.sampled_from(["a", "b", "c", None]), min_size=1, max_size=40),
       st.integers(min_value=0, max_value=40))
def test_label_change_matrix_sums_to_rows_on_both_sides(reg: Registry, left: list[str | None],
                                                        right: list[str | None], shift: int) -> None:
    name = f"p{abs(hash((tuple(left), tuple(right), shift))) % 10**9}"
    reg.create_dataset(name, "k")
    reg.commit(name, pa.table({"k": list(range(len(left))), "label": pa.array(left, pa.string())}))
    first = reg.show(name).id
    keys = list(range(shift, shift + len(right)))
    reg.commit(name, pa.table({"k": keys, "label": pa.array(right, pa.string())}))
    d = reg.label_diff(f"{name}@{first}", name)
    both = len(set(range(len(left))) & set(keys))
    assert sum(sum(row.values()) for row in d.matrix.values()) == both == d.rows_in_both
    assert d.relabeled == sum(n for a, row in d.matrix.items() for b, n in row.items() if a != b)
    assert sum(d.net_change.values()) == len(right) - len(left)
    assert 0.0 <= d.total_variation <= 1.0


def test_coco_round_trip_through_the_registry(reg: Registry, tmp_path: Path) -> None:
    from tests.provenance.test_import_coco import coco

    data = coco()
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    first = reg.import_annotations("coco", "boxes", path, guideline_version="v3")
    assert first.samples == 3 and first.records == 3
    rows = {r["image_id"]: r for r in reg.read("boxes").to_pylist()}
    assert [b["category"] for b in rows["0"]["boxes"]] == ["dog", "cat"] and rows["2"]["boxes"] == []
    data["annotations"][2]["category_id"] = 1  # image 1's box relabeled cat -> dog
    data["annotations"].pop(1)  # image 0's crowd box deleted
    path.write_text(json.dumps(data))
    second = reg.import_annotations("coco", "boxes", path, guideline_version="v3")
    assert (second.commit.added, second.commit.changed, second.commit.removed) == (0, 2, 0)
    rows = {r["image_id"]: r for r in reg.read("boxes").to_pylist()}
    assert [b["category"] for b in rows["0"]["boxes"]] == ["dog"] and rows["1"]["boxes"][0]["category"] == "dog"
    head = reg.show("boxes")
    changes = reg.query(f"SELECT annotation_id, change FROM annotations WHERE snapshot_id = '{head.id}' "
                        "ORDER BY 1").to_pylist()
    assert changes == [{"annotation_id": "coco:11", "change": "removed"}, {"annotation_id": "coco:12",
                                                                           "change": "updated"}]
    assert reg.verify().ok
