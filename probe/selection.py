"""Selection functions of a lens finder: completeness against lens properties, and 50% points.

A *selection function* is the fraction of true lenses a search keeps, ``C(x) = P(p >= t | x)``,
as a function of a lens property ``x`` at a score threshold ``t``. Given scores ``p`` (the
model's p(lens)), labels (1 lens, 0 non-lens) and per-object values, :func:`selection_function`
bins the lenses by ``x`` and counts, in each bin and at each threshold, the ``k`` of ``n`` lenses
with ``p >= t``. Non-lenses never enter the completeness; they set thresholds at a fixed
false-positive rate and the ranking statistics TPR0/TPR10.

Formulas (also saved with every result, in ``methods``):

* completeness ``k / n``; Wilson (score) interval
  ``(k + z^2/2)/(n + z^2) +/- z/(n + z^2) sqrt(k (n - k)/n + z^2/4)`` or Jeffreys interval
  (quantiles ``(1 -/+ c)/2`` of ``Beta(k + 1/2, n - k + 1/2)``, lower 0 when ``k = 0``, upper 1
  when ``k = n``), ``z`` the normal quantile of the confidence ``c`` (Brown, Cai & DasGupta 2001).
* threshold at a false-positive rate ``f`` from ``N`` negatives: with ``j = floor(f N)`` false
  positives allowed, ``t`` is just above the ``(j+1)``-th highest negative score, so at most ``j``
  negatives (empirical FPR <= f) have ``p >= t``; needs ``f N >= 1``.
* ``TPR_k`` (TPR0: k = 1, TPR10: k = 10): the fraction of lenses scoring strictly above the
  k-th highest negative, i.e. found before the k-th false positive when objects are inspected in
  order of decreasing score (Metcalf et al. 2019's TPR0/TPR10).
* 50% point: per-object (unbinned) binomial likelihood of a curve
  ``C(x) = A F(u0 + b (x - x50))`` with ``F`` the logistic or normal CDF, ``u0 = F^-1(1/(2A))``
  (so ``C(x50) = 1/2`` exactly), plateau ``1/2 < A <= 1`` (or ``A = 1``) and slope ``b`` of
  either sign; interval by profile likelihood (``2 Delta lnL <= chi2_1(c)``) or by parametric
  bootstrap (seeded; percentiles of refits to data redrawn from the fitted curve).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from probe import rng as _rng
from probe.binning import Binning
from probe.errors import ProbeKeyError, ProbeValueError
from probe.provenance import atomic_write, now_utc, package_versions
from probe.validation import names_list

__all__ = [
    "CurveFit",
    "ParentComparison",
    "Rate",
    "SelectionFunction",
    "SelectionSurface",
    "binomial_interval",
    "report_section",
    "selected_vs_parent",
    "selection_function",
    "selection_surface",
    "threshold_at_fpr",
    "tpr_before",
]

Interval = Literal["wilson", "jeffreys"]
CurveModel = Literal["logistic", "erf"]
_PLOTS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
TABLE_COLUMNS = ("value", "threshold", "n", "completeness", "ci_low", "ci_high")
"""The contract columns of :attr:`SelectionFunction.table`, in this order (extras follow)."""


# --------------------------------------------------------------------------------------------
# binomial intervals and ranking statistics
# --------------------------------------------------------------------------------------------


def _z(confidence: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2.0))


def _check_confidence(confidence: float) -> float:
    c = float(confidence)
    if not 0.0 < c < 1.0:
        raise ProbeValueError(f"confidence must be in (0, 1); got {confidence!r}")
    return c


def binomial_interval(
    k: Any, n: Any, *, method: Interval = "wilson", confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided interval for a binomial proportion ``k / n``, vectorised.

    Parameters
    ----------
    k, n : array_like
        Successes and trials (broadcast together); NaN is returned where ``n == 0``.
    method : {"wilson", "jeffreys"}
        Wilson score interval or Jeffreys (Beta(k + 1/2, n - k + 1/2)) interval.
    confidence : float
        Nominal coverage, e.g. 0.95.

    Returns
    -------
    low, high : ndarray
        Bounds in [0, 1], float64.
    """
    c = _check_confidence(confidence)
    kk = np.asarray(k, dtype=np.float64)
    nn = np.asarray(n, dtype=np.float64)
    kk, nn = np.broadcast_arrays(kk, nn)
    if np.any(kk < 0) or np.any(kk > nn):
        raise ProbeValueError("binomial_interval needs 0 <= k <= n")
    empty = nn <= 0
    ns = np.where(empty, 1.0, nn)
    if method == "wilson":
        z = _z(c)
        f = kk / ns
        den = 1.0 + z * z / ns
        centre = (f + z * z / (2.0 * ns)) / den
        half = z / den * np.sqrt(f * (1.0 - f) / ns + z * z / (4.0 * ns * ns))
        low, high = np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
    elif method == "jeffreys":
        from scipy.stats import beta

        a, b = kk + 0.5, ns - kk + 0.5
        low = np.where(kk > 0, beta.ppf((1.0 - c) / 2.0, a, b), 0.0)
        high = np.where(kk < ns, beta.ppf((1.0 + c) / 2.0, a, b), 1.0)
    else:
        raise ProbeValueError(f"method must be 'wilson' or 'jeffreys'; got {method!r}")
    low = np.where(empty, np.nan, np.where(kk <= 0, 0.0, low))
    high = np.where(empty, np.nan, np.where(kk >= nn, 1.0, high))
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)


def threshold_at_fpr(negative_scores: Any, fpr: float) -> float:
    """Lowest score threshold whose empirical false-positive rate is at most ``fpr``.

    With ``N`` negatives and ``j = floor(fpr N)``, returns the smallest float above the
    ``(j+1)``-th highest negative score, so that at most ``j`` negatives have ``p >= t``.

    Raises
    ------
    ProbeValueError
        If ``fpr N < 1``: the rate cannot be resolved with so few negatives (the number needed
        is given).
    """
    neg = np.sort(np.asarray(negative_scores, dtype=np.float64).ravel())[::-1]
    f = float(fpr)
    if not 0.0 < f < 1.0:
        raise ProbeValueError(f"fpr must be in (0, 1); got {fpr!r}")
    if neg.size * f < 1.0 - 1e-9:
        raise ProbeValueError(
            f"fpr={f:g} needs at least {math.ceil(1.0 / f - 1e-9)} negatives to be resolved; "
            f"got {neg.size}"
        )
    j = math.floor(f * neg.size + 1e-9)
    if j >= neg.size:
        return float(neg[-1])
    return float(np.nextafter(neg[j], np.inf))


@dataclass(frozen=True)
class Rate:
    """A fraction of lenses with its interval: ``value`` (``k / n``), ``low``, ``high``.

    ``threshold`` is the score threshold it corresponds to (lenses with ``p >= threshold``).
    """

    value: float
    low: float
    high: float
    k: int
    n: int
    threshold: float
    method: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dict(self.__dict__)


