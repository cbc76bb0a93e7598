"""Coverage of every trend statistic probe reports, over many seeds, in the regimes users meet.

Scores are drawn per image from a Beta distribution around a known mean curve m(x) (a
concentration of 20, so scores near 1 have a tiny spread, as a CNN's do), and the population
slope is computed from m by quadrature, never by the code under test. A 95% interval must cover
it in at least 90% of repeats on saturating, linear and flat curves, unpaired and paired. The
old default, bins weighted by 1/sem^2, is shown to fail on saturating scores (its failure mode).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from probe import Probe
from probe.binning import Binning
from probe.statistics import StatsParams
from probe.trends import image_trend, paired_trend

pytestmark = pytest.mark.slow  # ~4 s per regime

REPEATS = 200
EDGES = Binning.uniform(0, 1, n=10)


def saturating(x: np.ndarray) -> np.ndarray:
    """~1 up to x ~ 0.5, then falling to ~0.65: the near-perfect bins have tiny sems."""
    return 1 - 0.35 / (1 + np.exp(-(x - 0.7) / 0.08))


def linear(x: np.ndarray) -> np.ndarray:
    return 0.3 + 0.4 * x


def flat(x: np.ndarray) -> np.ndarray:
    return np.full_like(np.asarray(x, dtype=np.float64), 0.7)


CURVES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "saturating": saturating,
    "linear": linear,
    "flat": flat,
}


def beta_scores(gen: np.random.Generator, mean: np.ndarray, kappa: float = 20.0) -> np.ndarray:
    m = np.clip(mean, 1e-6, 1 - 1e-6)
    return gen.beta(kappa * m, kappa * (1 - m))


def identity_model(images: np.ndarray) -> np.ndarray:
    """p(lens) is the image's single pixel: scores reach the probe unchanged."""
    return np.asarray(images, dtype=np.float64).reshape(len(images))


def binned_population_slope(curve: Callable[[np.ndarray], np.ndarray]) -> float:
    """Least-squares slope of the population's bin means on bin centres (x uniform, so every
    bin has the same weight): what a regression over binned images estimates."""
    means = [curve(np.linspace(lo, hi, 4001)).mean() for lo, hi in zip(EDGES.lows, EDGES.highs)]
    return float(np.polyfit(EDGES.centres, means, 1)[0])


def grid_population_slope(curve: Callable[[np.ndarray], np.ndarray], grid: np.ndarray) -> float:
    return float(np.polyfit(grid, curve(grid), 1)[0])


def _binned_coverage(curve, method: str, repeats: int = REPEATS) -> float:
    truth = binned_population_slope(curve)
    probe = Probe(identity_model, stats=StatsParams(n_boot=400), progress=False)
    hits = 0
    for seed in range(repeats):
        gen = np.random.default_rng(seed)
        x = gen.uniform(0, 1, 300)
        s = beta_scores(gen, curve(x)).astype(np.float32).reshape(-1, 1, 1, 1)
        res = probe.by_parameter(s, np.ones(x.size, int), x, bins=EDGES, rng=seed)
        t = res.trend("lens", method=method)
        hits += t.slope_low <= truth <= t.slope_high
    return hits / repeats


@pytest.mark.parametrize("name", list(CURVES))
def test_default_binned_trend_covers_the_population_slope(name):
    """The default trend of Probe.by_parameter (least squares over images, bootstrap over
    images) covers the population slope at its stated level."""
    coverage = _binned_coverage(CURVES[name], "images")
    assert 0.90 <= coverage <= 0.99, coverage


def test_inverse_variance_weighted_trend_fails_on_saturating_scores():
    """The 1/sem^2-weighted fit (the old default, now method='weighted') gives the flat,
    near-perfect bins almost all the weight: its 95% interval almost never covers the slope."""
    assert _binned_coverage(saturating, "weighted", repeats=60) < 0.5
    # It is fine where scores do not saturate: the failure is specific to saturation.
    assert _binned_coverage(linear, "weighted", repeats=60) >= 0.85


@pytest.mark.parametrize("name", list(CURVES))
def test_unpaired_fixed_design_trend_covers(name):
    """Unpaired re-simulation: a fresh set of n images at each value; resampled within value."""
    curve, grid = CURVES[name], np.linspace(0.0, 1.0, 6)
    truth = grid_population_slope(curve, grid)
    hits = 0
    for seed in range(REPEATS):
        gen = np.random.default_rng(seed)
        x = np.repeat(grid, 50)
        s = beta_scores(gen, curve(x))
        strata = np.repeat(np.arange(grid.size), 50)
        t = image_trend(
            x, s, strata, n_boot=400, confidence=0.95, rng=np.random.default_rng(seed), group="lens"
        )
        hits += t.slope_low <= truth <= t.slope_high
    assert 0.90 <= hits / REPEATS <= 0.99


@pytest.mark.parametrize("name", list(CURVES))
def test_paired_trend_covers(name):
    """Paired sweep: every image at every value, with its own offset (images differ, so
    scores of one image are correlated across values)."""
    curve, grid = CURVES[name], np.linspace(0.0, 1.0, 6)
    # Population mean curve of the paired model, by a large Monte Carlo on its own stream.
    big = np.random.default_rng(12345)
    offsets = big.normal(0, 0.15, size=400_000)
    noise = big.normal(0, 0.02, size=400_000)

    def mean_curve(v: np.ndarray) -> np.ndarray:
        scores = [np.clip(np.clip(curve(g) + offsets, 0, 1) + noise, 0, 1) for g in v]
        return np.array([s.mean() for s in scores])

    truth = grid_population_slope(mean_curve, grid)
    hits = 0
    for seed in range(REPEATS):
        gen = np.random.default_rng(seed)
        u = gen.normal(0, 0.15, size=(150, 1))
        matrix = np.clip(curve(grid)[None, :] + u, 0, 1)
        matrix = np.clip(matrix + gen.normal(0, 0.02, size=matrix.shape), 0, 1)
        t = paired_trend(
            grid, matrix, n_boot=400, confidence=0.95, rng=np.random.default_rng(seed),
            group="lens",
        )  # fmt: skip
        hits += t.slope_low <= truth <= t.slope_high
    assert 0.90 <= hits / REPEATS <= 0.99
