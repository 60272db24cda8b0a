"""Checks over annotation records: agreement, annotator accuracy on gold items, provenance."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from registry.arrays import unique_sorted
from registry.errors import InvalidInput
from registry.quality.agreement import cohen_kappa, fleiss_kappa, krippendorff_alpha_nominal, unit_counts
from registry.quality.measure import Measure, at_least, share
from registry.quality.policy_document import Agreement, AnnotatorAccuracy, ProvenanceComplete
from registry.quality.records import Ratings, annotator_labels, sample_keys
from registry.quality.subject import Subject
from registry.snapshots.hashing import key_hash
from registry.snapshots.layers import in_sorted

__all__ = ["agreement", "annotator_accuracy", "provenance_complete"]

EXAMPLES = 5


def _cohen(check: Agreement, ratings: Ratings) -> tuple[float, int, dict[str, Any]]:
    names = ratings.annotators.to_pylist()
    pair = check.annotators or names
    if len(pair) != 2:
        raise InvalidInput(f"cohen_kappa compares two annotators but the records have {len(names)}; name two with "
                           "`annotators: [a, b]`, or use fleiss_kappa or krippendorff_alpha")
    unknown = [a for a in pair if a not in names]
    if unknown:
        raise InvalidInput(f"no records by annotator {', '.join(map(repr, unknown))}")
    first, second = (np.full(len(ratings.items), -1, np.int64) for _ in range(2))
    for target, name in ((first, pair[0]), (second, pair[1])):
        mine = ratings.annotator == names.index(name)
        target[ratings.item[mine]] = ratings.value[mine]
    both = (first >= 0) & (second >= 0)
    return cohen_kappa(first[both], second[both]), int(both.sum()), {"annotators": list(pair)}


def _fleiss(ratings: Ratings) -> tuple[float, int, dict[str, Any]]:
    counts = unit_counts(ratings.item, ratings.value, len(ratings.items), len(ratings.values))
    per_item = counts.sum(axis=1)
    rated = per_item >= 2
    if not rated.any():
        return float("nan"), 0, {}
    modal = int(np.bincount(per_item[rated]).argmax())
    used = per_item == modal
    return fleiss_kappa(counts[used]), int(used.sum()), {
        "raters_per_item": modal, "items_excluded": int(rated.sum() - used.sum()),
        "note": "Fleiss' kappa needs the same number of ratings per item: items with the most common number are used"}


def _alpha(ratings: Ratings) -> tuple[float, int, dict[str, Any]]:
    counts = unit_counts(ratings.item, ratings.value, len(ratings.items), len(ratings.values))
    return krippendorff_alpha_nominal(counts), int((counts.sum(axis=1) >= 2).sum()), {"level": "nominal"}


def agreement(check: Agreement, subject: Subject) -> Measure:
    ratings = subject.ratings(check.records, check.include_models)
    if check.metric == "cohen_kappa":
        value, items, extra = _cohen(check, ratings)
    elif check.metric == "fleiss_kappa":
        value, items, extra = _fleiss(ratings)
    else:
        value, items, extra = _alpha(ratings)
    details = {"metric": check.metric, "records": subject.records(check.records)[1], "ratings": len(ratings),
               "annotator_count": len(ratings.annotators), "overlapping_items": items,
               "annotator_labels": annotator_labels(subject.records(check.records)[0]), **extra}
    if items < check.min_items:
        return Measure(False, at_least(value, check.min).metric, f">= {check.min:g}",
                       {**details, "note": f"only {items} overlapping item(s); the check needs {check.min_items}"})
    return at_least(value, check.min, details)


def annotator_accuracy(check: AnnotatorAccuracy, subject: Subject) -> Measure:
    ratings = subject.ratings(check.records, check.include_models)
    keys = [check.key] if check.key else subject.keys_of(check.gold)
    gold, resolved = subject.other(check.gold, [*keys, check.label])
    gold_of_item = np.asarray(pc.fill_null(pc.index_in(ratings.items, value_set=sample_keys(gold, keys)), -1)
                              .to_numpy(zero_copy_only=False), np.int64)
    gold_value = np.asarray(pc.fill_null(pc.index_in(pc.cast(gold[check.label], pa.string()), value_set=ratings.values),
                                         -2).to_numpy(zero_copy_only=False), np.int64)
    gold_index = gold_of_item[ratings.item]
    on_gold = gold_index >= 0
    correct = gold_value[gold_index[on_gold]] == ratings.value[on_gold]
    who = ratings.annotator[on_gold]
    items = np.bincount(who, minlength=len(ratings.annotators))
    right = np.bincount(who, weights=correct, minlength=len(ratings.annotators))
    judged = items >= check.min_items
    accuracy = np.divide(right, items, out=np.full(len(items), np.nan), where=items > 0)
    names = ratings.annotators.to_pylist()
    shown = annotator_labels(subject.records(check.records)[0])
    per_annotator = {name: {"gold_items": int(n), "accuracy": None if np.isnan(a) else float(a), "judged": bool(j),
                            "shown_as": shown.get(name, name)}
                     for name, n, a, j in zip(names, items, accuracy, judged, strict=True) if n}
    failing = sorted(name for name, n, a, j in zip(names, items, accuracy, judged, strict=True)
                     if j and a < check.min_accuracy)
    details = {"gold": resolved, "records": subject.records(check.records)[1], "min_items": check.min_items,
               "annotators_judged": int(judged.sum()), "below_min": failing, "per_annotator": per_annotator}
    if not judged.any():
        return Measure(False, None, f">= {check.min_accuracy:g}",
                       {**details, "note": f"no annotator has {check.min_items} gold item(s): nothing to judge"})
    worst = float(accuracy[judged].min())
    return Measure(not failing, worst, f">= {check.min_accuracy:g} for each annotator", details)


def _undocumented_by_index(subject: Subject, documented: pa.Array) -> tuple[int, int, list[Any]] | None:
    """(rows, rows no documented record names, a few of their keys) from the key index alone, when
    every row counts and the key is one string column (no key column read); else None."""
    types = {c["name"]: c["type"] for c in subject.schema}
    if len(subject.keys) != 1 or types.get(subject.keys[0]) not in ("string", "large_string"):
        return None
    key = subject.keys[0]
    index = subject.key_hashes()
    known = unique_sorted(key_hash(pa.table({key: pc.cast(documented, pa.string())}), [key]))
    covered = int(in_sorted(known, index)[0].sum())
    wanted: list[np.ndarray] = []
    for start in range(0, len(index) if covered < len(index) else 0, 4096):
        chunk = index[start:start + 4096]
        wanted.append(chunk[~in_sorted(chunk, known)[0]])
        if sum(map(len, wanted)) >= EXAMPLES:
            break
    examples = np.concatenate(wanted)[:EXAMPLES] if wanted else np.zeros(0, np.uint64)
    keys = subject.reader().fetch(examples, [key]).column(key).to_pylist() if len(examples) else []
    return len(index), len(index) - covered, keys


def provenance_complete(check: ProvenanceComplete, subject: Subject) -> Measure:
    records, source = subject.records(check.records)
    if not check.include_models:
        records = records.filter(pc.fill_null(pc.equal(records["source_kind"], "human"), False))
    parts = {"annotator": pc.is_valid(records["annotator_id"]), "time": pc.is_valid(records["created_at"]),
             "guideline_version": pc.is_valid(records["guideline_version"])}
    complete = pc.and_(pc.and_(parts["annotator"], parts["time"]), parts["guideline_version"])
    documented = pc.unique(records["sample_key"].filter(complete))
    every_row = not check.label or subject.columns([check.label]).column(check.label).null_count == 0
    counted = _undocumented_by_index(subject, documented) if every_row else None
    if counted is None:
        table = subject.columns([*subject.keys, *([check.label] if check.label else [])])
        if check.label:
            table = table.filter(pc.is_valid(table[check.label]))
        keys = sample_keys(table, subject.keys)
        missing = keys.filter(pc.invert(pc.is_in(keys, value_set=documented)))
        counted = (table.num_rows, len(missing), missing.slice(0, EXAMPLES).to_pylist())
    labeled, undocumented, examples = counted
    fraction = share(labeled - undocumented, labeled) if labeled else 1.0
    return at_least(fraction, check.min_fraction, {
        "records": source, "labeled_rows": labeled, "rows_without_provenance": undocumented, "examples": examples,
        "records_lacking": {part: int(len(valid) - pc.sum(valid).as_py()) if len(valid) else 0
                            for part, valid in parts.items()}})