def tpr_before(
    scores: Any,
    labels: Any,
    k: int,
    *,
    interval: Interval = "wilson",
    confidence: float = 0.95,
) -> Rate:
    """Fraction of lenses found before the ``k``-th false positive (``k = 1``: TPR0, 10: TPR10).

    Lenses count as found when their score is strictly above the ``k``-th highest negative
    score (ties with a negative are not found: inspecting in score order, they come with it).
    """
    p, lab = _scores_labels(scores, labels)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ProbeValueError(f"k must be a positive integer; got {k!r}")
    neg = np.sort(p[lab == 0])[::-1]
    pos = p[lab == 1]
    if neg.size < k:
        raise ProbeValueError(
            f"TPR before the {k}th false positive needs at least {k} negatives; got {neg.size}"
        )
    if pos.size == 0:
        raise ProbeValueError("no lenses (label 1) to compute a true-positive rate")
    cut = float(neg[k - 1])
    found = int(np.count_nonzero(pos > cut))
    lo, hi = binomial_interval(found, pos.size, method=interval, confidence=confidence)
    return Rate(
        value=found / pos.size,
        low=float(lo),
        high=float(hi),
        k=found,
        n=int(pos.size),
        threshold=float(np.nextafter(cut, np.inf)),
        method=f"lenses with p > {k}th highest negative score; {interval} interval",
    )


def _scores_labels(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(scores, dtype=np.float64).ravel()
    if p.size == 0:
        raise ProbeValueError("scores is empty")
    if not np.all(np.isfinite(p)):
        i = int(np.flatnonzero(~np.isfinite(p))[0])
        raise ProbeValueError(f"scores must be finite; index {i} is {p[i]}")
    if labels is None:
        return p, np.ones(p.size, dtype=np.int64)
    lab = np.asarray(labels).ravel()
    if lab.size != p.size:
        raise ProbeValueError(f"labels has {lab.size} entries for {p.size} scores")
    if not np.all(np.isin(lab, (0, 1))):
        raise ProbeValueError("labels must be 0 (non-lens) or 1 (lens)")
    return p, lab.astype(np.int64)


# --------------------------------------------------------------------------------------------
# curve fits and 50% points
# --------------------------------------------------------------------------------------------


def _cdf(model: str) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[float], float]]:
    from scipy.special import expit, logit, ndtr, ndtri

    if model == "logistic":
        return expit, lambda q: float(logit(q))
    if model == "erf":
        return ndtr, lambda q: float(ndtri(q))
    raise ProbeValueError(f"model must be 'logistic' or 'erf'; got {model!r}")


@dataclass(frozen=True)
class CurveFit:
    """Maximum-likelihood completeness curve ``C(x) = A F(u0 + b (x - x50))`` at one threshold.

    Attributes
    ----------
    threshold : float
        Score threshold.
    x50, low, high : float
        The 50% point and its interval (NaN when the curve never reaches 1/2; an infinite bound
        when the interval is open within the search range: the data do not bound it).
    slope : float
        ``b`` in 1/(unit of x): negative when completeness falls as x rises.
    plateau : float
        ``A``, the completeness far on the good side.
    model, method : str
        ``"logistic"``/``"erf"``; ``"profile"``/``"bootstrap"``.
    n : int
        Lenses in the fit.
    log_likelihood : float
        Maximum log-likelihood.
    extrapolated : bool
        ``x50`` lies outside the range of the data.
    confidence : float
        Interval level.
    """

    threshold: float
    x50: float
    low: float
    high: float
    slope: float
    plateau: float
    model: str
    method: str
    n: int
    log_likelihood: float
    extrapolated: bool
    confidence: float

    def curve(self, x: Any) -> np.ndarray:
        """The fitted completeness at ``x``."""
        xx = np.asarray(x, dtype=np.float64)
        if not np.isfinite(self.x50):
            return np.full(xx.shape, np.nan)
        cdf, inv = _cdf(self.model)
        u0 = inv(0.5 / self.plateau) if self.plateau < 1.0 else 0.0
        return self.plateau * cdf(u0 + self.slope * (xx - self.x50))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dict(self.__dict__)


class _Likelihood:
    """Negative log-likelihood (and gradient) of the curve in standardised ``t = (x - mu)/sd``."""

    def __init__(self, t: np.ndarray, y: np.ndarray, model: str) -> None:
        self.t, self.y = t, y.astype(np.float64)
        self.model = model
        self.cdf, self.inv = _cdf(model)

    def _pdf(self, u: np.ndarray, cdf_u: np.ndarray) -> np.ndarray:
        if self.model == "logistic":
            return cdf_u * (1.0 - cdf_u)
        return np.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi)

    def nll_grad(self, t50: float, b: float, a: float) -> tuple[float, np.ndarray]:
        """NLL and its gradient in (t50, b, A)."""
        u0 = self.inv(0.5 / a)
        dt = self.t - t50
        u = u0 + b * dt
        fu = self.cdf(u)
        c = np.clip(a * fu, 1e-12, 1.0 - 1e-12)
        y = self.y
        nll = float(-np.sum(y * np.log(c) + (1.0 - y) * np.log1p(-c)))
        dn_dc = -(y / c - (1.0 - y) / (1.0 - c))
        pu = a * self._pdf(u, fu)
        f0 = float(self._pdf(np.asarray(u0), np.asarray(0.5 / a)))
        du0_da = -0.5 / (a * a * f0)
        grad = np.array(
            [
                float(np.sum(dn_dc * (-pu * b))),
                float(np.sum(dn_dc * pu * dt)),
                float(np.sum(dn_dc * (fu + pu * du0_da))),
            ]
        )
        return nll, grad

    def nll(self, t50: float, b: float, a: float) -> float:
        return self.nll_grad(t50, b, a)[0]


_A_MIN = 0.5 + 1e-3
_B_MAX = 60.0


