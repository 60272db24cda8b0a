"""Checks over a snapshot's rows, its history and a gold dataset."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from registry.arrays import arrow_array
from registry.quality.measure import Measure, at_least, at_most, share
from registry.quality.policy_document import (
    DEFAULT_LABEL_COLUMN,
    AllowedValues,
    ClassBalance,
    DistributionShift,
    GoldAccuracy,
    MaxChangedFraction,
    NotNull,
    RowCount,
    SchemaCompatible,
    UniqueKey,
)
from registry.quality.subject import Subject
from registry.snapshots.hashing import key_hash
from registry.snapshots.schema import compare_schemas

__all__ = ["allowed_values", "class_balance", "distribution_shift", "gold_accuracy", "max_changed_fraction",
           "not_null", "row_count", "schema_compatible", "unique_key"]

EXAMPLES = 5
"""Offending values listed in a check's details."""


def row_count(check: RowCount, subject: Subject) -> Measure:
    rows = subject.snapshot.rows
    ok = (check.min is None or rows >= check.min) and (check.max is None or rows <= check.max)
    bounds = [f">= {check.min:,}" if check.min is not None else "",
              f"<= {check.max:,}" if check.max is not None else ""]
    return Measure(ok, rows, " and ".join(b for b in bounds if b))


def unique_key(check: UniqueKey, subject: Subject) -> Measure:
    columns = check.columns or subject.keys
    # The dataset's own key: its sorted key hashes come from the key index, no rows read.
    kh = subject.key_hashes() if columns == subject.keys else np.sort(key_hash(subject.columns(columns), columns))
    duplicates = int(np.count_nonzero(kh[1:] == kh[:-1])) if len(kh) else 0
    return at_most(duplicates, 0, {"columns": list(columns), "rows": int(len(kh))})


def not_null(check: NotNull, subject: Subject) -> Measure:
    subject.require(check.columns)
    nulls = dict.fromkeys(check.columns, 0)
    # A key column holds no null: every commit refuses one (its rows are identified by their keys), and the
    # objects read are checked against their hashes, so it is not read (at 100M rows, seconds of decoding).
    keys = subject.stored_keys()
    unread = [c for c in check.columns if c in keys]
    wanted = [c for c in check.columns if c not in unread]
    if wanted:
        for batch in subject.batches(wanted, as_codes=True):  # a dictionary array's nulls are its codes'
            for c in wanted:
                nulls[c] += int(batch.column(c).null_count)
    details: dict[str, Any] = {"nulls": nulls}
    if unread:
        details["key_columns_not_read"] = unread
    return at_most(sum(nulls.values()), 0, details)


def allowed_values(check: AllowedValues, subject: Subject) -> Measure:
    outside: dict[Any, int] = {}  # value -> rows, in order of first appearance
    allowed = pa.array(check.values)
    for batch in subject.batches([check.column], as_codes=True):
        for chunk in batch.column(check.column).chunks:
            for value, rows in _outside(chunk, allowed):
                outside[value] = outside.get(value, 0) + rows
    counts = sorted(outside.items(), key=lambda item: -item[1])[:EXAMPLES]
    return at_most(sum(outside.values()), 0, {"column": check.column, "nulls_ignored": True,
                                              "examples": [{"value": value, "rows": rows} for value, rows in counts]})


def _outside(chunk: pa.Array, allowed: pa.Array) -> list[tuple[Any, int]]:
    """Each value of ``chunk`` not in ``allowed`` (compared as text when the types differ) and its rows; nulls
    are not_null's business. A dictionary array is counted by its codes and only its few distinct values
    are tested (about 10x faster than testing every row)."""
    if pa.types.is_dictionary(chunk.type):
        codes = chunk.indices.drop_null().to_numpy()
        rows = np.bincount(codes, minlength=len(chunk.dictionary))
        values = chunk.dictionary
    else:
        values, rows = chunk, None
    if values.type != allowed.type:
        values, allowed = pc.cast(values, pa.string()), pc.cast(allowed, pa.string())
    bad = pc.and_(pc.invert(pc.is_in(values, value_set=allowed)), pc.is_valid(values))
    if rows is None:
        found = pc.value_counts(values.filter(bad))
        return list(zip(found.field("values").to_pylist(), found.field("counts").to_pylist(), strict=True))
    which = np.asarray(bad.to_numpy(zero_copy_only=False), bool) & (rows > 0)  # a value of hidden rows only
    names = chunk.dictionary.filter(arrow_array(which)).to_pylist()
    return list(zip(names, rows[which].tolist(), strict=True))


def schema_compatible(_check: SchemaCompatible, subject: Subject) -> Measure:
    if subject.baseline is None or subject.baseline_schema is None:
        return Measure(True, 0, "0 breaking changes", {"note": "no earlier snapshot passed: nothing to compare"})
    changes = compare_schemas(subject.baseline_schema, subject.schema)
    breaking = [c.describe() for c in changes if c.breaking]
    return Measure(not breaking, len(breaking), "0 breaking changes",
                   {"against": subject.baseline.id, "breaking": breaking,
                    "compatible": [c.describe() for c in changes if not c.breaking]})


def max_changed_fraction(check: MaxChangedFraction, subject: Subject) -> Measure:
    snap, parent = subject.snapshot, subject.parent
    if parent is None:
        return Measure(True, None, f"<= {check.max:g}", {"note": "first snapshot: no parent to compare"})
    touched = snap.added + snap.changed + snap.removed
    return at_most(share(touched, max(parent.rows, 1)), check.max,
                   {"parent": parent.id, "added": snap.added, "changed": snap.changed, "removed": snap.removed,
                    "parent_rows": parent.rows})


