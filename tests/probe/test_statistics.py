"""Statistics: per-group summaries, bootstrap intervals, WLS and paired trends (known answers)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from probe import ProbeValueError, StatsParams
from probe.statistics import bootstrap_means, column_methods, summarise, summarise_group
from probe.trends import paired_trend, wls_trend


def test_summary_of_one_group_matches_numpy():
    s = np.array([0.9, 0.2, 0.6, 0.8, 0.4])
    boot = bootstrap_means(s, 1000, np.random.default_rng(0))
    row = summarise_group(s, StatsParams(min_count=10), boot)
    assert row["n"] == 5
    assert row["low_count"]
    assert row["mean"] == pytest.approx(s.mean())
    assert row["std"] == pytest.approx(s.std(ddof=1))
    assert row["sem"] == pytest.approx(s.std(ddof=1) / np.sqrt(5))
    assert row["accuracy"] == pytest.approx(3 / 5)
    assert row["ci_low"] <= row["mean"] <= row["ci_high"]


def test_empty_and_single_groups_are_reported_not_dropped():
    empty = summarise_group(np.array([]), StatsParams(), None)
    assert empty["n"] == 0
    assert empty["low_count"]
    assert np.isnan(empty["mean"])
    one = summarise_group(np.array([0.7]), StatsParams(), np.full(10, 0.7))
    assert one["mean"] == 0.7
    assert np.isnan(one["std"])
    assert np.isnan(one["ci_low"])


def test_accuracy_uses_strict_threshold():
    row = summarise_group(np.array([0.5, 0.5, 0.51]), StatsParams(), None)
    assert row["accuracy"] == pytest.approx(1 / 3)


def test_bootstrap_interval_covers_normal_theory():
    gen = np.random.default_rng(1)
    x = gen.normal(0.6, 0.1, size=2000)
    means = bootstrap_means(x, 4000, np.random.default_rng(2))
    assert means.std() == pytest.approx(x.std() / np.sqrt(x.size), rel=0.06)


def test_summarise_table_layout_and_groups():
    scores = np.array([0.9, 0.1, 0.8, 0.3, 0.7, 0.6])
    labels = np.array([1, 0, 1, 0, 1, 0])
    keys = np.array([0, 0, 1, 1, 1, 1])
    t = summarise(scores, labels, keys, np.array([1.5, 2.5]), params=StatsParams(), entropy=0)
    assert list(t.columns) == [
        "value", "group", "n", "mean", "std", "sem", "ci_low", "ci_high", "accuracy", "low_count"
    ]  # fmt: skip
    assert t["group"].tolist() == ["lens", "nonlens", "all"] * 2
    assert t["n"].tolist() == [1, 1, 2, 2, 2, 4]
    assert t.loc[5, "mean"] == pytest.approx(np.mean([0.8, 0.3, 0.7, 0.6]))


def test_all_interval_is_stratified_by_class():
    """With lens scores all 1 and non-lens scores all 0 the pooled mean cannot vary."""
    scores = np.r_[np.ones(30), np.zeros(10)]
    labels = np.r_[np.ones(30, int), np.zeros(10, int)]
    t = summarise(scores, labels, np.zeros(40, int), np.array([0.0]), params=StatsParams(),
                  entropy=1)  # fmt: skip
    row = t[t.group == "all"].iloc[0]
    assert row["ci_low"] == row["ci_high"] == pytest.approx(0.75)


def test_lens_only_data_has_no_nonlens_rows():
    t = summarise(
        np.array([0.2, 0.4]), np.array([1, 1]), np.array([0, 0]), np.array([0.0]),
        params=StatsParams(), entropy=0,
    )  # fmt: skip
    assert t["group"].tolist() == ["lens", "all"]


def test_wls_recovers_exact_line_with_zero_width_interval():
    x = np.linspace(0, 1, 6)
    t = wls_trend(x, 0.3 + 0.2 * x, np.full(6, 0.01), np.full(6, 50), confidence=0.95, group="all")
    assert t.slope == pytest.approx(0.2)
    assert t.intercept == pytest.approx(0.3)
    # Residuals are 0 so the Birge factor is 1: the interval comes from the sems alone.
    se = 0.01 / np.sqrt(np.sum((x - x.mean()) ** 2))
    half = stats.t.ppf(0.975, 4) * se
    assert t.slope_high - t.slope == pytest.approx(half)
    assert "weighted least squares" in t.method
    assert "Birge" in t.method


def test_wls_matches_closed_form_weighted_fit():
    gen = np.random.default_rng(4)
    x = np.linspace(1.0, 2.7, 12)
    sem = gen.uniform(0.01, 0.03, 12)
    y = 0.8 - 0.05 * x + gen.normal(0, sem)
    t = wls_trend(x, y, sem, np.full(12, 300), confidence=0.95, group="lens")
    coef, cov = np.polyfit(x, y, 1, w=1 / sem, cov="unscaled")
    assert t.slope == pytest.approx(coef[0])
    chi2 = np.sum(((y - np.polyval(coef, x)) / sem) ** 2) / 10
    se = np.sqrt(cov[0, 0] * max(1.0, chi2))
    assert t.p_value == pytest.approx(2 * stats.t.sf(abs(coef[0]) / se, 10))


def test_wls_needs_two_bins():
    with pytest.raises(ProbeValueError, match="at least 2 bins"):
        wls_trend(
            np.array([1.0, 2.0]), np.array([0.5, np.nan]), np.array([0.1, 0.1]),
            np.array([10, 0]), confidence=0.95, group="all",
        )  # fmt: skip


def test_paired_slope_equals_mean_curve_slope_and_t_test():
    gen = np.random.default_rng(5)
    v = np.linspace(0, 3, 7)
    matrix = 0.9 - 0.1 * v[None, :] + gen.normal(0, 0.05, size=(200, 7))
    t = paired_trend(v, matrix, n_boot=500, confidence=0.95, rng=gen, group="all")
    assert t.slope == pytest.approx(np.polyfit(v, matrix.mean(axis=0), 1)[0])
    b = np.array([np.polyfit(v, row, 1)[0] for row in matrix])
    assert t.p_value == pytest.approx(stats.ttest_1samp(b, 0.0).pvalue)
    half = 1.96 * b.std(ddof=1) / np.sqrt(b.size)
    assert t.slope_low == pytest.approx(t.slope - half, abs=0.25 * half)
    assert t.slope_high == pytest.approx(t.slope + half, abs=0.25 * half)
    assert t.n == 200
    assert "paired per-image slope" in t.method


def test_column_methods_name_every_formula():
    methods = column_methods(StatsParams(n_boot=123, confidence=0.9))
    assert "123 resamples" in methods["ci_low, ci_high"]
    assert "90%" in methods["ci_low, ci_high"]
    assert "ddof=1" in methods["std"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"confidence": 1.0}, "confidence"),
        ({"n_boot": 5}, "n_boot"),
        ({"threshold": 2}, "threshold"),
    ],
)
def test_bad_stats_params(kwargs, match):
    with pytest.raises(ValueError, match=match):
        StatsParams(**kwargs)