def _fit(
    lik: _Likelihood,
    plateau: bool,
    t_bounds: tuple[float, float],
    fixed_t50: float | None = None,
    start: Sequence[np.ndarray] | None = None,
) -> tuple[float, np.ndarray]:
    """Minimise the NLL over (t50, b, A) (t50 fixed when given); returns (nll, [t50, b, A]).

    ``start`` holds starting vectors of the free parameters; by default three starts spread over
    the data's quartiles, with the slope's sign from the correlation of outcome and value.
    """
    from scipy.optimize import minimize

    free = np.array([fixed_t50 is None, True, plateau])

    def full(v: np.ndarray) -> np.ndarray:
        out = np.array([fixed_t50 if fixed_t50 is not None else 0.0, 0.0, 1.0])
        out[free] = v
        return out

    # Unconstrained BFGS (L-BFGS-B costs ~2 ms per iteration here; BFGS is far cheaper for 1-3
    # parameters): A = A_MIN + (1 - A_MIN) expit(w); |b| <= B_MAX by a barrier; t50 is free (an
    # optimum outside the data is reported as an extrapolation).
    from scipy.special import expit, logit

    lo_a = _A_MIN

    def to_v(par: np.ndarray) -> np.ndarray:
        par = np.array(par, dtype=np.float64)
        if plateau:
            q = np.clip((par[-1] - lo_a) / (1.0 - lo_a), 1e-6, 1.0 - 1e-6)
            par[-1] = logit(q)
        return par

    def from_v(v: np.ndarray) -> tuple[np.ndarray, float]:
        par = np.array(v, dtype=np.float64)
        dadw = 1.0
        if plateau:
            e = float(expit(par[-1]))
            par[-1] = lo_a + (1.0 - lo_a) * e
            dadw = (1.0 - lo_a) * e * (1.0 - e)
        return par, dadw

    def fun(v: np.ndarray) -> tuple[float, np.ndarray]:
        par, dadw = from_v(v)
        b = par[-2] if plateau else par[-1]
        if abs(b) > _B_MAX:
            return 1e300, np.zeros_like(v)
        f, g = lik.nll_grad(*full(par))
        g = g[free]
        if plateau:
            g[-1] *= dadw
        return f, g

    if start is None:
        corr = np.corrcoef(lik.t, lik.y)[0, 1] if np.ptp(lik.y) > 0 else -1.0
        sign = 1.0 if corr > 0 else -1.0
        t0s = np.quantile(lik.t, (0.25, 0.5, 0.75)) if fixed_t50 is None else [0.0]
        starts = [np.array([t0, 1.5 * sign, 0.95])[free] for t0 in t0s]
    else:
        starts = list(start)
    best_f, best_x = math.inf, np.asarray(starts[0], dtype=np.float64)
    for x0 in starts:
        res = minimize(fun, to_v(x0), jac=True, method="BFGS", options={"gtol": 1e-6})
        par, _ = from_v(res.x)
        if res.fun < best_f:
            best_f, best_x = float(res.fun), par
    return best_f, full(best_x)


def fit_completeness(
    values: Any,
    found: Any,
    *,
    threshold: float = float("nan"),
    model: CurveModel = "logistic",
    plateau: bool = True,
    method: Literal["profile", "bootstrap"] = "profile",
    confidence: float = 0.95,
    n_boot: int = 200,
    rng: _rng.RngLike = 0,
) -> CurveFit:
    """Fit ``C(x) = A F(u0 + b (x - x50))`` to per-lens outcomes and bound its 50% point.

    Parameters
    ----------
    values : array_like
        Lens property ``x`` of each lens.
    found : array_like of bool
        Whether each lens passed the threshold.
    threshold : float
        Recorded in the result only.
    model : {"logistic", "erf"}
        Shape ``F``: logistic ``1/(1 + e^-u)`` or normal CDF ``(1 + erf(u/sqrt 2))/2``.
    plateau : bool
        Fit the plateau ``A`` in (1/2, 1] (default) or fix ``A = 1``.
    method : {"profile", "bootstrap"}
        Profile likelihood (``2 [lnL_max - lnL_prof(x50)] <= chi2_1 quantile``) or parametric
        bootstrap (``n_boot`` data sets drawn from the fitted curve at the observed ``x``, seeded
        by ``rng``; percentile interval of their refitted ``x50``).
    confidence : float
        Interval level.
    """
    from scipy.optimize import brentq
    from scipy.stats import chi2

    c = _check_confidence(confidence)
    x = np.asarray(values, dtype=np.float64).ravel()
    y = np.asarray(found, dtype=bool).ravel()
    if x.size != y.size:
        raise ProbeValueError(f"values has {x.size} entries, found has {y.size}")
    if x.size < 10 or not np.all(np.isfinite(x)):
        raise ProbeValueError("a completeness fit needs at least 10 lenses with finite values")
    _cdf(model)
    if method not in ("profile", "bootstrap"):
        raise ProbeValueError(f"method must be 'profile' or 'bootstrap'; got {method!r}")
    mu, sd = float(x.mean()), float(x.std()) or 1.0
    t = (x - mu) / sd
    span = float(np.ptp(t)) or 1.0
    t_bounds = (float(t.min()) - span, float(t.max()) + span)
    lik = _Likelihood(t, y, model)
    nan_fit = CurveFit(
        threshold,
        math.nan,
        math.nan,
        math.nan,
        math.nan,
        math.nan,
        model,
        method,
        int(x.size),
        math.nan,
        False,
        c,
    )
    if y.all() or not y.any():
        return nan_fit  # a constant outcome has no 50% point
    nll0, (t50, b, a) = _fit(lik, plateau, t_bounds)
    if plateau and a <= _A_MIN + 1e-6:
        return nan_fit  # the curve never reaches 1/2
    lo_t = hi_t = math.nan
    if method == "profile":
        q = float(chi2.ppf(c, 1))
        seen: dict[float, np.ndarray] = {t50: np.array([b, a] if plateau else [b])}

        def excess(tt: float) -> float:
            # continuation: start from the profile solution nearest in t50
            near = min(seen, key=lambda s0: abs(s0 - tt))
            f, par = _fit(lik, plateau, t_bounds, fixed_t50=tt, start=[seen[near]])
            seen[tt] = par[1:] if plateau else par[1:2]
            return 2.0 * (f - nll0) - q

        bounds_t = []
        for direction in (-1.0, 1.0):
            step, prev = 0.1, t50
            edge = t_bounds[0] if direction < 0 else t_bounds[1]
            found_bound = math.inf * direction
            while True:
                cand = t50 + direction * step
                if (cand - edge) * direction >= 0:
                    cand = edge
                if excess(cand) > 0:
                    found_bound = brentq(excess, min(prev, cand), max(prev, cand), xtol=1e-3)
                    break
                if cand == edge:
                    break
                prev, step = cand, step * 2.0
            bounds_t.append(found_bound)
        lo_t, hi_t = bounds_t
    else:
        gen = _rng.child(_rng.root_entropy(rng), _rng.BOOTSTRAP, 7)
        fitted = CurveFit(
            threshold, t50, 0, 0, b, a, model, method, int(x.size), -nll0, False, c
        ).curve(t)
        reps = []
        for _ in range(int(n_boot)):
            yb = gen.random(t.size) < fitted
            if yb.all() or not yb.any():
                continue
            lb = _Likelihood(t, yb, model)
            first = np.array([t50, b, a] if plateau else [t50, b])
            _, (tb, _, ab) = _fit(lb, plateau, t_bounds, start=[first])
            if not plateau or ab > _A_MIN + 1e-6:
                reps.append(tb)
        if len(reps) >= 10:
            lo_t, hi_t = np.quantile(reps, [(1 - c) / 2, (1 + c) / 2])
    x50 = mu + sd * t50
    return CurveFit(
        threshold=float(threshold),
        x50=float(x50),
        low=float(mu + sd * lo_t),
        high=float(mu + sd * hi_t),
        slope=float(b / sd),
        plateau=float(a),
        model=model,
        method=method,
        n=int(x.size),
        log_likelihood=-nll0,
        extrapolated=bool(x50 < x.min() or x50 > x.max()),
        confidence=c,
    )


