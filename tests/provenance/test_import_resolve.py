"""Label resolution: properties over random votes, and the documented rules."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.errors import InvalidInput
from registry.provenance.importers import resolve_labels
from registry.provenance.records import RECORD_SCHEMA

LABELS = st.sampled_from(["cat", "dog", "fox", None])
VOTE = st.tuples(st.sampled_from(["s1", "s2", "s3"]), LABELS, st.booleans(), st.booleans(),
                 st.sampled_from(["human", "human", "model"]))


def records(votes: list[tuple[str, str | None, bool, bool, str]]) -> pa.Table:
    rows = [{"sample_key": key, "annotation_id": f"a{i}", "source_kind": kind, "value": label,
             "value_type": "choices", "was_cancelled": cancelled, "ground_truth": gt}
            for i, (key, label, cancelled, gt, kind) in enumerate(votes)]
    return pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)


@settings(max_examples=200, deadline=None)
@given(st.lists(VOTE, max_size=30), st.sampled_from(["gt-majority", "majority"]))
def test_resolution_properties(votes: list[tuple[str, str | None, bool, bool, str]], strategy: str) -> None:
    resolved = {r["sample_key"]: r for r in resolve_labels(records(votes), strategy).to_pylist()}
    assert set(resolved) == {v[0] for v in votes}
    for key, row in resolved.items():
        counted = [(label, gt) for k, label, cancelled, gt, kind in votes if k == key and kind == "human"
                   and not cancelled]
        assert row["annotations"] == len(counted)
        counts = Counter(label for label, _ in counted if label is not None)
        gt_counts = Counter(label for label, gt in counted if gt and label is not None)
        pool = gt_counts if strategy == "gt-majority" and gt_counts else counts
        if row["agreement"] is None:
            assert not counts
        else:
            assert 0.0 <= row["agreement"] <= 1.0
        top = max(pool.values(), default=0)
        leaders = [label for label, n in pool.items() if n == top]
        if row["label"] is not None:
            assert row["label"] in leaders and len(leaders) == 1 and not row["disputed"]
            assert row["agreement"] == pytest.approx(counts[row["label"]] / len(counted))
        assert row["disputed"] == (len(leaders) > 1)


def test_no_votes_is_neither_labelled_nor_disputed() -> None:
    row = resolve_labels(records([("s1", "cat", True, False, "human"), ("s1", "dog", False, False, "model")]))
    assert row.to_pylist() == [{"sample_key": "s1", "label": None, "annotations": 0, "agreement": None,
                                "disputed": False}]


def test_unknown_strategy() -> None:
    with pytest.raises(InvalidInput, match="use one of gt-majority, majority"):
        resolve_labels(records([]), "mean")
