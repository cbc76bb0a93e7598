"""Expectations and their verdicts: validation, known answers, and statistical behaviour.

The statistical tests use numpy scores (no images): a candidate identical in distribution to the
baseline must fail at the rate the outcome states (``false_alarm_rate``), one degraded by
exactly ``delta`` must fail at a rate of at least ``1 - alpha``, and one degraded by ``2 delta``
essentially always.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit
from scipy.stats import beta

from probe.errors import ProbeTypeError, ProbeValueError
from probe.gating.expectations import (
    TYPES,
    Completeness,
    Direction,
    Invariance,
    MinScore,
    NoRegression,
)
from probe.gating.verdicts import evaluate, holm
from probe.statistics import binomial_interval
from probe.testing import (
    assert_expectation,
    assert_invariant,
    assert_min_score,
    assert_no_regression,
)

ALPHA = 0.05


# -- validation --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (MinScore, {"min_mean": 1.2}, r"min_mean must be in \(0, 1\); got 1.2"),
        (MinScore, {"min_mean": 0.5, "group": "lenses"}, "group must be one of 'lens'"),
        (MinScore, {"min_mean": 0.5, "over": "theta_E"}, "needs values .* or range and bins"),
        (MinScore, {"min_mean": 0.5, "values": [0, 1]}, "need over"),
        (MinScore, {"min_mean": 0.5, "over": "blur", "values": [1, 0]}, "increase strictly"),
        (MinScore, {"min_mean": 0.5, "over": "x", "range": [2, 1]}, "lo < hi"),
        (MinScore, {"min_mean": 0.5, "over": "x", "range": [1, 2], "bins": 0}, r"\[1, 1000\]"),
        (MinScore, {"min_mean": 0.5, "bins": 3}, "bins needs range"),
        (Invariance, {"tolerance": 0.0, "over": "blur", "values": [0, 1]}, "tolerance must be in"),
        (Invariance, {"tolerance": 0.1}, "invariance needs values"),
        (Invariance, {"tolerance": 0.1, "over": "blur", "values": [0, 1], "reference": 2},
         "reference must be one of values"),
        (Direction, {"direction": "down", "over": "blur", "values": [0, 1]}, "direction must be"),
        (Direction, {"direction": "nonincreasing", "over": "blur", "values": [0]}, "at least 2"),
        (Completeness, {"min_completeness": 0.5, "threshold": 0}, r"threshold .* \(0, 1\]"),
        (NoRegression, {"delta": -0.1}, "delta must be in"),
    ],
)  # fmt: skip
def test_validation_names_field_and_range(cls, kwargs, match):
    with pytest.raises(ProbeValueError, match=match):
        cls(name="e", **kwargs)


def test_validation_types_and_name():
    with pytest.raises(ProbeValueError, match="name must be a non-empty string"):
        MinScore(name=" ", min_mean=0.5)
    with pytest.raises(ProbeTypeError, match="min_mean must be a number"):
        MinScore(name="e", min_mean="high")
    with pytest.raises(ProbeTypeError, match="bins must be an integer"):
        MinScore(name="e", min_mean=0.5, over="x", range=(0, 1), bins=2.5)


@pytest.mark.parametrize(
    "e",
    [
        MinScore(name="a", min_mean=0.6, over="theta_E", range=(1.0, 2.7), bins=3),
        Invariance(name="b", tolerance=0.05, over="blur", values=(0, 0.5), reference=0.5),
        Direction(name="c", direction="nondecreasing", over="noise", values=(0, 1, 2)),
        Completeness(name="d", min_completeness=0.7, threshold=0.9, set="bright"),
        NoRegression(name="e", delta=0.03, group="lens"),
    ],
)
def test_to_dict_maps_one_to_one(e):
    d = e.to_dict()
    assert TYPES[d.pop("type")](**d) == e


def test_holm_known_values():
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5]), [0.5])
    np.testing.assert_allclose(holm([0.9, 0.6]), [1.0, 1.0])


# -- known answers -----------------------------------------------------------------------------
def _two_class(n=200, lens_p=0.8, nonlens_p=0.3, spread=0.1, seed=0):
    g = np.random.default_rng(seed)
    labels = np.r_[np.ones(n, int), np.zeros(n, int)]
    p = np.r_[lens_p + spread * g.uniform(-1, 1, n), nonlens_p + spread * g.uniform(-1, 1, n)]
    return p, labels, g.uniform(1.0, 2.7, 2 * n)


def test_min_score_binned_verdict_and_message():
    p, labels, theta = _two_class()
    e = MinScore(name="lens floor", over="theta_E", range=(1.0, 2.7), bins=3, min_mean=0.7)
    out = e.evaluate(p, labels, parameter=theta)
    assert out.holds
    assert list(out.table["n"]) == [
        int(np.sum((labels == 1) & (theta >= lo) & ((theta < hi) if k < 2 else theta <= hi)))
        for k, (lo, hi) in enumerate([(1.0, 1.0 + 1.7 / 3), (1.0 + 1.7 / 3, 1.0 + 3.4 / 3),
                                      (1.0 + 3.4 / 3, 2.7)])
    ]  # fmt: skip
    for _, row in out.table.iterrows():
        sel = (labels == 1) & (theta >= row["low"]) & (theta <= row["high"])
        assert row["estimate"] == pytest.approx(p[sel].mean(), abs=1e-12)
    # a floor above the true mean (0.8) cannot be demonstrated: fails, naming bins and numbers
    bad = MinScore(name="too high", over="theta_E", range=(1.0, 2.7), bins=3, min_mean=0.85)
    out = bad.evaluate(p, labels, parameter=theta)
    assert not out.holds
    assert "min_score 'too high' FAILS: mean lens score must exceed 0.85" in out.message
    assert "theta_E [1, 1.56667)" in out.message
    assert "required > 0.85" in out.message
    row = out.table.iloc[0]
    assert (
        f"measured {row['estimate']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]" in out.message
    )
    assert np.isnan(out.false_alarm_rate)  # the estimates themselves violate the floor


def test_non_lens_score_uses_one_minus_p():
    p, labels, _ = _two_class(nonlens_p=0.1)
    out = MinScore(name="nl", min_mean=0.85, group="nonlens").evaluate(p, labels)
    assert out.table["estimate"].iloc[0] == pytest.approx(1 - p[labels == 0].mean())
    assert out.holds


@pytest.mark.parametrize("seed", range(6))
def test_interval_clears_threshold_exactly_when_the_bin_holds(seed):
    g = np.random.default_rng(seed)
    p = np.clip(0.6 + 0.2 * g.standard_normal(60), 0, 1)
    labels = np.ones(60, int)
    for floor in (0.5, 0.55, 0.58, 0.6, 0.62):
        row = MinScore(name="x", min_mean=floor).evaluate(p, labels, n_boot=500, rng=seed).table
        assert bool(row["holds"].iloc[0]) == bool(row["ci_low"].iloc[0] > floor)


def test_verdicts_are_seeded_and_depend_on_the_name_not_on_order():
    p, labels, theta = _two_class()
    e = MinScore(name="a", over="theta_E", range=(1.0, 2.7), bins=3, min_mean=0.7)
    t1 = e.evaluate(p, labels, parameter=theta, rng=7).table
    t2 = e.evaluate(p, labels, parameter=theta, rng=7).table
    assert t1.equals(t2)
    t3 = e.evaluate(p, labels, parameter=theta, rng=8).table
    assert not np.allclose(t1["ci_low"], t3["ci_low"])
    renamed = MinScore(name="b", over="theta_E", range=(1.0, 2.7), bins=3, min_mean=0.7)
    assert not np.allclose(renamed.evaluate(p, labels, parameter=theta, rng=7).table["ci_low"],
                           t1["ci_low"])  # fmt: skip


def test_completeness_is_the_jeffreys_test():
    g = np.random.default_rng(3)
    p = g.uniform(0, 1, 400)
    labels = np.r_[np.ones(300, int), np.zeros(100, int)]
    e = Completeness(name="c", min_completeness=0.4, threshold=0.5)
    out = e.evaluate(p, labels)
    k, n = int(np.sum(p[:300] >= 0.5)), 300
    row = out.table.iloc[0]
    assert (row["n"], row["estimate"]) == (n, k / n)
    assert row["p_value"] == pytest.approx(beta.cdf(0.4, k + 0.5, n - k + 0.5))
    low, high = binomial_interval(k, n, method="jeffreys", confidence=1 - 2 * ALPHA)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((float(low), float(high)))
    assert out.holds == (row["p_value"] <= ALPHA)


def test_invariance_is_shown_by_equivalence_not_by_a_flat_slope():
    g = np.random.default_rng(4)
    n = 400
    labels = np.r_[np.ones(n // 2, int), np.zeros(n // 2, int)]
    base = np.where(labels == 1, 0.8, 0.2) + 0.05 * g.uniform(-1, 1, n)
    shifted = np.clip(base + np.where(labels == 1, -0.01, 0.01), 0, 1)  # score -0.01
    e = Invariance(name="inv", over="blur", values=(0.0, 0.5), tolerance=0.05)
    assert e.evaluate(np.stack([base, shifted]), labels).holds
    # A change of exactly the tolerance is not invariance.
    at_tol = np.clip(base + np.where(labels == 1, -0.05, 0.05), 0, 1)
    assert not e.evaluate(np.stack([base, at_tol]), labels).holds
    # Pure noise on 12 images: no significant trend, but no evidence of equivalence either.
    few = np.r_[np.ones(6, int), np.zeros(6, int)]
    b12 = np.where(few == 1, 0.7, 0.3)
    noisy = np.clip(b12 + 0.2 * g.standard_normal(12), 0, 1)
    out = e.evaluate(np.stack([b12, noisy]), few, n_boot=500)
    assert abs(out.table["estimate"].iloc[0]) < 3 * out.table["se"].iloc[0]  # not significant
    assert not out.holds


def test_invariance_over_a_parameter_compares_bins_with_the_range():
    p, labels, theta = _two_class(spread=0.02)
    e = Invariance(name="i", over="theta_E", range=(1.0, 2.7), bins=2, tolerance=0.05, group="lens")
    out = e.evaluate(p, labels, parameter=theta)
    lens = labels == 1
    overall = p[lens].mean()
    first = p[lens & (theta < 1.85)].mean()
    assert out.table["estimate"].iloc[0] == pytest.approx(first - overall)
    assert out.holds


def test_direction_names_the_step_that_rises():
    labels = np.r_[np.ones(100, int), np.zeros(100, int)]
    g = np.random.default_rng(5)
    base = np.where(labels == 1, 0.8, 0.2) + 0.02 * g.uniform(-1, 1, 200)
    worse = np.clip(base + np.where(labels == 1, -0.1, 0.1), 0, 1)  # score -0.1
    e = Direction(name="d", over="noise", values=(0.0, 0.5, 1.0), direction="nonincreasing")
    assert e.evaluate(np.stack([base, worse, worse]), labels).holds
    out = e.evaluate(np.stack([base, worse, base]), labels)  # recovers by +0.1 at 1.0
    assert not out.holds
    assert "noise 0.5->1: measured 0.100" in out.message
    assert "required < 0.02" in out.message
    up = Direction(name="u", over="noise", values=(0.0, 0.5), direction="nondecreasing")
    assert not up.evaluate(np.stack([base, worse]), labels).holds


def test_no_regression_needs_a_baseline_and_matching_shapes():
    p, labels, _ = _two_class()
    e = NoRegression(name="nr", delta=0.03)
    with pytest.raises(ProbeValueError, match="needs the baseline"):
        e.evaluate(p, labels)
    with pytest.raises(ProbeValueError, match=r"baseline must have shape \(400,\)"):
        e.evaluate(p, labels, baseline=p[:10])
    sweep = NoRegression(name="s", delta=0.03, over="blur", values=(0, 1))
    with pytest.raises(ProbeValueError, match=r"p_lens must have shape \(2, 400\)"):
        sweep.evaluate(p, labels, baseline=p)
    with pytest.raises(ProbeValueError, match=r"probabilities in \[0, 1\]; got 1.5"):
        e.evaluate(np.r_[1.5, p[1:]], labels, baseline=p)
    with pytest.raises(ProbeValueError, match="needs parameter"):
        MinScore(name="m", min_mean=0.5, over="x", range=(0, 1)).evaluate(p, labels)


def test_empty_bins_fail_and_too_small_bootstraps_are_refused():
    p, labels, theta = _two_class(n=20)
    e = MinScore(name="m", min_mean=0.5, over="theta_E", range=(1.0, 5.0), bins=4)
    out = e.evaluate(p, labels, parameter=theta)  # theta_E > 2.7 leaves bins 3-4 empty
    assert not out.holds
    assert "theta_E [4, 5]: 0 image(s), too few to test" in out.message
    assert out.false_alarm_rate == 1.0
    many = MinScore(name="m", min_mean=0.5, over="theta_E", range=(1.0, 2.7), bins=10)
    with pytest.raises(ProbeValueError, match="n_boot=100 cannot pass .* use n_boot >= 199"):
        many.evaluate(p, labels, parameter=theta, n_boot=100)


# -- the assertion helpers ---------------------------------------------------------------------
def test_assertion_helpers_raise_with_the_outcome_message():
    p, labels, theta = _two_class()
    assert assert_min_score(p, labels, min_mean=0.7).holds
    with pytest.raises(AssertionError, match="FAILS: mean lens score must exceed 0.9"):
        assert_min_score(p, labels, min_mean=0.9, parameter=theta, range=(1.0, 2.7), bins=2)
    assert assert_invariant(np.stack([p, p]), labels, values=[0, 1], tolerance=0.01).holds
    worse = np.clip(np.where(labels == 1, p - 0.1, p + 0.1), 0, 1)
    with pytest.raises(AssertionError, match="candidate - baseline mean score"):
        assert_no_regression(worse, p, labels, delta=0.05)
    outcome = MinScore(name="m", min_mean=0.95).evaluate(p, labels)
    with pytest.raises(AssertionError, match="min_score 'm' FAILS"):
        assert_expectation(outcome)
    with pytest.raises(TypeError, match="needs p_lens and labels"):
        assert_expectation(MinScore(name="m", min_mean=0.5))


# -- statistical behaviour over many seeds -----------------------------------------------------
def _paired(seed, n, noise, shift):
    """Baseline and candidate p(lens), identical in distribution when ``shift`` is 0.

    Each image has a latent difficulty shared by both models plus each model's own noise
    (logit scale); scores live in [0.1, 0.9], so lowering the correct-class score by ``shift``
    is exact (no clipping).
    """
    g = np.random.default_rng(seed)
    labels = (np.arange(n) % 2 == 0).astype(int)
    z = g.normal(0, 1.5, n) + np.where(labels == 1, 1.0, -1.0)
    base = 0.1 + 0.8 * expit(z + g.normal(0, noise, n))
    cand = 0.1 + 0.8 * expit(z + g.normal(0, noise, n))
    cand = np.where(labels == 1, cand - shift, cand + shift)
    return cand, base, labels, g.uniform(1.0, 2.7, n)


NR3 = NoRegression(name="nr", delta=0.03, over="theta_E", range=(1.0, 2.7), bins=3)


def _fail_rates(e, seeds, n, noise, shift, n_boot=500):
    fails, stated = [], []
    for s in seeds:
        cand, base, labels, theta = _paired(s, n, noise, shift)
        out = e.evaluate(cand, labels, parameter=theta, baseline=base, n_boot=n_boot, rng=s)
        fails.append(not out.holds)
        stated.append(out.false_alarm_rate)
    return float(np.mean(fails)), float(np.mean(stated))


@pytest.mark.parametrize(("noise", "decent"), [(0.7, False), (0.45, True)])
def test_no_change_candidate_fails_at_the_stated_false_alarm_rate(noise, decent):
    n_seeds = 200
    empirical, stated = _fail_rates(NR3, range(n_seeds), 450, noise, 0.0)
    error = np.sqrt(max(stated * (1 - stated), 0.01) / n_seeds)
    # 3 binomial standard errors, plus 0.03 for the normal approximation behind the stated rate
    assert abs(empirical - stated) <= 3 * error + 0.03, (empirical, stated)
    if decent:  # ~75 images per class and bin, models that mostly agree: rare false alarms
        assert stated < 0.1
        assert empirical < 0.1
    else:
        assert 0.15 < stated < 0.7  # a marginal design, where the comparison means something


def test_degradation_of_delta_fails_at_least_1_minus_alpha():
    one_bin = NoRegression(name="nr1", delta=0.03)
    n_seeds = 200
    empirical, _ = _fail_rates(one_bin, range(n_seeds), 200, 1.0, 0.03)
    assert empirical >= 1 - ALPHA - 3 * np.sqrt(ALPHA * (1 - ALPHA) / n_seeds), empirical


def test_degradation_of_two_delta_fails_essentially_always():
    empirical, _ = _fail_rates(NR3, range(200), 600, 1.0, 0.06)
    assert empirical >= 0.99, empirical


def test_min_score_at_its_boundary_passes_at_most_alpha():
    """A candidate whose true mean lens score equals the floor must rarely pass."""
    passes = 0
    n_seeds = 200
    for s in range(n_seeds):
        g = np.random.default_rng(s)
        p = g.uniform(0.4, 0.8, 150)  # true mean 0.6
        passes += (
            MinScore(name="m", min_mean=0.6).evaluate(p, np.ones(150, int), n_boot=500, rng=s).holds
        )
    assert passes / n_seeds <= ALPHA + 3 * np.sqrt(ALPHA * (1 - ALPHA) / n_seeds)


def test_evaluate_rejects_bad_settings():
    p, labels, _ = _two_class()
    e = MinScore(name="m", min_mean=0.5)
    with pytest.raises(ProbeValueError, match=r"alpha must be in \(0, 0.5\)"):
        evaluate(e, p, labels, alpha=0.6)
    with pytest.raises(ProbeValueError, match="n_boot must be >= 100"):
        evaluate(e, p, labels, n_boot=10)
    with pytest.raises(ProbeTypeError, match="must be a probe expectation"):
        evaluate("min_score", p, labels)