# --------------------------------------------------------------------------------------------
# the 1-D selection function
# --------------------------------------------------------------------------------------------


def _bins_for(bins: Any, values: np.ndarray) -> Binning:
    if isinstance(bins, Binning):
        return bins
    if isinstance(bins, int | np.integer) and not isinstance(bins, bool):
        return Binning.uniform(float(values.min()), float(values.max()), n=int(bins))
    return Binning.edges(bins)


def _threshold_list(
    thresholds: Sequence[float], fpr: float | Sequence[float] | None, neg: np.ndarray
) -> list[tuple[float, str, float]]:
    """(threshold, label, target fpr or NaN) for every requested threshold."""
    out: list[tuple[float, str, float]] = []
    for t in thresholds:
        tf = float(t)
        if not math.isfinite(tf):
            raise ProbeValueError(f"thresholds must be finite; got {t!r}")
        out.append((tf, f"{tf:g}", math.nan))
    if fpr is not None:
        rates = [fpr] if isinstance(fpr, float | int) else list(fpr)
        if neg.size == 0:
            raise ProbeValueError("fpr= needs negatives (label 0) to set thresholds from")
        for f in rates:
            out.append((threshold_at_fpr(neg, float(f)), f"fpr={float(f):g}", float(f)))
    if not out:
        raise ProbeValueError("give at least one threshold (thresholds= or fpr=)")
    return out


