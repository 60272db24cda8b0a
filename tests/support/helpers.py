"""Test data builders."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

CLASSES = [f"class_{i:02d}" for i in range(20)]


def labels_table(n: int, seed: int = 0, prefix: str = "s") -> pa.Table:
    """A labels table shaped like the benchmark's: sample_id, label, annotator_id, confidence, created_at."""
    rng = np.random.default_rng(seed)
    return pa.table({
        "sample_id": [f"{prefix}{i:08d}" for i in range(n)],
        "label": pa.array([CLASSES[i] for i in rng.integers(0, len(CLASSES), n)]),
        "annotator_id": pa.array([f"ann_{i:03d}" for i in rng.integers(0, 200, n)]),
        "confidence": pa.array(rng.random(n, dtype=np.float32)),
        "created_at": pa.array((1_700_000_000_000_000 + rng.integers(0, 10**12, n)).astype("datetime64[us]")),
    })


def sorted_rows(table: pa.Table, key: str = "sample_id") -> list[dict[str, object]]:
    """Rows as dicts in key order, for comparing tables regardless of storage order."""
    rows: list[dict[str, object]] = table.sort_by(key).to_pylist()
    return rows
