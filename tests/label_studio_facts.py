"""What the committed Label Studio fixtures must import as, derived from ``facts.json`` alone.

``facts.json`` is the fixture script's own record of what it did on the real server (who annotated
which task with which label, ground truth, cancelled, deleted, drafts, the reviewer's relabels), so
these expectations never come from the importer under test.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "label-studio"


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