@dataclass
class SelectionFunction:
    """What :func:`selection_function` returns.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (threshold, bin): ``value`` (bin centre), ``threshold``, ``n`` (lenses in the
        bin), ``completeness`` (``k / n``), ``ci_low``, ``ci_high`` (interval at
        ``confidence``), then ``k``, ``bin_low``, ``bin_high``, ``threshold_label`` (``"0.9"`` or
        ``"fpr=0.001"``), ``fpr`` (empirical false-positive rate of the negatives at that
        threshold, NaN without negatives), ``low_count`` (``n < min_count``).
    overall : pandas.DataFrame
        One row per threshold: the same over all lenses (not binned), plus ``n_negatives``.
    samples : pandas.DataFrame
        The lenses: ``value``, ``p_lens``, ``bin``.
    parameter, unit : str
        Name and unit of ``x``.
    """

    table: pd.DataFrame
    overall: pd.DataFrame
    samples: pd.DataFrame
    negatives: np.ndarray
    binning: Binning
    parameter: str
    unit: str
    interval: str
    confidence: float
    min_count: int
    provenance: dict[str, Any]
    label: str = ""
    methods: dict[str, str] = field(default_factory=dict)
    _fits: dict[tuple[Any, ...], CurveFit] = field(default_factory=dict, repr=False)

    # -- thresholds ---------------------------------------------------------------------------
    @property
    def thresholds(self) -> list[float]:
        """Thresholds in table order."""
        return [float(t) for t in self.overall["threshold"]]

    @property
    def axis_label(self) -> str:
        """``"parameter [unit]"``."""
        return f"{self.parameter} [{self.unit}]" if self.unit else self.parameter

    def _resolve(self, threshold: float | str | None) -> float:
        if threshold is None:
            if len(self.thresholds) != 1:
                raise ProbeValueError(
                    f"several thresholds ({self.overall['threshold_label'].tolist()}): name one"
                )
            return self.thresholds[0]
        if isinstance(threshold, str):
            hit = self.overall[self.overall["threshold_label"] == threshold]
            if hit.empty:
                raise ProbeKeyError(
                    f"threshold {threshold!r} not in {self.overall['threshold_label'].tolist()}"
                )
            return float(hit["threshold"].iloc[0])
        t = float(threshold)
        for have in self.thresholds:
            if math.isclose(have, t, rel_tol=1e-12, abs_tol=1e-12):
                return have
        # any other threshold is computed from the stored scores
        return t

    def found(self, threshold: float | str | None = None) -> np.ndarray:
        """Per-lens outcome ``p >= threshold`` (the order of :attr:`samples`)."""
        return self.samples["p_lens"].to_numpy() >= self._resolve(threshold)

    # -- ranking statistics -------------------------------------------------------------------
    def _ranked(self) -> tuple[np.ndarray, np.ndarray]:
        p = np.concatenate([self.samples["p_lens"].to_numpy(), self.negatives])
        lab = np.concatenate([np.ones(len(self.samples)), np.zeros(self.negatives.size)])
        return p, lab

    def tpr_before(self, k: int) -> Rate:
        """Fraction of lenses found before the k-th false positive (:func:`tpr_before`)."""
        p, lab = self._ranked()
        return tpr_before(p, lab, k, interval=self.interval, confidence=self.confidence)  # type: ignore[arg-type]

    @property
    def tpr0(self) -> Rate:
        """TPR0: lenses scoring above every negative."""
        return self.tpr_before(1)

    @property
    def tpr10(self) -> Rate:
        """TPR10: lenses scoring above the 10th highest negative."""
        return self.tpr_before(10)

    # -- fits -----------------------------------------------------------------------------------
    def fit(
        self,
        threshold: float | str | None = None,
        *,
        model: CurveModel = "logistic",
        plateau: bool = True,
        method: Literal["profile", "bootstrap"] = "profile",
        n_boot: int = 200,
        rng: _rng.RngLike = 0,
    ) -> CurveFit:
        """Completeness curve at ``threshold`` (see :func:`fit_completeness`); cached."""
        t = self._resolve(threshold)
        key = (t, model, plateau, method, n_boot, rng if isinstance(rng, int) else None)
        if key not in self._fits or key[-1] is None:
            self._fits[key] = fit_completeness(
                self.samples["value"].to_numpy(),
                self.samples["p_lens"].to_numpy() >= t,
                threshold=t,
                model=model,
                plateau=plateau,
                method=method,
                confidence=self.confidence,
                n_boot=n_boot,
                rng=rng,
            )
        return self._fits[key]

    def fifty_percent_point(
        self, threshold: float | str | None = None, **kwargs: Any
    ) -> tuple[float, float, float]:
        """``(value, low, high)`` where the fitted completeness crosses 1/2 at ``threshold``.

        NaN when completeness never reaches 1/2 (or is constant); an infinite bound when the
        data do not close the interval. Keywords go to :meth:`fit` (``model``, ``plateau``,
        ``method``, ``n_boot``, ``rng``).
        """
        f = self.fit(threshold, **kwargs)
        return (f.x50, f.low, f.high)

    def fifty_percent_points(self, **kwargs: Any) -> pd.DataFrame:
        """One row per threshold: ``threshold, threshold_label, x50, low, high, slope, plateau,
        extrapolated``."""
        rows = []
        for t, lab in zip(self.thresholds, self.overall["threshold_label"]):
            f = self.fit(t, **kwargs)
            rows.append(
                {
                    "threshold": t,
                    "threshold_label": lab,
                    "x50": f.x50,
                    "low": f.low,
                    "high": f.high,
                    "slope": f.slope,
                    "plateau": f.plateau,
                    "extrapolated": f.extrapolated,
                }
            )
        return pd.DataFrame(rows)

    # -- output ---------------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        """Everything saved beside the table."""
        meta: dict[str, Any] = {
            "kind": "selection_function",
            "parameter": self.parameter,
            "unit": self.unit,
            "label": self.label,
            "interval": self.interval,
            "confidence": self.confidence,
            "min_count": self.min_count,
            "binning": self.binning.to_dict(),
            "overall": self.overall.to_dict(orient="list"),
            "methods": self.methods,
            "fits": [f.as_dict() for f in self._fits.values()],
            "provenance": self.provenance,
        }
        for name in ("tpr0", "tpr10"):
            try:
                meta[name] = getattr(self, name).as_dict()
            except ProbeValueError:
                meta[name] = None
        return meta

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write :attr:`table` with its metadata (``.parquet``, ``.csv`` or ``.json``), as
        :meth:`probe.Result.save` does; read the metadata back with :func:`probe.read_metadata`.
        """
        return _save_table(self.table, self.metadata(), path)

    def plot(self, path: str | os.PathLike[str], **kwargs: Any) -> Path:
        """Completeness against the value, one colour per threshold (:func:`plot_selection`)."""
        return plot_selection([self], path, **kwargs)

    def __repr__(self) -> str:
        return (
            f"<SelectionFunction of {self.label!r} over {self.parameter!r}: "
            f"{self.binning.n_bins} bins, thresholds {self.overall['threshold_label'].tolist()}, "
            f"{len(self.samples)} lenses, {self.negatives.size} negatives>"
        )


def _methods(interval: str, confidence: float) -> dict[str, str]:
    iv = (
        "Wilson score interval (k + z^2/2)/(n + z^2) +/- z/(n + z^2) sqrt(k(n-k)/n + z^2/4)"
        if interval == "wilson"
        else "Jeffreys interval: Beta(k + 1/2, n - k + 1/2) quantiles (0 at k = 0, 1 at k = n)"
    )
    return {
        "completeness": "k/n: lenses in the bin with p_lens >= threshold over lenses in the bin",
        "ci_low, ci_high": f"{iv}, confidence {confidence:g}",
        "fpr": "fraction of negatives with p_lens >= threshold",
        "threshold (fpr=f)": "just above the (floor(f N)+1)-th highest negative score",
        "tpr0, tpr10": "fraction of lenses with p_lens above the 1st / 10th highest negative",
        "x50": "C(x) = A F(u0 + b (x - x50)), u0 = F^-1(1/(2A)); per-lens binomial likelihood; "
        "profile-likelihood (chi2_1) or parametric-bootstrap interval",
    }


def _save_table(table: pd.DataFrame, meta_obj: dict[str, Any], path: Any) -> Path:
    from probe.result import save_table  # lazily: keeps `import probe` light

    return save_table(table, meta_obj, path)


def selection_function(
    scores: Any,
    labels: Any,
    values: Any,
    bins: Binning | int | Sequence[float] = 10,
    thresholds: Sequence[float] = (0.5, 0.9, 0.99),
    *,
    fpr: float | Sequence[float] | None = None,
    interval: Interval = "wilson",
    confidence: float = 0.95,
    min_count: int = 30,
    name: str = "value",
    unit: str = "",
    label: str = "",
    provenance: Mapping[str, Any] | None = None,
) -> SelectionFunction:
    """Completeness of a lens finder against a lens property, at several score thresholds.

    Parameters
    ----------
    scores : array_like
        p(lens) of every object, shape (n,).
    labels : array_like or None
        1 for lenses, 0 for non-lenses (None: all are lenses). Non-lenses enter only through
        ``fpr`` thresholds, the ``fpr`` column and TPR0/TPR10.
    values : array_like
        The property of each object (e.g. lensed source g magnitude); non-lens values are
        ignored and may be NaN.
    bins : Binning, int or sequence of edges
        :class:`probe.Binning` (its ``outside`` rule applies), a number of uniform bins over the
        lenses' range, or explicit edges.
    thresholds : sequence of float
        A lens is found when ``p_lens >= threshold``.
    fpr : float or sequence of float, optional
        Also add the threshold of each false-positive rate, set from the negatives
        (:func:`threshold_at_fpr`); labelled ``"fpr=<f>"``.
    interval : {"wilson", "jeffreys"}
        Binomial interval of each completeness.
    confidence : float
        Interval level.
    min_count : int
        Bins with fewer lenses are flagged ``low_count`` (never dropped).
    name, unit : str
        The property's name and unit (tables and plots).
    label : str
        Model label for plots.
    provenance : mapping, optional
        Extra provenance (model hash, data hash, seeds) to save with the result.
    """
    p, lab = _scores_labels(scores, labels)
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size != p.size:
        raise ProbeValueError(f"values has {x.size} entries for {p.size} scores")
    if interval not in ("wilson", "jeffreys"):
        raise ProbeValueError(f"interval must be 'wilson' or 'jeffreys'; got {interval!r}")
    c = _check_confidence(confidence)
    is_lens = lab == 1
    xl, pl = x[is_lens], p[is_lens]
    if xl.size == 0:
        raise ProbeValueError("no lenses (label 1): completeness needs lenses")
    binning = _bins_for(bins, xl[np.isfinite(xl)] if np.isfinite(xl).any() else xl)
    idx = binning.assign(xl, name="values of lenses")
    keep = idx >= 0
    neg = p[~is_lens]
    ths = _threshold_list(thresholds, fpr, neg)
    nb = binning.n_bins
    counts = np.bincount(idx[keep], minlength=nb)
    rows, overall = [], []
    for t, tlabel, target in ths:
        hit = pl[keep] >= t
        k = np.bincount(idx[keep], weights=hit, minlength=nb).astype(np.int64)
        lo, hi = binomial_interval(k, counts, method=interval, confidence=c)
        with np.errstate(invalid="ignore", divide="ignore"):
            comp = np.where(counts > 0, k / np.maximum(counts, 1), np.nan)
        fp = float(np.mean(neg >= t)) if neg.size else math.nan
        for b in range(nb):
            rows.append(
                {
                    "value": float(binning.centres[b]),
                    "threshold": t,
                    "n": int(counts[b]),
                    "completeness": float(comp[b]),
                    "ci_low": float(lo[b]),
                    "ci_high": float(hi[b]),
                    "k": int(k[b]),
                    "bin_low": float(binning.lows[b]),
                    "bin_high": float(binning.highs[b]),
                    "threshold_label": tlabel,
                    "fpr": fp,
                    "low_count": bool(counts[b] < min_count),
                }
            )
        kt, nt = int(hit.sum()), int(keep.sum())
        olo, ohi = binomial_interval(kt, nt, method=interval, confidence=c)
        overall.append(
            {
                "threshold": t,
                "threshold_label": tlabel,
                "n": nt,
                "k": kt,
                "completeness": kt / nt if nt else math.nan,
                "ci_low": float(olo),
                "ci_high": float(ohi),
                "fpr": fp,
                "target_fpr": target,
                "n_negatives": int(neg.size),
                "n_false_positives": int(np.count_nonzero(neg >= t)),
            }
        )
    table = pd.DataFrame(rows)
    samples = pd.DataFrame({"value": xl[keep], "p_lens": pl[keep], "bin": idx[keep]})
    prov = {
        "created": now_utc(),
        "versions": package_versions(),
        "n_lenses": int(xl.size),
        "n_dropped": int((~keep).sum()),
        "n_negatives": int(neg.size),
        **dict(provenance or {}),
    }
    return SelectionFunction(
        table=table,
        overall=pd.DataFrame(overall),
        samples=samples,
        negatives=np.sort(neg),
        binning=binning,
        parameter=name,
        unit=unit,
        interval=interval,
        confidence=c,
        min_count=int(min_count),
        provenance=prov,
        label=label or "model",
        methods=_methods(interval, c),
    )


# --------------------------------------------------------------------------------------------
# 2-D selection surfaces
# --------------------------------------------------------------------------------------------


@dataclass
class SelectionSurface:
    """Completeness on a grid of two lens properties (:func:`selection_surface`).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (threshold, x bin, y bin): ``x, y, threshold, n, completeness, ci_low,
        ci_high, width`` (``ci_high - ci_low``), ``k``, ``thin`` (``n < min_count``: masked in
        plots), ``threshold_label``.
    """

    table: pd.DataFrame
    x_binning: Binning
    y_binning: Binning
    x_name: str
    y_name: str
    x_unit: str
    y_unit: str
    interval: str
    confidence: float
    min_count: int
    provenance: dict[str, Any]
    label: str = ""

    def grid(self, column: str, threshold: float | str | None = None) -> np.ndarray:
        """``column`` as an array of shape (n_x bins, n_y bins) at one threshold."""
        labels = self.table["threshold_label"].unique().tolist()
        if threshold is None:
            if len(labels) != 1:
                raise ProbeValueError(f"several thresholds ({labels}): name one")
            sel = self.table
        elif isinstance(threshold, str):
            sel = self.table[self.table["threshold_label"] == threshold]
        else:
            sel = self.table[np.isclose(self.table["threshold"], float(threshold))]
        if sel.empty:
            raise ProbeKeyError(f"threshold {threshold!r} not in {labels}")
        nx, ny = self.x_binning.n_bins, self.y_binning.n_bins
        return sel[column].to_numpy().reshape(nx, ny)

    def counts(self) -> np.ndarray:
        """Lenses per cell, shape (n_x bins, n_y bins)."""
        first = self.table["threshold_label"].iloc[0]
        return self.grid("n", first).astype(np.int64)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the table with its metadata (as :meth:`SelectionFunction.save`)."""
        meta = {
            "kind": "selection_surface",
            "x": {"name": self.x_name, "unit": self.x_unit, **self.x_binning.to_dict()},
            "y": {"name": self.y_name, "unit": self.y_unit, **self.y_binning.to_dict()},
            "interval": self.interval,
            "confidence": self.confidence,
            "min_count": self.min_count,
            "label": self.label,
            "provenance": self.provenance,
        }
        return _save_table(self.table, meta, path)

    def plot(self, path: str | os.PathLike[str], **kwargs: Any) -> Path:
        """Heat maps of completeness and interval width per threshold (:func:`plot_surface`)."""
        return plot_surface(self, path, **kwargs)


