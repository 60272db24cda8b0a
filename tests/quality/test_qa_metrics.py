"""The agreement metrics equal their reference implementations (scikit-learn, statsmodels,
``krippendorff``) to 1e-9, on random data and on published examples."""

from __future__ import annotations

import numpy as np
import pytest

from registry.quality.agreement import cohen_kappa, fleiss_kappa, krippendorff_alpha_nominal, unit_counts

sklearn_metrics = pytest.importorskip("sklearn.metrics")
inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")
krippendorff = pytest.importorskip("krippendorff")

SEEDS = [0, 1, 2, 3, 7, 42]

# Fleiss (1971), "Measuring nominal scale agreement among many raters": 30 patients, 6 psychiatrists,
# 5 diagnoses (the raw ratings as statsmodels' tests give them); kappa = 0.430.
DIAGNOSES = np.array([
    [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5], [2, 2, 2, 4, 4, 4],
    [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4], [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5],
    [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4], [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5],
    [3, 3, 3, 3, 3, 5], [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4], [1, 4, 4, 4, 4, 5],
    [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4], [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
])

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers, 12 units,
# nominal values with missing data (NaN); alpha = 0.743.
KRIPPENDORFF_2011 = np.array([
    [1, 2, 3, 3, 2, 1, 4, 1, 2, np.nan, np.nan, np.nan],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, np.nan, 3],
    [np.nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, np.nan],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, np.nan],
])


def _counts_from_raters(data: np.ndarray) -> np.ndarray:
    """Units x values counts from a raters x units matrix with NaN for missing ratings."""
    rater, unit = np.nonzero(~np.isnan(data))
    _, value = np.unique(data[rater, unit], return_inverse=True)
    return unit_counts(unit, value, n_units=data.shape[1])


@pytest.mark.parametrize("seed", SEEDS)
def test_cohen_kappa_equals_sklearn_on_random_labels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(20, 5000)), int(rng.integers(2, 12))
    a = rng.integers(0, k, n)
    # b agrees with a some of the time, so kappa is away from 0.
    b = np.where(rng.random(n) < rng.random(), a, rng.integers(0, k, n))
    expected = sklearn_metrics.cohen_kappa_score(a, b)
    assert cohen_kappa(a, b) == pytest.approx(expected, abs=1e-9)
    labels_a, labels_b = np.array([f"c{v}" for v in a]), np.array([f"c{v}" for v in b])
    assert cohen_kappa(labels_a, labels_b) == pytest.approx(expected, abs=1e-9)


def test_cohen_kappa_published_example() -> None:
    # Cohen (1960)-style 2x2 example from Wikipedia: 50 proposals, yes/no; kappa = 0.4.
    a = np.array([1] * 20 + [1] * 5 + [0] * 10 + [0] * 15)
    b = np.array([1] * 20 + [0] * 5 + [1] * 10 + [0] * 15)
    assert cohen_kappa(a, b) == pytest.approx(0.4, abs=1e-12)
    assert cohen_kappa(a, b) == pytest.approx(sklearn_metrics.cohen_kappa_score(a, b), abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_fleiss_kappa_equals_statsmodels_on_random_ratings(seed: int) -> None:
    rng = np.random.default_rng(seed)
    units, raters, k = int(rng.integers(10, 3000)), int(rng.integers(2, 9)), int(rng.integers(2, 10))
    truth = rng.integers(0, k, units)
    ratings = np.where(rng.random((units, raters)) < 0.6, truth[:, None], rng.integers(0, k, (units, raters)))
    table, _ = inter_rater.aggregate_raters(ratings, n_cat=k)
    unit, _ = np.indices(ratings.shape)
    ours = fleiss_kappa(unit_counts(unit.ravel(), ratings.ravel(), units, k))
    assert ours == pytest.approx(inter_rater.fleiss_kappa(table, method="fleiss"), abs=1e-9)


def test_fleiss_kappa_fleiss_1971_diagnoses() -> None:
    table, _ = inter_rater.aggregate_raters(DIAGNOSES)
    unit, _ = np.indices(DIAGNOSES.shape)
    _, value = np.unique(DIAGNOSES.ravel(), return_inverse=True)
    ours = fleiss_kappa(unit_counts(unit.ravel(), value, 30, 5))
    assert ours == pytest.approx(inter_rater.fleiss_kappa(table, method="fleiss"), abs=1e-9)
    assert round(ours, 3) == 0.430


@pytest.mark.parametrize("seed", SEEDS)
def test_krippendorff_alpha_equals_reference_with_missing_values(seed: int) -> None:
    rng = np.random.default_rng(seed)
    raters, units, k = int(rng.integers(2, 8)), int(rng.integers(10, 2000)), int(rng.integers(2, 8))
    truth = rng.integers(0, k, units)
    data = np.where(rng.random((raters, units)) < 0.7, truth[None, :], rng.integers(0, k, (raters, units)))
    data = data.astype(float)
    data[rng.random((raters, units)) < rng.uniform(0.1, 0.5)] = np.nan  # missing ratings
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert krippendorff_alpha_nominal(_counts_from_raters(data)) == pytest.approx(expected, abs=1e-9)


def test_krippendorff_alpha_2011_nominal_example() -> None:
    ours = krippendorff_alpha_nominal(_counts_from_raters(KRIPPENDORFF_2011))
    expected = krippendorff.alpha(reliability_data=KRIPPENDORFF_2011, level_of_measurement="nominal")
    assert ours == pytest.approx(expected, abs=1e-9)
    assert round(ours, 3) == 0.743


def test_undefined_agreement_is_nan_not_a_pass() -> None:
    # One category only: expected disagreement is 0, so every metric is undefined.
    assert np.isnan(cohen_kappa(np.zeros(5), np.zeros(5)))
    assert np.isnan(krippendorff_alpha_nominal(np.array([[3], [2]])))
    assert np.isnan(krippendorff_alpha_nominal(np.array([[1, 0], [0, 1]])))  # no unit has two ratings
