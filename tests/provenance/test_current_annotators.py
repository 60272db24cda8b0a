"""Who gave a sample its current label (``registry.provenance.labels.current_annotators``), the answer behind
blame and the label diff's "by whom": ground truth first, then the latest human act with that value; acts on
other samples, cancelled acts and model predictions never answer, and with no act to answer the query is
skipped but the answer's shape is the same."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from registry.provenance.labels import current_annotators
from registry.provenance.records import RECORD_SCHEMA


def _records(*acts: dict[str, Any]) -> pa.Table:
    rows = []
    for number, act in enumerate(acts):
        row: dict[str, Any] = {f.name: None for f in RECORD_SCHEMA}
        row.update({"annotation_id": str(number), "source_kind": "human", "was_cancelled": False,
                    "created_at": f"2024-01-0{number + 1}T00:00:00Z"} | act)
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)


def test_the_act_behind_each_label() -> None:
    records = _records(
        {"sample_key": "a", "value": "cat", "annotator_id": "ann"},
        {"sample_key": "a", "value": "cat", "annotator_id": "bob"},  # later: the current one
        {"sample_key": "b", "value": "dog", "annotator_id": "gold", "ground_truth": True},
        {"sample_key": "b", "value": "dog", "annotator_id": "cy"},  # later, but ground truth comes first
        {"sample_key": "c", "value": "owl", "annotator_id": "dee", "was_cancelled": True},
        {"sample_key": "c", "value": "owl", "annotator_id": "model", "source_kind": "prediction"},
        {"sample_key": "z", "value": "cat", "annotator_id": "eve"},  # another sample
    )
    who = current_annotators(records, pa.array(["a", "b", "c", "a"]), pa.array(["cat", "dog", "owl", "emu"]))
    assert who.column("annotator_id").to_pylist() == ["bob", "gold", None, None]
    assert who.column("_row").to_pylist() == [0, 1, 2, 3]


def test_no_act_on_the_samples_asked_gives_the_same_shape_without_a_query() -> None:
    records = _records({"sample_key": "z", "value": "cat", "annotator_id": "eve"})
    nobody = current_annotators(records, pa.array(["a", "b"]), pa.array(["cat", "dog"]))
    somebody = current_annotators(records, pa.array(["z", "b"]), pa.array(["cat", "dog"]))
    assert nobody.schema == somebody.schema
    assert nobody.column("annotator_id").to_pylist() == [None, None]
    assert somebody.column("annotator_id").to_pylist() == ["eve", None]
    empty = current_annotators(RECORD_SCHEMA.empty_table(), pa.array(["a"], pa.string()), pa.array(["cat"]))
    assert empty.schema == somebody.schema and empty.num_rows == 1