def selection_surface(
    scores: Any,
    labels: Any,
    x: Any,
    y: Any,
    x_bins: Binning | int | Sequence[float],
    y_bins: Binning | int | Sequence[float],
    thresholds: Sequence[float] = (0.5, 0.9),
    *,
    fpr: float | Sequence[float] | None = None,
    interval: Interval = "wilson",
    confidence: float = 0.95,
    min_count: int = 20,
    x_name: str = "x",
    y_name: str = "y",
    x_unit: str = "",
    y_unit: str = "",
    label: str = "",
) -> SelectionSurface:
    """Completeness of the lenses on a 2-D grid (e.g. source g against lens r), per threshold.

    Arguments as :func:`selection_function`, with two properties and two binnings. Cells with
    fewer than ``min_count`` lenses are ``thin`` (masked in plots); every cell keeps its count
    and interval width.
    """
    p, lab = _scores_labels(scores, labels)
    xx = np.asarray(x, dtype=np.float64).ravel()
    yy = np.asarray(y, dtype=np.float64).ravel()
    if xx.size != p.size or yy.size != p.size:
        raise ProbeValueError(f"x and y need {p.size} entries; got {xx.size} and {yy.size}")
    c = _check_confidence(confidence)
    is_lens = lab == 1
    if not is_lens.any():
        raise ProbeValueError("no lenses (label 1): completeness needs lenses")
    xb = _bins_for(x_bins, xx[is_lens])
    yb = _bins_for(y_bins, yy[is_lens])
    ix = xb.assign(xx[is_lens], name="x of lenses")
    iy = yb.assign(yy[is_lens], name="y of lenses")
    keep = (ix >= 0) & (iy >= 0)
    cell = ix[keep] * yb.n_bins + iy[keep]
    ncell = xb.n_bins * yb.n_bins
    counts = np.bincount(cell, minlength=ncell)
    pl = p[is_lens][keep]
    neg = p[~is_lens]
    gx, gy = np.meshgrid(xb.centres, yb.centres, indexing="ij")
    frames = []
    for t, tlabel, _ in _threshold_list(thresholds, fpr, neg):
        k = np.bincount(cell, weights=pl >= t, minlength=ncell).astype(np.int64)
        lo, hi = binomial_interval(k, counts, method=interval, confidence=c)
        with np.errstate(invalid="ignore", divide="ignore"):
            comp = np.where(counts > 0, k / np.maximum(counts, 1), np.nan)
        frames.append(
            pd.DataFrame(
                {
                    "x": gx.ravel(),
                    "y": gy.ravel(),
                    "threshold": t,
                    "n": counts,
                    "completeness": comp,
                    "ci_low": lo,
                    "ci_high": hi,
                    "width": hi - lo,
                    "k": k,
                    "thin": counts < min_count,
                    "threshold_label": tlabel,
                }
            )
        )
    return SelectionSurface(
        table=pd.concat(frames, ignore_index=True),
        x_binning=xb,
        y_binning=yb,
        x_name=x_name,
        y_name=y_name,
        x_unit=x_unit,
        y_unit=y_unit,
        interval=interval,
        confidence=c,
        min_count=int(min_count),
        provenance={
            "created": now_utc(),
            "versions": package_versions(),
            "n_dropped": int((~keep).sum()),
        },
        label=label or "model",
    )


# --------------------------------------------------------------------------------------------
# selected vs parent (Herle et al. 2024)
# --------------------------------------------------------------------------------------------


