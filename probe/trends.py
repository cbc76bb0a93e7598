"""Trend (slope) estimates of correct-class scores against a parameter, with intervals.

:func:`image_trend` (per-image least squares with a bootstrap over images), :func:`wls_trend`
(weighted fit of bin means), :func:`paired_trend` (per-image slopes of paired sweeps); each
returns a :class:`Trend` whose ``method`` names the formula. Per-bin summaries are in
:mod:`probe.statistics`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from probe.errors import ProbeValueError
from probe.statistics import bootstrap_means


@dataclass(frozen=True)
class Trend:
    """A slope of the mean correct-class score against the value, with its interval.

    Attributes
    ----------
    slope : float
        Change of the mean score per unit of the value (score units / value unit).
    slope_low, slope_high : float
        Bounds of the ``confidence`` interval of the slope (NaN if not estimable).
    p_value : float
        Two-sided p-value of the null hypothesis slope = 0 (NaN if not estimable).
    method : str
        The estimator, its weights, interval and test, in words and formulas.
    group : str
        "lens", "nonlens" or "all".
    n : int
        Number of points the slope rests on (bins/values for WLS, images for paired slopes).
    confidence : float
        Level of the interval.
    intercept : float
        Fitted mean score at value 0 (WLS) or mean per-image intercept (paired).
    """

    slope: float
    slope_low: float
    slope_high: float
    p_value: float
    method: str
    group: str
    n: int
    confidence: float
    intercept: float

    def as_dict(self) -> dict[str, Any]:
        """Plain-dict copy (JSON-ready)."""
        return asdict(self)


def bootstrap_slopes(
    x: np.ndarray,
    y: np.ndarray,
    strata: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Least-squares slopes of ``y`` on ``x`` over ``n_boot`` resamples of the points, drawn with
    replacement within each stratum (stratum sizes kept); chunked to bound memory."""
    order = np.lexsort((y, x, strata))  # results depend on the multiset of points only
    x, y, strata = x[order], y[order], strata[order]
    bounds = np.flatnonzero(np.diff(strata)) + 1
    starts = np.concatenate([[0], bounds])
    stops = np.concatenate([bounds, [x.size]])
    n = x.size
    slopes = np.empty(n_boot)
    chunk = max(1, 2_000_000 // max(n, 1))
    for first in range(0, n_boot, chunk):
        last = min(first + chunk, n_boot)
        idx = np.concatenate(
            [rng.integers(a, b, size=(last - first, b - a)) for a, b in zip(starts, stops)],
            axis=1,
        )
        xs, ys = x[idx], y[idx]
        xc = xs - xs.mean(axis=1, keepdims=True)
        sxx = np.sum(xc * xc, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            slopes[first:last] = np.sum(xc * ys, axis=1) / sxx
    return slopes


def image_trend(
    x: np.ndarray,
    scores: np.ndarray,
    strata: np.ndarray,
    *,
    n_boot: int,
    confidence: float,
    rng: np.random.Generator,
    group: str,
) -> Trend:
    """Least-squares slope of per-image scores against per-image values, bootstrap over images.

    ``slope = sum_i (x_i - xbar)(s_i - sbar) / sum_i (x_i - xbar)^2`` over images: for binned
    values (every image at its bin centre) this is the fit of the bin means weighted by their
    counts, an unbiased estimate of the population's least-squares slope whatever the shape of
    the curve (saturating, linear or flat). The interval is a percentile bootstrap over images,
    resampled with replacement within ``strata`` (class; also value when the design fixes the
    count per value), and the two-sided p-value is normal with the bootstrap standard error.
    """
    from scipy import stats

    x = np.asarray(x, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    n = x.size
    if n < 2 or np.ptp(x) == 0:
        raise ProbeValueError(
            f"a trend needs images at 2 or more distinct values in group {group!r}"
        )
    xc = x - x.mean()
    slope = float(np.sum(xc * (s - s.mean())) / np.sum(xc**2))
    intercept = float(s.mean() - slope * x.mean())
    method = (
        "least squares over images, s_i = a + slope * x_i (x_i: the image's bin centre or "
        "value; equal to bin means weighted by counts); "
        f"{100 * confidence:g}% percentile bootstrap interval over images ({n_boot} resamples "
        "within class and, for fixed designs, value; seeded); p-value: two-sided normal with the "
        "bootstrap standard error"
    )
    boot = bootstrap_slopes(x, s, np.asarray(strata), n_boot, rng)
    boot = boot[np.isfinite(boot)]
    if boot.size < 2:
        return Trend(slope, np.nan, np.nan, np.nan, method, group, n, confidence, intercept)
    alpha = 1.0 - confidence
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    se = float(boot.std(ddof=1))
    p = float(2.0 * stats.norm.sf(abs(slope) / se)) if se > 0 else float(slope == 0.0)
    return Trend(slope, float(lo), float(hi), p, method, group, n, confidence, intercept)


def wls_trend(
    x: np.ndarray,
    mean: np.ndarray,
    sem: np.ndarray,
    n: np.ndarray,
    *,
    confidence: float,
    group: str,
) -> Trend:
    """Weighted least-squares slope of bin means against bin values (independent bins).

    Not the default (:func:`image_trend` is): when scores saturate, the bins near 0 or 1 have
    tiny sems and take almost all the weight, so the slope is that of the flat end and its
    interval misses the population slope (17% coverage at 95% on saturating scores; see
    tests/probe/test_trend_coverage.py).

    Model ``mean_b = a + slope * x_b``, weights ``w_b = 1 / sem_b^2`` over bins with ``n_b >= 2``
    (a zero sem is raised to the smallest positive sem, so one noiseless bin cannot take all the
    weight; if every sem is 0 the weights are equal). ``Var(slope) = S / sum(w_b (x_b - xw)^2)``
    with ``xw`` the weighted mean of x and ``S = max(1, chi2 / (k - 2))`` the Birge scale factor
    (``chi2 = sum(w_b r_b^2)``; when every weight is equal, ``S = chi2 / (k - 2)``). The interval
    and the two-sided p-value use Student's t with ``k - 2`` degrees of freedom.
    """
    from scipy import stats  # imported here: scipy.stats costs ~0.3 s and only trends need it

    ok = (n >= 2) & np.isfinite(mean) & np.isfinite(sem)
    k = int(ok.sum())
    if k < 2:
        raise ProbeValueError(
            f"a trend needs at least 2 bins with n >= 2 in group {group!r}; got {k}"
        )
    xs, ys, es = x[ok], mean[ok], sem[ok]
    positive = es > 0
    equal_weights = not np.any(positive)
    w = np.ones(k) if equal_weights else 1.0 / np.maximum(es, es[positive].min()) ** 2
    xw = np.sum(w * xs) / np.sum(w)
    yw = np.sum(w * ys) / np.sum(w)
    sxx = float(np.sum(w * (xs - xw) ** 2))
    if sxx == 0.0:
        raise ProbeValueError(f"a trend needs at least 2 distinct values in group {group!r}")
    slope = float(np.sum(w * (xs - xw) * (ys - yw)) / sxx)
    intercept = float(yw - slope * xw)
    dof = k - 2
    weights = "equal weights (every sem is 0)" if equal_weights else "weights 1/sem_b^2"
    method = (
        f"weighted least squares of bin means on bin values, mean_b = a + slope * x_b, {weights}, "
        "bins with n >= 2; Var(slope) = S / sum(w_b (x_b - xw)^2) with Birge factor "
        f"S = max(1, chi2/(k-2)); {100 * confidence:g}% interval and two-sided p-value from "
        f"Student t with k-2 = {dof} dof"
    )
    if dof == 0:
        return Trend(slope, np.nan, np.nan, np.nan, method, group, k, confidence, intercept)
    resid = ys - (intercept + slope * xs)
    chi2_red = float(np.sum(w * resid**2)) / dof
    scale = chi2_red if equal_weights else max(1.0, chi2_red)
    se = float(np.sqrt(scale / sxx))
    return _t_interval(slope, se, dof, confidence, method, group, k, intercept, stats)


def paired_trend(
    values: np.ndarray,
    matrix: np.ndarray,
    *,
    n_boot: int,
    confidence: float,
    rng: np.random.Generator,
    group: str,
) -> Trend:
    """Mean of per-image least-squares slopes, for sweeps where every image is seen at every value.

    Per image ``i``: ``b_i = sum_j (v_j - vbar)(s_ij - sbar_i) / sum_j (v_j - vbar)^2``. The
    slope is ``mean(b_i)`` (equal to the slope of the mean curve); its interval is a percentile
    bootstrap over images (``n_boot`` resamples, seeded) and its p-value a two-sided one-sample
    t-test of the ``b_i`` against 0 (``n - 1`` dof). Treating the same images at every value as
    independent points would understate the uncertainty of a paired design.
    """
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    if v.size < 2 or np.ptp(v) == 0:
        raise ProbeValueError("a paired trend needs at least 2 distinct values")
    n = matrix.shape[0]
    if n == 0:
        raise ProbeValueError(f"group {group!r} has no samples")
    vc = v - v.mean()
    b = matrix @ vc / np.sum(vc**2)
    intercepts = matrix.mean(axis=1) - b * v.mean()
    slope = float(b.mean())
    method = (
        "paired per-image slope: b_i = sum_j (v_j - vbar)(s_ij - sbar_i) / sum_j (v_j - vbar)^2, "
        f"slope = mean(b_i); {100 * confidence:g}% percentile bootstrap interval over images "
        f"({n_boot} resamples, seeded); p-value: two-sided one-sample t-test of b_i = 0 "
        f"(n-1 = {n - 1} dof)"
    )
    if n < 2:
        # One image: its own least-squares line; no spread of slopes, so no interval or test.
        intercept = float(intercepts.mean())
        return Trend(slope, np.nan, np.nan, np.nan, method, group, n, confidence, intercept)
    alpha = 1.0 - confidence
    boot = bootstrap_means(np.sort(b), n_boot, rng)
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    se = float(b.std(ddof=1) / np.sqrt(n))
    if se == 0.0:
        p = 0.0 if slope != 0.0 else 1.0
    else:
        p = float(2.0 * stats.t.sf(abs(slope) / se, n - 1))
    return Trend(
        slope, float(lo), float(hi), p, method, group, n, confidence, float(intercepts.mean())
    )


def _t_interval(
    slope: float,
    se: float,
    dof: int,
    confidence: float,
    method: str,
    group: str,
    k: int,
    intercept: float,
    stats: Any,
) -> Trend:
    if se == 0.0:
        p = 0.0 if slope != 0.0 else 1.0
        return Trend(slope, slope, slope, p, method, group, k, confidence, intercept)
    tcrit = float(stats.t.ppf(0.5 + confidence / 2, dof))
    p = float(2.0 * stats.t.sf(abs(slope) / se, dof))
    return Trend(
        slope, slope - tcrit * se, slope + tcrit * se, p, method, group, k, confidence, intercept
    )
