"""Inter-annotator agreement metrics in numpy: Cohen's kappa, Fleiss' kappa, nominal Krippendorff's alpha.

Written here (not imported from scikit-learn, statsmodels or ``krippendorff``) so the core keeps
its small dependency set and the metrics run vectorised over a million annotation records; the
tests hold each one equal to its reference implementation to 1e-9.

Every function takes integer codes (``0..k-1``); :func:`unit_counts` turns long-form
``(unit, value)`` codes into the units x categories count matrix Fleiss and Krippendorff use.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cohen_kappa", "fleiss_kappa", "krippendorff_alpha_nominal", "unit_counts"]


def _ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when the denominator is 0 (agreement is undefined there)."""
    return float(numerator / denominator) if denominator else float("nan")


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa of two raters' labels of the same items (``a[i]`` and ``b[i]`` rate item i).

    Equal to ``sklearn.metrics.cohen_kappa_score(a, b)``; labels may be any comparable values.
    """
    if len(a) != len(b):
        raise ValueError(f"cohen_kappa needs paired ratings, got {len(a)} and {len(b)}")
    if not len(a):
        return float("nan")
    _, codes = np.unique(np.concatenate([np.asarray(a), np.asarray(b)]), return_inverse=True)
    k = int(codes.max()) + 1
    n = len(a)
    confusion = np.bincount(codes[:n] * k + codes[n:], minlength=k * k).reshape(k, k).astype(np.float64)
    expected = np.outer(confusion.sum(axis=1), confusion.sum(axis=0)) / n
    observed_disagreement = n - float(np.trace(confusion))
    expected_disagreement = n - float(np.trace(expected))
    return 1.0 - _ratio(observed_disagreement, expected_disagreement)


def unit_counts(unit: np.ndarray, value: np.ndarray, n_units: int | None = None, n_values: int | None = None
                ) -> np.ndarray:
    """How many times each unit (row) received each value (column), from long-form integer codes."""
    units = int(unit.max()) + 1 if n_units is None else n_units
    values = int(value.max()) + 1 if n_values is None else n_values
    if not len(unit):
        return np.zeros((units, values), np.int64)
    flat = np.bincount(unit.astype(np.int64) * values + value.astype(np.int64), minlength=units * values)
    counts: np.ndarray = flat.reshape(units, values)
    return counts


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa of a units x categories count matrix where every unit has the same number of
    ratings (the largest row sum is taken as that number, as statsmodels does).

    Equal to ``statsmodels.stats.inter_rater.fleiss_kappa(counts, method="fleiss")``.
    """
    table = np.asarray(counts, dtype=np.float64)
    if table.size == 0:
        return float("nan")
    raters = float(table.sum(axis=1).max())
    category_share = table.sum(axis=0) / table.sum()
    per_unit = ((table * table).sum(axis=1) - raters) / (raters * (raters - 1.0))
    observed = float(per_unit.mean())
    expected = float((category_share * category_share).sum())
    return _ratio(observed - expected, 1.0 - expected)


def krippendorff_alpha_nominal(counts: np.ndarray) -> float:
    """Krippendorff's alpha for nominal data from a units x values count matrix.

    Missing ratings are simply absent from the counts; units with fewer than two values are not
    pairable and drop out, as in Krippendorff (2011). Equal to
    ``krippendorff.alpha(reliability_data, level_of_measurement="nominal")``.
    """
    table = np.asarray(counts, dtype=np.float64)
    per_unit = table.sum(axis=1)
    pairable = per_unit >= 2
    table, per_unit = table[pairable], per_unit[pairable]
    if not len(table):
        return float("nan")
    weights = 1.0 / (per_unit - 1.0)
    # Coincidences o_ck = sum_u n_uc (n_uk - [c == k]) / (m_u - 1).
    coincidences = (table * weights[:, None]).T @ table
    coincidences[np.diag_indices_from(coincidences)] -= (table * weights[:, None]).sum(axis=0)
    n_value = coincidences.sum(axis=0)
    n = float(n_value.sum())
    observed = n - float(np.trace(coincidences))
    expected = (n * n - float((n_value * n_value).sum())) / (n - 1.0)
    return 1.0 - _ratio(observed, expected)
