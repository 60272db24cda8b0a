"""The importers on exports a real Label Studio server wrote (``tests/fixtures/label-studio``).

Expectations come from ``facts.json`` (the fixture script's record of what it did on the server),
never from the importer; agreement is checked against ``krippendorff``, ``statsmodels`` and
``sklearn`` on the same ratings.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import krippendorff
import numpy as np
import pyarrow as pa
import pytest
import yaml
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa

from registry import Registry
from registry.cli.main import main
from registry.errors import InvalidInput
from tests.support.label_studio_facts import (
    FIXTURES,
    LS_FORMATS,
    act_label,
    assert_export_imports,
    expected_labels,
    human_acts,
    load_facts,
    ratings,
    sqlite_registry,
)

FACTS = load_facts()
CLS, DET = FACTS["projects"]["classification"], FACTS["projects"]["detection"]
USERS = FIXTURES / "users.json"


@pytest.fixture
def reg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    with sqlite_registry(tmp_path, monkeypatch) as registry:
        yield registry


def export(kind: str, round_: int, name: str) -> Path:
    return FIXTURES / kind / f"round{round_}" / name


def shown(who: str) -> str:
    user = FACTS["users"][who]
    return f"{user['id']} ({user['email']})"


def test_the_fixtures_are_what_the_readme_says() -> None:
    assert FACTS["label_studio_version"] == "1.23.2"
    assert (CLS["tasks"], DET["tasks"]) == (36, 24)
    assert len(CLS["relabelled"]) == 5 and len(DET["relabelled"]) == 3
    assert FACTS["users"]["a1"]["name"] == FACTS["users"]["a2"]["name"] == "Alex Kim"
    readme = (FIXTURES / "README.md").read_text()
    for number in (human_acts(CLS), human_acts(DET), len(CLS["relabelled"])):
        assert f"{number}" in readme


@pytest.mark.parametrize("round_", [1, 2])
@pytest.mark.parametrize("name", LS_FORMATS)
@pytest.mark.parametrize("kind", ["classification", "detection"])
def test_every_label_studio_export_imports(reg: Registry, kind: str, name: str, round_: int) -> None:
    assert_export_imports(reg, FIXTURES, FACTS, kind, round_, name)


def test_reviewer_edits_are_kept_as_reviewer_not_annotator(reg: Registry) -> None:
    reg.import_annotations("label-studio", "animals", export("classification", 2, "json.json"), key="sample")
    records = {r["annotation_id"]: r for r in reg.annotations("animals@main").to_pylist()}
    reviewer = str(FACTS["users"]["reviewer"]["id"])
    for change in CLS["relabelled"]:
        record = records[f"annotation:{change['annotation_id']}"]
        assert record["annotator_id"] == str(FACTS["users"][change["annotator"]]["id"])
        assert (record["reviewer"], record["review_state"], record["value"]) == (reviewer, "updated", change["after"])


def test_detection_boxes_and_predictions_from_the_json_export(reg: Registry) -> None:
    batch = reg.import_annotations("label-studio", "street", export("detection", 1, "json.json"), key="sample")
    assert batch.warnings == ["1 prediction(s) exported as ids only (no annotation used them): not imported; "
                              "Label Studio's snapshot export holds them in full", "1 draft(s) (unsubmitted work) "
                              "not imported"]
    records = reg.annotations("street@main").to_pylist()
    for sample, entry in DET["annotations"].items():
        for act in entry["acts"]:
            (record,) = [r for r in records if r["annotation_id"] == f"annotation:{act['annotation_id']}"]
            boxes = json.loads(record["value"]) if record["value"] else []
            boxes = boxes if isinstance(boxes, list) else [boxes]
            labels = [b.get("rectanglelabels", [None])[0] if "rectanglelabels" in b else
                      b["value"]["rectanglelabels"][0] for b in boxes]
            assert labels == act["label"], sample


def test_two_people_with_one_display_name_stay_two(reg: Registry) -> None:
    reg.import_annotations("label-studio", "animals", export("classification", 2, "snapshot.json"), key="sample")
    records = [r for r in reg.annotations("animals@main").to_pylist() if r["source_kind"] == "human"]
    alexes = {(r["annotator_id"], r["annotator_email"]) for r in records if r["annotator_name"] == "Alex Kim"}
    assert alexes == {(str(FACTS["users"][w]["id"]), FACTS["users"][w]["email"]) for w in ("a1", "a2")}
    outcome = _qa(reg, {"check": "agreement", "metric": "krippendorff_alpha", "min": -1})
    assert outcome["details"]["annotator_count"] == 3
    assert outcome["details"]["annotator_labels"] == {str(FACTS["users"][w]["id"]): shown(w)
                                                      for w in ("a1", "a2", "a3")}


def _qa(reg: Registry, check: dict[str, Any], name: str = "animals") -> dict[str, Any]:
    reg.set_policy(name, yaml.safe_dump({"checks": [check]}))
    (outcome,) = reg.qa_run(name).checks
    return dict(outcome)


def _matrix(round_: int) -> tuple[list[str], list[str], np.ndarray]:
    """Annotators x samples of codes (nan where not rated), from the facts."""
    given = ratings(CLS, round_)
    people = sorted({who for _, who in given})
    samples = sorted({s for s, _ in given})
    codes = {label: i for i, label in enumerate(sorted(set(given.values())))}
    matrix = np.full((len(people), len(samples)), np.nan)
    for (sample, who), label in given.items():
        matrix[people.index(who), samples.index(sample)] = codes[label]
    return people, samples, matrix


@pytest.mark.parametrize("round_", [1, 2])
def test_agreement_equals_krippendorff_statsmodels_and_sklearn(reg: Registry, round_: int) -> None:
    reg.import_annotations("label-studio", "animals", export("classification", round_, "json.json"), key="sample")
    people, _, matrix = _matrix(round_)
    alpha = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    outcome = _qa(reg, {"check": "agreement", "metric": "krippendorff_alpha", "min": -1})
    assert outcome["metric"] == pytest.approx(alpha, abs=1e-9)

    rated = ~np.isnan(matrix)
    per_item = rated.sum(axis=0)
    modal = np.bincount(per_item[per_item >= 2]).argmax()
    used = matrix[:, per_item == modal]
    table = np.stack([np.bincount(col[~np.isnan(col)].astype(int), minlength=3) for col in used.T])
    outcome = _qa(reg, {"check": "agreement", "metric": "fleiss_kappa", "min": -1})
    assert outcome["metric"] == pytest.approx(fleiss_kappa(table, method="fleiss"), abs=1e-9)
    assert outcome["details"]["overlapping_items"] == used.shape[1]

    first, second = people[0], people[1]
    both = rated[0] & rated[1]
    kappa = cohen_kappa_score(matrix[0, both], matrix[1, both])
    outcome = _qa(reg, {"check": "agreement", "metric": "cohen_kappa", "min": -1, "annotators": [first, second]})
    assert outcome["metric"] == pytest.approx(kappa, abs=1e-9)


def test_per_annotator_accuracy_on_ground_truth(reg: Registry) -> None:
    reg.import_annotations("label-studio", "animals", export("classification", 2, "json.json"), key="sample",
                           users=USERS)
    gold = {s: act_label(a, 2) for s, e in CLS["annotations"].items() for a in e["acts"] if a["ground_truth"]}
    reg.create_dataset("gold", "sample")
    reg.commit("gold", pa.table({"sample": list(gold), "label": list(gold.values())}))
    outcome = _qa(reg, {"check": "annotator_accuracy", "gold": "gold@main", "label": "label", "min_items": 1,
                        "min_accuracy": 0.0})
    expected: dict[str, list[bool]] = {}
    for (sample, who), label in ratings(CLS, 2).items():
        if sample in gold:
            expected.setdefault(who, []).append(label == gold[sample])
    per = outcome["details"]["per_annotator"]
    assert {who: (p["gold_items"], p["accuracy"]) for who, p in per.items()} == {
        who: (len(v), pytest.approx(sum(v) / len(v))) for who, v in expected.items()}
    by_id = {str(u["id"]): w for w, u in FACTS["users"].items()}
    assert all(p["shown_as"] == shown(by_id[who]) for who, p in per.items())


def _round2_changes() -> dict[str, tuple[str | None, str | None]]:
    before, after = expected_labels(CLS, 1), expected_labels(CLS, 2)
    return {s: (before[s], after[s]) for s in before if before[s] != after[s]}


def _who_labeled(sample: str, label: str | None) -> str | None:
    """The act behind a sample's resolved label: ground truth first, then the latest edited act."""
    acts = [a for a in CLS["annotations"][sample]["acts"] if not a["was_cancelled"] and act_label(a, 2) == label]
    if not acts:
        return None
    acts.sort(key=lambda a: (not a["ground_truth"], "label_after_review" not in a))
    return shown(acts[0]["annotator"])


