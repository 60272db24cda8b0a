"""What the committed Label Studio fixtures must import as, derived from ``facts.json`` alone.

``facts.json`` is the fixture script's own record of what it did on the real server (who annotated
which task with which label, ground truth, cancelled, deleted, drafts, the reviewer's relabels), so
these expectations never come from the importer under test.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from registry import Registry
from registry.context import create_home


def require_label_studio(what: str) -> None:
    """Skip (fail under ``CI=true``) when Label Studio's venv is absent, naming ``what`` needs it."""
    from scripts.label_studio_server import LS_VERSION, venv_path

    if (venv_path() / "bin" / "label-studio").is_file():
        return
    reason = (f"no Label Studio {LS_VERSION} venv at {venv_path()}: run scripts/setup.sh "
              "(python scripts/label_studio_server.py --ensure-venv)")
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run {what}: {reason}")
    pytest.skip(reason)


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "label-studio"
LS_FORMATS = ("json.json", "snapshot.json", "json_min.json", "csv.csv", "tsv.tsv")
"""The exports ``registry import label-studio`` reads."""


@contextmanager
def sqlite_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    """A new registry home on SQLite under ``tmp_path`` (the fixtures' facts do not depend on the catalog)."""
    for name in ("REGISTRY_HOME", "REGISTRY_DATABASE_URL", "REGISTRY_STORAGE_URL", "REGISTRY_URL"):
        monkeypatch.delenv(name, raising=False)
    registry = Registry.open(create_home(tmp_path / "home").home)
    try:
        yield registry
    finally:
        registry.close()


def load_facts(folder: Path = FIXTURES) -> dict[str, Any]:
    return dict(json.loads((folder / "facts.json").read_text()))


def act_label(act: dict[str, Any], round_: int) -> Any:
    """The label an act carries in export round 1 or 2 (after the reviewer's relabel)."""
    return act.get("label_after_review", act["label"]) if round_ == 2 else act["label"]


def _winner(labels: list[str]) -> str | None:
    counts = Counter(labels).most_common()
    if not counts or (len(counts) > 1 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]


def expected_labels(project: dict[str, Any], round_: int, ground_truth: bool = True) -> dict[str, str | None]:
    """Sample -> resolved label: ground-truth acts' majority first (when the export carries ground
    truth), else the majority of non-cancelled acts; a tie is null."""
    labels: dict[str, str | None] = {}
    for sample, entry in project["annotations"].items():
        acts = [a for a in entry["acts"] if not a["was_cancelled"]]
        gold = [act_label(a, round_) for a in acts if a["ground_truth"]] if ground_truth else []
        labels[sample] = _winner(gold) if gold else _winner([act_label(a, round_) for a in acts])
    return labels


def human_acts(project: dict[str, Any], cancelled: bool = True) -> int:
    """How many annotations the export holds (deleted ones never do; cancelled ones only in JSON)."""
    return sum(1 for e in project["annotations"].values() for a in e["acts"] if cancelled or not a["was_cancelled"])


def ratings(project: dict[str, Any], round_: int) -> dict[tuple[str, str], str]:
    """(sample, annotator user id) -> label of every non-cancelled act."""
    return {(sample, str(a["user_id"])): act_label(a, round_) for sample, e in project["annotations"].items()
            for a in e["acts"] if not a["was_cancelled"]}


def assert_export_imports(reg: Registry, folder: Path, facts: dict[str, Any], kind: str, round_: int,
                          name: str) -> None:
    """Import ``folder/kind/roundN/name`` as dataset ``kind`` and check it against ``facts``: samples,
    annotation and prediction counts, annotator ids and emails (with ``users.json``), resolved labels,
    cancelled and ground-truth annotations, deleted ones absent."""
    project = facts["projects"][kind]
    result = reg.import_annotations("label-studio", kind, folder / kind / f"round{round_}" / name, key="sample",
                                    users=folder / "users.json")
    assert result.samples == project["tasks"]
    records = reg.annotations(f"{kind}@main").to_pylist()
    humans = [r for r in records if r["source_kind"] == "human"]
    full = name in ("json.json", "snapshot.json")
    assert len(humans) == human_acts(project, cancelled=full)
    models = [r for r in records if r["source_kind"] == "model"]
    annotated = sum(1 for e in project["annotations"].values() if e["acts"])
    assert len(models) == (project["predictions"] if name == "snapshot.json" else annotated if full else 0)
    assert all(m["model_version"] and m["score"] is not None for m in models)
    ids = {str(u["id"]): u for u in facts["users"].values()}
    assert {r["annotator_id"] for r in humans} <= set(ids)
    assert all(r["annotator_email"] == ids[r["annotator_id"]]["email"] for r in humans)
    rows = {r["sample"]: r for r in reg.read(f"{kind}@main").to_pylist()}
    if kind == "classification":
        assert {s: r["label"] for s, r in rows.items()} == expected_labels(project, round_, ground_truth=full)
    if full:
        cancelled = [r["annotation_id"] for r in humans if r["was_cancelled"]]
        assert cancelled == [f"annotation:{c['annotation_id']}" for c in project["cancelled"]]
        gt = sorted(int(r["annotation_id"].split(":")[1]) for r in humans if r["ground_truth"])
        assert gt == sorted(project["ground_truth"])
    deleted = {f"annotation:{d['annotation_id']}" for d in project["deleted"]}
    assert not deleted & {r["annotation_id"] for r in records}