@dataclass
class ParentComparison:
    """Quantiles of lens properties among lenses above a rising threshold, beside the parent's.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (parameter, threshold, quantile): ``parameter, threshold, quantile, value``
        (the quantile among lenses with ``p >= threshold``; NaN with none), ``parent`` (the
        same quantile over all lenses), ``n_selected``, ``n_parent``.
    units : dict
        Unit of each parameter.
    """

    table: pd.DataFrame
    units: dict[str, str]
    label: str = ""

    def plot(self, path: str | os.PathLike[str], **kwargs: Any) -> Path:
        """One panel per parameter (:func:`plot_parent`)."""
        return plot_parent(self, path, **kwargs)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the table with its metadata."""
        meta = {"kind": "selected_vs_parent", "units": self.units, "label": self.label}
        return _save_table(self.table, meta, path)


def selected_vs_parent(
    scores: Any,
    labels: Any,
    parameters: Mapping[str, Any] | pd.DataFrame,
    thresholds: Sequence[float] | None = None,
    *,
    quantiles: Sequence[float] = (0.16, 0.5, 0.84),
    units: Mapping[str, str] | None = None,
    label: str = "",
) -> ParentComparison:
    """How the lenses a search keeps differ from all lenses as the threshold rises.

    After Herle, O'Riordan & Vegetti (2024, MNRAS 534, 1093): for each parameter (e.g.
    ``theta_E``, source g, ``z_source``), the ``quantiles`` of its values among lenses with
    ``p >= t`` for each ``t`` in ``thresholds`` (default 0, 0.1, ..., 0.9, 0.95, 0.99), against
    the same quantiles over the parent population (all lenses given).
    """
    p, lab = _scores_labels(scores, labels)
    frame = pd.DataFrame(parameters)
    if len(frame) != p.size:
        raise ProbeValueError(f"parameters have {len(frame)} rows for {p.size} scores")
    ths = (
        np.concatenate([np.round(np.arange(0.0, 0.91, 0.1), 10), [0.95, 0.99]])
        if thresholds is None
        else np.asarray(thresholds, dtype=np.float64)
    )
    qs = np.asarray(quantiles, dtype=np.float64)
    is_lens = lab == 1
    rows = []
    for col in frame.columns:
        v = frame[col].to_numpy(dtype=np.float64)[is_lens]
        pl = p[is_lens]
        ok = np.isfinite(v)
        parent = np.quantile(v[ok], qs) if ok.any() else np.full(qs.size, np.nan)
        for t in ths:
            sel = ok & (pl >= t)
            vals = np.quantile(v[sel], qs) if sel.any() else np.full(qs.size, np.nan)
            for q, val, par in zip(qs, vals, parent):
                rows.append(
                    {
                        "parameter": str(col),
                        "threshold": float(t),
                        "quantile": float(q),
                        "value": float(val),
                        "parent": float(par),
                        "n_selected": int(sel.sum()),
                        "n_parent": int(ok.sum()),
                    }
                )
    return ParentComparison(
        table=pd.DataFrame(rows),
        units={str(c): (units or {}).get(str(c), "") for c in frame.columns},
        label=label or "model",
    )


# --------------------------------------------------------------------------------------------
# plots (matplotlib imported lazily; files only, never a window)
# --------------------------------------------------------------------------------------------


def _figure_target(path: Any) -> tuple[Path, str]:
    target = Path(path)
    fmt = _PLOTS.get(target.suffix.lower())
    if fmt is None:
        raise ProbeValueError(
            f"path must end in one of {names_list(tuple(_PLOTS))}; got {str(target)!r}"
        )
    return target, fmt


def _write(fig: Any, target: Path, fmt: str, dpi: int) -> Path:
    return atomic_write(target, lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi))


def plot_selection(
    functions: Sequence[SelectionFunction],
    path: str | os.PathLike[str],
    *,
    labels: Sequence[str] | None = None,
    fit: bool = True,
    title: str | None = None,
    dpi: int = 150,
) -> Path:
    """Completeness (with intervals) against the value; one panel per model, one colour per
    threshold; fitted curves and 50% points (with their intervals) when ``fit``. Hollow markers
    flag bins with fewer than ``min_count`` lenses."""
    if not functions:
        raise ProbeValueError("functions is empty")
    target, fmt = _figure_target(path)
    names = list(labels) if labels is not None else [f.label for f in functions]
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.6 * len(functions), 3.8), layout="constrained")
    axes = fig.subplots(1, len(functions), sharey=True, squeeze=False)[0]
    for ax, sf, name in zip(axes, functions, names):
        lo_x, hi_x = sf.binning.bin_edges[0], sf.binning.bin_edges[-1]
        xs = np.linspace(lo_x, hi_x, 200)
        for j, (t, tl) in enumerate(zip(sf.thresholds, sf.overall["threshold_label"])):
            rows = sf.table[sf.table["threshold_label"] == tl]
            colour = f"C{j}"
            x = rows["value"].to_numpy(float)
            y = rows["completeness"].to_numpy(float)
            err = np.clip(
                [y - rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float) - y], 0, None
            )
            ax.errorbar(
                x,
                y,
                yerr=err,
                fmt="o",
                ms=3.5,
                capsize=2,
                color=colour,
                label=f"p >= {tl}" if not tl.startswith("fpr") else f"{tl} (p >= {t:.3g})",
            )
            low = rows["low_count"].to_numpy(bool)
            if low.any():
                ax.plot(x[low], y[low], "o", ms=7, mfc="none", mec=colour)
            if fit:
                try:
                    cf = sf.fit(t)
                except ProbeValueError:
                    continue
                if np.isfinite(cf.x50):
                    ax.plot(xs, cf.curve(xs), "-", color=colour, lw=1.1)
                    ax.axvline(cf.x50, color=colour, lw=0.8, ls=":")
                    lo = max(cf.low, lo_x) if np.isfinite(cf.low) else lo_x
                    hi = min(cf.high, hi_x) if np.isfinite(cf.high) else hi_x
                    ax.axvspan(lo, hi, color=colour, alpha=0.08, lw=0)
        ax.axhline(0.5, color="0.5", lw=0.8, ls="--", zorder=0)
        ax.set_xlabel(sf.axis_label)
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", loc="best")
    axes[0].set_ylabel("completeness (fraction of lenses found)")
    axes[0].set_ylim(-0.02, 1.02)
    if title:
        fig.suptitle(title)
    return _write(fig, target, fmt, dpi)


def plot_surface(
    surface: SelectionSurface,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    annotate: bool = True,
    dpi: int = 150,
) -> Path:
    """Heat maps per threshold: completeness (thin cells hatched grey) and interval width; cell
    counts written in the completeness panels when ``annotate``."""
    target, fmt = _figure_target(path)
    labels = surface.table["threshold_label"].unique().tolist()
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 3.6 * len(labels)), layout="constrained")
    axes = fig.subplots(len(labels), 2, squeeze=False)
    ex, ey = np.asarray(surface.x_binning.bin_edges), np.asarray(surface.y_binning.bin_edges)
    xl = f"{surface.x_name} [{surface.x_unit}]" if surface.x_unit else surface.x_name
    yl = f"{surface.y_name} [{surface.y_unit}]" if surface.y_unit else surface.y_name
    counts = surface.counts()
    thin = counts < surface.min_count
    for row, tl in zip(axes, labels):
        comp = np.ma.masked_where(thin, surface.grid("completeness", tl))
        width = np.ma.masked_where(counts == 0, surface.grid("width", tl))
        for ax, data, cmap, vmax, name in (
            (row[0], comp, "viridis", 1.0, "completeness"),
            (row[1], width, "magma_r", None, f"{surface.confidence:.0%} interval width"),
        ):
            ax.set_facecolor("0.85")
            mesh = ax.pcolormesh(ex, ey, data.T, cmap=cmap, vmin=0.0, vmax=vmax)
            fig.colorbar(mesh, ax=ax, label=name)
            ax.set_xlabel(xl)
            ax.set_ylabel(yl)
            ax.set_title(f"{surface.label}: {name}, p >= {tl}", fontsize="small")
        if thin.any():
            row[0].pcolor(
                ex, ey, np.ma.masked_where(~thin, np.ones_like(counts)).T, hatch="//", alpha=0.0
            )
        if annotate:
            cx, cy = surface.x_binning.centres, surface.y_binning.centres
            for i in range(counts.shape[0]):
                for j in range(counts.shape[1]):
                    row[0].text(
                        cx[i],
                        cy[j],
                        str(counts[i, j]),
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="w" if not thin[i, j] else "0.3",
                    )
    if title:
        fig.suptitle(title)
    return _write(fig, target, fmt, dpi)


def plot_parent(
    comparison: ParentComparison,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    dpi: int = 150,
) -> Path:
    """Quantiles of each parameter among selected lenses against the threshold (solid), with
    the parent population's quantiles (dashed)."""
    target, fmt = _figure_target(path)
    params = comparison.table["parameter"].unique().tolist()
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.8 * len(params), 3.4), layout="constrained")
    axes = fig.subplots(1, len(params), squeeze=False)[0]
    for ax, prm in zip(axes, params):
        rows = comparison.table[comparison.table["parameter"] == prm]
        for j, (q, grp) in enumerate(rows.groupby("quantile")):
            ax.plot(
                grp["threshold"], grp["value"], "o-", ms=3, color=f"C{j}", label=f"selected q{q:g}"
            )
            ax.axhline(float(grp["parent"].iloc[0]), color=f"C{j}", ls="--", lw=0.9)
        unit = comparison.units.get(prm, "")
        ax.set_ylabel(f"{prm} [{unit}]" if unit else prm)
        ax.set_xlabel("score threshold t (selected: p_lens >= t)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="x-small", title="dashed: parent", title_fontsize="x-small")
    if title:
        fig.suptitle(title)
    return _write(fig, target, fmt, dpi)


# --------------------------------------------------------------------------------------------
# report hook
# --------------------------------------------------------------------------------------------


def report_section(
    functions: Mapping[str, SelectionFunction],
    out: str | os.PathLike[str],
    *,
    yields: Mapping[str, Any] | None = None,
    surfaces: Mapping[str, SelectionSurface] | None = None,
    heading: str = "Selection functions and expected yields",
) -> str:
    """An HTML fragment (figures embedded as base64 PNG, also written under ``out/figures``)
    with, per model: completeness curves, the 50% points per threshold, TPR0/TPR10, optional
    2-D surfaces, and the expected yields (``probe.Yield`` objects, keyed by model).

    Parameters
    ----------
    functions : mapping of model name -> SelectionFunction
        One selection function per model (same parameter, ideally the same test set).
    out : path
        Directory for the figures.
    yields : mapping of model name -> Yield or sequence of Yield, optional
        Expected yields to tabulate.
    surfaces : mapping of model name -> SelectionSurface, optional
        2-D surfaces to include.
    """
    import base64
    import html

    figdir = Path(out) / "figures"
    figdir.mkdir(parents=True, exist_ok=True)

    def img(path: Path, alt: str) -> str:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"

    parts = [f"<h2>{html.escape(heading)}</h2>"]
    if functions:
        names = list(functions)
        first = functions[names[0]]
        path = plot_selection(
            [functions[n] for n in names],
            figdir / f"selection_{first.parameter}.png",
            labels=names,
        )
        parts.append(img(path, f"completeness against {first.parameter}"))
        rows = []
        for n in names:
            sf = functions[n]
            pts = sf.fifty_percent_points()
            for _, r in pts.iterrows():
                ov = sf.overall[sf.overall["threshold_label"] == r["threshold_label"]].iloc[0]
                rows.append(
                    f"<tr><td>{html.escape(n)}</td><td>{html.escape(str(r['threshold_label']))}"
                    f"</td><td>{r['threshold']:.4g}</td><td>{ov['completeness']:.3f} "
                    f"[{ov['ci_low']:.3f}, {ov['ci_high']:.3f}]</td><td>{r['x50']:.3f} "
                    f"[{r['low']:.3f}, {r['high']:.3f}]</td></tr>"
                )
            for rate in ("tpr0", "tpr10"):
                try:
                    rt = getattr(sf, rate)
                    rows.append(
                        f"<tr><td>{html.escape(n)}</td><td>{rate.upper()}</td>"
                        f"<td>{rt.threshold:.4g}</td><td>{rt.value:.3f} [{rt.low:.3f}, "
                        f"{rt.high:.3f}]</td><td></td></tr>"
                    )
                except ProbeValueError:
                    pass
        parts.append(
            "<table><tr><th>model</th><th>threshold</th><th>p_lens cut</th>"
            f"<th>completeness ({first.confidence:.0%})</th>"
            f"<th>50% point of {html.escape(first.axis_label)}</th></tr>"
            + "".join(rows)
            + "</table>"
        )
    for n, surf in (surfaces or {}).items():
        path = plot_surface(surf, figdir / f"surface_{n}_{surf.x_name}_{surf.y_name}.png")
        parts.append(img(path, f"selection surface of {n}"))
    if yields:
        rows = []
        for n, ys in yields.items():
            for y in ys if isinstance(ys, list | tuple) else [ys]:
                per = "; ".join(
                    f"{html.escape(str(st['name']))}: {st['expected']:.0f} "
                    f"(completeness {st['completeness']:.3f}, n={st['n']:.0f})"
                    for st in y.strata
                )
                rows.append(
                    f"<tr><td>{html.escape(n)}</td><td>{y.threshold:.4g}</td>"
                    f"<td>{y.completeness:.4f}</td><td>{y.expected:.0f} "
                    f"[{y.low:.0f}, {y.high:.0f}]</td><td>{per}</td>"
                    f"<td>{y.area_deg2:g}</td></tr>"
                )
        parts.append(
            "<table><tr><th>model</th><th>threshold</th><th>completeness (population)</th>"
            "<th>expected lenses found [interval]</th><th>per stratum</th>"
            "<th>area deg^2</th></tr>" + "".join(rows) + "</table>"
        )
    return "\n".join(parts)
