"""Write the demo's inputs: 50,000 labelled street-sign crops, a relabel round and a removal list."""

from __future__ import annotations

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


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
