"""End to end against a real Label Studio server: make the fixtures now and import every export.

The server runs from its own venv (``scripts/setup.sh`` installs it under
``~/.cache/dataset-registry/``); without that venv the test skips, saying why, except under
``CI=true``, where it fails. A Label Studio release that changes an export's shape fails here: the
importers must accept it and report no field or result type they do not know.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry import Registry
from registry.provenance.importers import read_coco, read_label_studio, read_yolo
from scripts.label_studio_fixtures import make_fixtures
from scripts.label_studio_server import LS_VERSION, LabelStudioServer
from tests.support.label_studio_facts import LS_FORMATS, assert_export_imports, require_label_studio, sqlite_registry

pytestmark = pytest.mark.label_studio_live


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    require_label_studio("the Label Studio live test")
    out = tmp_path_factory.mktemp("label-studio")
    with LabelStudioServer() as server:
        facts = make_fixtures(out, server)
    assert server.process is None  # stopped
    return out, facts


@pytest.fixture
def reg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    with sqlite_registry(tmp_path, monkeypatch) as registry:
        yield registry


def test_a_real_server_makes_exports_the_importers_accept(made: tuple[Path, dict[str, Any]], reg: Registry) -> None:
    out, facts = made
    assert facts["label_studio_version"] == LS_VERSION
    for kind in facts["projects"]:
        for round_ in (1, 2):
            folder = out / kind / f"round{round_}"
            for name in LS_FORMATS:
                assert_export_imports(reg, out, facts, kind, round_, name)
                batch = read_label_studio(folder / name, key="sample", batch_id="live")
                unknown = [w for w in batch.warnings if w.startswith("unknown")]
                assert not unknown, f"{kind}/{name}: Label Studio {LS_VERSION} writes what we do not know: {unknown}"
    detection = out / "detection" / "round2"
    assert read_coco(detection / "coco.zip", key="file_name", batch_id="live").rows.num_rows == \
        facts["projects"]["detection"]["tasks"]
    for variant in ("yolo.zip", "yolo_obb.zip"):
        assert read_yolo(detection / variant, batch_id="live").rows.num_rows == facts["projects"]["detection"]["tasks"]