def test_round_two_label_diff_history_and_blame(reg: Registry) -> None:
    first = reg.import_annotations("label-studio", "animals", export("classification", 1, "json.json"), key="sample",
                                   users=USERS).commit.snapshot_id
    second = reg.import_annotations("label-studio", "animals", export("classification", 2, "json.json"),
                                    key="sample", users=USERS).commit.snapshot_id
    changes = _round2_changes()
    assert changes, "the relabel round must change some resolved labels"
    diff = reg.label_diff(f"animals@{first}", f"animals@{second}")
    assert diff.relabeled == len(changes)
    null = "(null)"
    matrix: dict[str, dict[str, int]] = {}
    for old, new in changes.values():
        row = matrix.setdefault(old or null, {})
        row[new or null] = row.get(new or null, 0) + 1
    assert {a: {b: n for b, n in row.items() if a != b} for a, row in diff.matrix.items()
            if any(a != b for b in row)} == matrix
    before, after = expected_labels(CLS, 1), expected_labels(CLS, 2)
    for label in {*before.values(), *after.values()} - {None}:
        net = sum(v == label for v in after.values()) - sum(v == label for v in before.values())
        assert diff.net_change.get(label, 0) == net
    by_annotator: dict[str, int] = {}
    for sample, (_, new) in changes.items():
        who = _who_labeled(sample, new) or "(unknown)"
        by_annotator[who] = by_annotator.get(who, 0) + 1
    assert diff.by_annotator == by_annotator
    blame = {r["sample"]: r for r in reg.blame(f"animals@{second}").to_pylist()}
    for sample, (_, new) in changes.items():
        assert (blame[sample]["snapshot_id"], blame[sample]["annotator"]) == (second, _who_labeled(sample, new))
    for change in CLS["relabelled"]:
        entries = [e for e in reg.history("animals", change["task"])
                   if e.kind == "label" and e.annotation_id == f"annotation:{change['annotation_id']}"]
        assert [(e.snapshot_id, e.change, e.value, e.annotator) for e in entries] == [
            (first, "added", change["before"], shown(change["annotator"])),
            (second, "updated", change["after"], shown(change["annotator"]))]


