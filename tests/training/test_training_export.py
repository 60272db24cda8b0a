"""``registry export NAME@REF OUT --format coco|yolo|hf``: COCO files pycocotools loads and the COCO
importer reads back into the same rows, YOLO label files that match the boxes and that the YOLO importer
reads back, and Hugging Face dataset folders; rows that do not fit a format, and existing outputs, are
clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from registry import Registry
from registry.errors import AlreadyExists, InvalidInput
from registry.training.export import export_training
from tests.conftest import Cli
from tests.provenance.test_import_coco import coco
from tests.support.training_support import churned, need


@pytest.fixture
def detections(reg: Registry, tmp_path: Path) -> Registry:
    source = tmp_path / "coco.json"
    source.write_text(json.dumps(coco()))
    reg.import_annotations("coco", "boxes", source)
    return reg


def test_coco_round_trips_through_the_importer_and_loads_in_pycocotools(detections: Registry, tmp_path: Path) -> None:
    reg = detections
    out = tmp_path / "out.json"
    result = export_training(reg.ctx, "boxes", out, "coco")
    assert result["rows"] == 3 and result["snapshot_id"] == reg.show("boxes").id
    api = need("pycocotools.coco").COCO(str(out))
    assert sorted(api.getImgIds()) == [0, 1, 2] and len(api.getAnnIds()) == 3
    assert {c["name"] for c in api.loadCats(api.getCatIds())} == {"cat", "dog"}
    assert api.loadAnns(api.getAnnIds(imgIds=[0], catIds=[1]))[0]["bbox"] == [7.5, 7.0, 188.0, 164.0]
    reg.import_annotations("coco", "again", out)
    assert reg.read("again").sort_by("image_id").equals(reg.read("boxes").sort_by("image_id"))


def test_yolo_labels_match_the_boxes(detections: Registry, tmp_path: Path) -> None:
    out = tmp_path / "yolo"
    assert export_training(detections.ctx, "boxes", out, "yolo")["rows"] == 3
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == {0: "cat", 1: "dog"} and data["category_ids"] == [0, 1]
    lines = (out / "labels" / "a.txt").read_text().splitlines()
    assert lines[0].split() == ["1", f"{(7.5 + 94) / 640:.6f}", f"{(7 + 82) / 480:.6f}", f"{188 / 640:.6f}",
                                f"{164 / 480:.6f}"]
    assert (out / "labels" / "empty.txt").read_text() == "" and len(list((out / "labels").iterdir())) == 3


def test_hf_folders_load_back(detections: Registry, tmp_path: Path) -> None:
    datasets = need("datasets")
    out = tmp_path / "hf"
    export_training(detections.ctx, "boxes", out, "hf")
    loaded = datasets.load_from_disk(str(out))
    assert loaded.data.table.sort_by("image_id").equals(detections.read("boxes").sort_by("image_id"))


def test_bad_exports_are_refused_and_leave_nothing(reg: Registry, tmp_path: Path) -> None:
    churned(reg)
    with pytest.raises(InvalidInput, match="no image_id, file_name, width, height, boxes"):
        export_training(reg.ctx, "churn", tmp_path / "x.json", "coco")
    with pytest.raises(InvalidInput, match="unknown export format"):
        export_training(reg.ctx, "churn", tmp_path / "x", "voc")
    (tmp_path / "taken").mkdir()
    with pytest.raises(AlreadyExists):
        export_training(reg.ctx, "churn", tmp_path / "taken", "hf")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "home") == ["taken"]


def test_the_cli_exports_training_formats(detections: Registry, tmp_path: Path) -> None:
    cli = Cli(home=detections.home, cwd=tmp_path)
    done = cli("export", "boxes", str(tmp_path / "c.json"), "--format", "coco", "--json")
    assert done.code == 0 and json.loads(done.stdout)["rows"] == 3
    bad = cli("export", "boxes", str(tmp_path / "c.json"), "--format", "coco")
    assert bad.code == 2 and "exists" in bad.stderr


def test_yolo_round_trips_through_the_yolo_importer(detections: Registry, tmp_path: Path) -> None:
    """`registry import yolo` reads what `export --format yolo` writes: every image is a row, every box
    comes back with its class name and the COCO box normalised by the image size."""
    out = tmp_path / "yolo"
    export_training(detections.ctx, "boxes", out, "yolo")
    detections.import_annotations("yolo", "again", out)
    images = {Path(r["file_name"]).stem: r for r in detections.read("boxes").to_pylist()}
    again = {r["image"]: r for r in detections.read("again").to_pylist()}
    assert set(again) == set(images)
    for stem, row in images.items():
        expected = [(b["category"], round((b["bbox"][0] + b["bbox"][2] / 2) / row["width"], 6),
                     round((b["bbox"][1] + b["bbox"][3] / 2) / row["height"], 6),
                     round(b["bbox"][2] / row["width"], 6), round(b["bbox"][3] / row["height"], 6))
                    for b in row["boxes"]]
        got = [(b["category"], round(b["x"], 6), round(b["y"], 6), round(b["width"], 6), round(b["height"], 6))
               for b in again[stem]["boxes"]]
        assert got == expected, stem
