"""Completeness-curve fits and 50% points of selection functions.

:func:`fit_completeness` fits, to per-lens outcomes (found or not at one score threshold), the
curve ``C(x) = A F(u0 + b (x - x50))`` with ``F`` the logistic or normal CDF,
``u0 = F^-1(1/(2A))`` (so ``C(x50) = 1/2`` exactly), plateau ``1/2 < A <= 1`` (or ``A = 1``) and
slope ``b`` of either sign, by maximum (unbinned, binomial) likelihood; the 50% point's interval
is by profile likelihood (``2 Delta lnL <= chi2_1(c)``) or by parametric bootstrap (seeded;
percentiles of refits to data redrawn from the fitted curve). :class:`CurveFit` holds the result.
:meth:`probe.SelectionFunction.fit` calls it per threshold.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from probe import rng as _rng
from probe.errors import ProbeValueError
from probe.statistics import check_confidence

__all__ = ["CurveFit", "CurveModel", "fit_completeness"]

CurveModel = Literal["logistic", "erf"]


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


def _outcomes(
    values: Any, found: Any, model: CurveModel, method: str
) -> tuple[np.ndarray, np.ndarray]:
    """The checked lens values (float64) and outcomes (bool) of :func:`fit_completeness`."""
    x = np.asarray(values, dtype=np.float64).ravel()
    y = np.asarray(found, dtype=bool).ravel()
    if x.size != y.size:
        raise ProbeValueError(f"values has {x.size} entries, found has {y.size}")
    if x.size < 10 or not np.all(np.isfinite(x)):
        raise ProbeValueError("a completeness fit needs at least 10 lenses with finite values")
    _cdf(model)
    if method not in ("profile", "bootstrap"):
        raise ProbeValueError(f"method must be 'profile' or 'bootstrap'; got {method!r}")
    return x, y


def _standardised(x: np.ndarray) -> tuple[float, float, np.ndarray, tuple[float, float]]:
    """``(mu, sd, t, t_bounds)``: the values' mean and standard deviation (1 when constant),
    ``t = (x - mu) / sd``, and the search range of ``t50`` (the data's range widened by its span
    on each side)."""
    mu, sd = float(x.mean()), float(x.std()) or 1.0
    t = (x - mu) / sd
    span = float(np.ptp(t)) or 1.0
    return mu, sd, t, (float(t.min()) - span, float(t.max()) + span)


def _no_fifty_percent_point(
    threshold: float, model: CurveModel, method: str, n: int, confidence: float
) -> CurveFit:
    """The fit of outcomes that never cross 1/2: every number NaN."""
    nan = math.nan
    return CurveFit(threshold, nan, nan, nan, nan, nan, model, method, n, nan, False, confidence)


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
    c = check_confidence(confidence)
    x, y = _outcomes(values, found, model, method)
    mu, sd, t, t_bounds = _standardised(x)
    lik = _Likelihood(t, y, model)
    nan_fit = _no_fifty_percent_point(threshold, model, method, int(x.size), c)
    if y.all() or not y.any():
        return nan_fit  # a constant outcome has no 50% point
    nll0, (t50, b, a) = _fit(lik, plateau, t_bounds)
    if plateau and a <= _A_MIN + 1e-6:
        return nan_fit  # the curve never reaches 1/2
    lo_t = hi_t = math.nan
    if method == "profile":
        lo_t, hi_t = _profile_interval(lik, plateau, t_bounds, nll0, (t50, b, a), c)
    else:
        lo_t, hi_t = _bootstrap_interval(
            t, model, plateau, t_bounds, (t50, b, a), c, n_boot, rng,
            curve=CurveFit(threshold, t50, 0, 0, b, a, model, method, int(x.size), -nll0, False, c),
        )  # fmt: skip
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


def _profile_interval(
    lik: _Likelihood,
    plateau: bool,
    t_bounds: tuple[float, float],
    nll0: float,
    best: tuple[float, float, float],
    c: float,
) -> tuple[float, float]:
    """Profile-likelihood interval of the standardised 50% point at confidence ``c``: where
    twice the log-likelihood drop crosses the chi-square(1) quantile, searched outwards from
    the best fit ``best`` = (t50, b, a); an edge of ``t_bounds`` not crossed gives +/-inf."""
    from scipy.optimize import brentq
    from scipy.stats import chi2

    t50, b, a = best
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
                try:
                    found_bound = brentq(excess, min(prev, cand), max(prev, cand), xtol=1e-3)
                except ValueError:
                    # the profile at ``prev`` re-fitted from another start came out above
                    # the cut too (a flat, noisy likelihood): the bound lies in [prev,
                    # cand]; its outer end keeps the interval conservative (wider)
                    found_bound = cand
                break
            if cand == edge:
                break
            prev, step = cand, step * 2.0
        bounds_t.append(found_bound)
    lo_t, hi_t = bounds_t
    return lo_t, hi_t


def _bootstrap_interval(
    t: np.ndarray,
    model: str,
    plateau: bool,
    t_bounds: tuple[float, float],
    best: tuple[float, float, float],
    c: float,
    n_boot: int,
    rng: _rng.RngLike,
    *,
    curve: CurveFit,
) -> tuple[float, float]:
    """Parametric-bootstrap interval of the standardised 50% point: outcomes redrawn from the
    fitted ``curve``, refitted; NaN unless at least 10 replicates have a 50% point."""
    t50, b, a = best
    gen = _rng.child(_rng.root_entropy(rng), _rng.BOOTSTRAP, 7)
    fitted = curve.curve(t)
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
        return float(lo_t), float(hi_t)
    return math.nan, math.nan