@pytest.mark.parametrize("round_", [1, 2])
def test_coco_from_the_detection_project(reg: Registry, round_: int) -> None:
    reg.import_annotations("coco", "street", export("detection", round_, "coco.zip"), key="file_name")
    rows = reg.read("street@main").to_pylist()
    assert len(rows) == DET["tasks"]
    boxes = sum(len(a["label"]) for e in DET["annotations"].values() for a in e["acts"]
                for a in [{**a, "label": act_label(a, round_)}])
    assert sum(r["annotations"] for r in rows) == boxes
    categories = sorted(b["category"] for r in rows for b in r["boxes"])
    expected = sorted(label for e in DET["annotations"].values() for a in e["acts"] for label in act_label(a, round_))
    assert categories == expected


@pytest.mark.parametrize("variant", ["yolo.zip", "yolo_obb.zip"])
@pytest.mark.parametrize("round_", [1, 2])
def test_yolo_holds_the_oldest_annotation_of_each_task(reg: Registry, variant: str, round_: int) -> None:
    reg.import_annotations("yolo", "street", export("detection", round_, variant))
    rows = {r["image"].split("__")[-1]: r for r in reg.read("street@main").to_pylist()}
    assert len(rows) == DET["tasks"]
    for sample, entry in DET["annotations"].items():
        oldest = min(entry["acts"], key=lambda a: a["annotation_id"]) if entry["acts"] else None
        labels = sorted(act_label(oldest, round_)) if oldest else []
        assert sorted(b["category"] for b in rows[sample.split("-")[1]]["boxes"]) == labels, sample