NAN = float("nan")
"""The one key every NaN is counted under: NaN equals no NaN, so each counted batch's (or snapshot's) NaN
would otherwise be a value of its own, and two snapshots' NaN shares would never meet."""


def _shares(counts: dict[Any, int]) -> dict[Any, float]:
    """Each value's share of the rows, from how many rows hold each value (nulls under the key None, every
    NaN under :data:`NAN`)."""
    merged: dict[Any, int] = {}
    for value, n in counts.items():
        key = NAN if isinstance(value, float) and math.isnan(value) else value
        merged[key] = merged.get(key, 0) + n
    total = sum(merged.values())
    return {value: n / total for value, n in merged.items()} if total else {}


def class_balance(check: ClassBalance, subject: Subject) -> Measure:
    shares = _shares(subject.value_counts(check.column))
    ranked = sorted(shares.items(), key=lambda kv: -kv[1])
    details: dict[str, Any] = {"column": check.column, "shares": {str(k): round(v, 6) for k, v in ranked}}
    if not shares:
        return Measure(False, None, "", {**details, "note": "no rows"})
    low, high = min(shares.values()), max(shares.values())
    too_low = [str(k) for k, v in shares.items() if check.min_share is not None and v < check.min_share]
    too_high = [str(k) for k, v in shares.items() if check.max_share is not None and v > check.max_share]
    limits = [f"min share >= {check.min_share:g}" if check.min_share is not None else "",
              f"max share <= {check.max_share:g}" if check.max_share is not None else ""]
    metric = low if check.min_share is not None else high
    return Measure(not (too_low or too_high), metric, " and ".join(x for x in limits if x),
                   {**details, "min_share": low, "max_share": high, "below_min": too_low, "above_max": too_high})


def distribution_shift(check: DistributionShift, subject: Subject) -> Measure:
    if subject.baseline is None:
        return Measure(True, None, f"<= {check.max_tvd:g}", {"note": "no earlier snapshot passed: nothing to compare"})
    now = _shares(subject.value_counts(check.column))
    subject.require([check.column], subject.baseline_schema, f"{subject.dataset}@{subject.baseline.id[:12]}")
    before = _shares(subject.value_counts(check.column, subject.baseline))
    gaps = {value: now.get(value, 0.0) - before.get(value, 0.0) for value in {*now, *before}}
    tvd = 0.5 * sum(abs(g) for g in gaps.values())
    moved = sorted(gaps.items(), key=lambda kv: -abs(kv[1]))[:EXAMPLES]
    return at_most(tvd, check.max_tvd, {"column": check.column, "against": subject.baseline.id,
                                        "largest_moves": {str(k): round(v, 6) for k, v in moved}})


def _gold_pairs(subject: Subject, gold: pa.Table, keys: list[str], label: str) -> pa.Table:
    """``__gold`` and ``__predicted`` for each gold item the snapshot has and labels.

    Joined on the dataset key, the gold keys are looked up in the key index and only their labels
    are fetched (O(gold) lookups, one column decoded); on other columns, a hash join whose build
    side is the small gold table.
    """
    if keys == subject.keys:
        reader = subject.reader()
        kh = key_hash(gold, keys)
        found = reader.lookup(kh)
        ours = reader.fetch(kh, [label], found)
        pairs = pa.table({"__gold": gold["__gold"].filter(arrow_array(found.present)),
                          "__predicted": ours.column(label)})
    else:
        ours = subject.columns([*keys, label]).rename_columns([*keys, "__predicted"])
        pairs = ours.join(gold, keys=keys, join_type="inner")
    return pairs.filter(pc.is_valid(pairs["__predicted"]))


def gold_accuracy(check: GoldAccuracy, subject: Subject) -> Measure:
    keys = check.key or subject.keys
    label = check.label or DEFAULT_LABEL_COLUMN
    gold_label = check.gold_label or label
    gold, resolved = subject.other(check.gold, [*keys, gold_label])
    subject.require([label])
    matched = _gold_pairs(subject, gold.rename_columns([*keys, "__gold"]), keys, label)
    predicted = "__predicted"
    hits = np.asarray(pc.fill_null(pc.equal(pc.cast(matched[predicted], pa.string()),
                                            pc.cast(matched["__gold"], pa.string())), False)
                      .to_numpy(zero_copy_only=False), bool)
    names, inverse = np.unique(pc.cast(matched["__gold"], pa.string()).to_numpy(zero_copy_only=False).astype(str),
                               return_inverse=True)
    items = np.bincount(inverse, minlength=len(names))
    right = np.bincount(inverse, weights=hits, minlength=len(names))
    per_class = {str(name): {"items": int(n), "accuracy": float(r / n)}
                 for name, n, r in zip(names, items, right, strict=True)}
    accuracy = share(int(hits.sum()), len(hits))
    weak = sorted(c for c, v in per_class.items()
                  if check.min_class_accuracy is not None and v["accuracy"] < check.min_class_accuracy)
    outcome = at_least(accuracy, check.min_accuracy, {
        "gold": resolved, "gold_items": gold.num_rows, "matched": len(hits), "missing": gold.num_rows - len(hits),
        "per_class": per_class, "classes_below_min": weak})
    if check.min_class_accuracy is None:
        return outcome
    return Measure(outcome.passed and not weak, outcome.metric,
                   f"{outcome.threshold} (each class >= {check.min_class_accuracy:g})", outcome.details)
