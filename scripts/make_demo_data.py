"""Write the demo's inputs: 50,000 labelled street-sign crops, a relabel round and a removal list, and
two Label Studio exports of a small project (the second relabels some tasks and drops one)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

CLASSES = ["stop", "yield", "speed_30", "speed_50", "no_entry", "one_way", "pedestrian", "school", "parking"]


def main(out: Path) -> None:
    rng = np.random.default_rng(7)
    n = 50_000
    ids = [f"crop-{i:06d}" for i in range(n)]
    labels = rng.choice(CLASSES, n)
    table = pa.table({
        "sample_id": ids,
        "label": labels,
        "annotator_id": rng.choice([f"ann-{i:02d}" for i in range(12)], n),
        "confidence": rng.random(n).astype(np.float32),
        "created_at": (np.datetime64("2026-10-01T00:00:00") + rng.integers(0, 30 * 86400, n)).astype("datetime64[us]"),
    })
    pq.write_table(table, out / "labels-v1.parquet")
    flips = rng.choice(np.flatnonzero(labels == "stop"), 300, replace=False)
    relabel = table.take(pa.array(flips))
    relabel = relabel.set_column(1, "label", pa.array(["yield"] * len(flips)))
    relabel = relabel.set_column(2, "annotator_id", pa.array(["reviewer-01"] * len(flips)))
    new = pa.table({
        "sample_id": [f"crop-{i:06d}" for i in range(n, n + 200)],
        "label": rng.choice(CLASSES, 200),
        "annotator_id": ["ann-13"] * 200,
        "confidence": rng.random(200).astype(np.float32),
        "created_at": np.full(200, np.datetime64("2026-11-02T09:00:00"), dtype="datetime64[us]"),
    })
    pacsv.write_csv(pa.concat_tables([relabel, new]), out / "relabel-round-2.csv")
    removed = rng.choice(np.setdiff1d(np.arange(n), flips), 25, replace=False)
    pacsv.write_csv(pa.table({"sample_id": [ids[i] for i in removed]}), out / "removed.csv")
    write_label_studio_exports(out, rng)
    (out / "qa-policy.yaml").write_text(POLICY)


POLICY = f"""# The street-signs QA policy: what a snapshot must meet before training may use it.
maintainers: [demo-annotator]
checks:
  - check: row_count
    min: 40000
  - check: unique_key
  - check: not_null
    columns: [sample_id, label]
  - check: allowed_values
    column: label
    values: {json.dumps(CLASSES)}
  - check: class_balance
    column: label
    max_share: 0.25
  - check: max_changed_fraction
    max: 0.05
  - check: schema_compatible
"""


def _annotation(aid: int, who: object, label: str, day: int) -> dict[str, object]:
    time = f"2026-11-{day:02d}T10:00:00Z"
    return {"id": aid, "completed_by": who, "was_cancelled": False, "ground_truth": False, "lead_time": 3.2,
            "created_at": time, "updated_at": time,
            "result": [{"from_name": "sign", "to_name": "image", "type": "choices", "value": {"choices": [label]}}]}


def write_label_studio_exports(out: Path, rng: np.random.Generator, tasks: int = 200) -> None:
    """Label Studio full JSON exports (both ``completed_by`` shapes, three annotators per task)."""
    people: list[object] = [{"id": 1, "email": "ada@example.com", "first_name": "Ada", "last_name": "L"}, 2,
                            {"id": 3, "email": "lin@example.com", "first_name": "Lin", "last_name": "W"}]
    truth = rng.choice(CLASSES[:4], tasks)
    export = []
    for t in range(tasks):
        labels = [truth[t] if rng.random() < 0.85 else rng.choice(CLASSES[:4]) for _ in people]
        export.append({"id": t + 1, "project": 3, "data": {"image": f"s3://signs/{t + 1}.jpg"},
                       "annotations": [_annotation(t * 3 + i, who, str(lab), 1)
                                       for i, (who, lab) in enumerate(zip(people, labels, strict=True))],
                       "predictions": []})
    (out / "label-studio-v1.json").write_text(json.dumps(export))
    for task in export[:20]:  # a review round: Lin relabels twenty tasks; task 200 is dropped
        task["annotations"][2] = _annotation(int(task["annotations"][2]["id"]), people[2], "yield", 15)
    (out / "label-studio-v2.json").write_text(json.dumps(export[:-1]))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