# --- bad inputs: exit 2, one line, nothing committed ---------------------------------------------------------


def _refused(home: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    code = main(["--home", str(home), "import", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert main(["--home", str(home), "log", args[1]]) != 0  # nothing committed, not even the dataset
    return err


def _truncated(tmp_path: Path, source: Path) -> Path:
    data = source.read_bytes()
    path = tmp_path / f"cut-{source.name}"
    path.write_bytes(data[: len(data) // 2 + 7])
    return path


def test_bad_inputs_are_exit_2_with_one_line_and_nothing_committed(reg: Registry, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    home = reg.home
    err = _refused(home, capsys, "label-studio", "a", str(_truncated(tmp_path, export("classification", 1,
                                                                                      "json.json"))))
    assert "cut-json.json" in err
    err = _refused(home, capsys, "label-studio", "b", str(_truncated(tmp_path, export("detection", 1, "csv.csv"))))
    assert "cut-csv.csv" in err
    err = _refused(home, capsys, "label-studio", "c", str(export("detection", 1, "coco.zip")))
    assert "coco.zip: expected a Label Studio JSON export" in err and "import it as coco or yolo" in err
    err = _refused(home, capsys, "yolo", "d", str(export("detection", 1, "json.json")))
    assert "expected a zip archive or a folder" in err
    err = _refused(home, capsys, "coco", "e", str(export("detection", 1, "yolo.zip")))
    assert "yolo.zip: expected a COCO JSON object" in err
    ambiguous = _one_annotation_per_task(tmp_path)
    err = _refused(home, capsys, "label-studio", "f", str(ambiguous))
    assert ("cannot tell which field holds the label (fields: image, label, sample); give the project's labeling "
            "config (--config)") in err
    folder = tmp_path / "yolo"
    with zipfile.ZipFile(export("detection", 1, "yolo.zip")) as archive:
        archive.extractall(folder)
    (folder / "classes.txt").unlink()
    (folder / "notes.json").unlink()
    err = _refused(home, capsys, "yolo", "g", str(folder))
    assert "needs classes.txt" in err


def _one_annotation_per_task(tmp_path: Path) -> Path:
    """The real JSON_MIN export cut to one annotation per annotated task: nothing tells the label apart."""
    items = [i for i in json.loads(export("classification", 1, "json_min.json").read_text())
             if i["annotation_id"] is not None]
    seen: set[int] = set()
    single = [i for i in items if not (i["id"] in seen or seen.add(i["id"]))]  # type: ignore[func-returns-value]
    path = tmp_path / "single.json"
    path.write_text(json.dumps(single))
    return path


def test_json_min_with_the_config_needs_no_guess(reg: Registry, tmp_path: Path) -> None:
    path = _one_annotation_per_task(tmp_path)
    with pytest.raises(InvalidInput, match="labeling config"):
        reg.import_annotations("label-studio", "x", path)
    result = reg.import_annotations("label-studio", "x", path, config=FIXTURES / "classification" / "config.xml")
    labels = {r["task_id"]: r["label"] for r in reg.read("x@main").to_pylist()}
    annotated = sum(1 for e in CLS["annotations"].values() if any(not a["was_cancelled"] for a in e["acts"]))
    assert result.warnings == [] and result.records == len(labels) == annotated
    assert all(label in ("cat", "dog", "bird") for label in labels.values())


def test_yolo_folder_with_data_yaml_instead_of_classes(reg: Registry, tmp_path: Path) -> None:
    folder = tmp_path / "yolo"
    with zipfile.ZipFile(export("detection", 1, "yolo.zip")) as archive:
        archive.extractall(folder)
    names = (folder / "classes.txt").read_text().split()
    (folder / "classes.txt").unlink()
    (folder / "notes.json").unlink()
    (folder / "data.yaml").write_text(yaml.safe_dump({"names": dict(enumerate(names))}))
    result = reg.import_annotations("yolo", "street", folder)
    assert result.samples == DET["tasks"]
    shutil.rmtree(folder)
