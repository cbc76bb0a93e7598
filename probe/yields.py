"""Expected number of lenses a search finds: sky density x area x population-averaged completeness.

probe knows nothing about lens populations: the caller brings, for each *stratum* of the
population (e.g. LensPop-detectable lenses, and the rest), its sky density (per deg^2, with a
standard error) and the model's scores on lenses drawn at random from that stratum. Then::

    N = A sum_h rho_h C_h,      C_h = k_h / n_h  (lenses of stratum h with p >= t)

is the expected number of lenses found over area ``A`` (deg^2). Its interval combines, by Monte
Carlo (seeded, ``n_draws``), the Monte Carlo error of each ``C_h`` (Jeffreys posterior
``Beta(k_h + 1/2, n_h - k_h + 1/2)``) and of each density (normal, truncated at 0); draws are
independent between strata. ``poisson_sd = sqrt(N)`` is the scatter of the number a real sky
would hold around the expectation (not included in the interval). Weighted samples (importance
sampling) are accepted per stratum: ``C_h = sum w found / sum w`` and the Beta posterior uses the
Kish effective size ``n_eff = (sum w)^2 / sum w^2``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from probe import rng as _rng
from probe.errors import ProbeValueError

__all__ = ["Stratum", "Yield", "expected_yield"]


@dataclass(frozen=True)
class Stratum:
    """A part of the lens population: its sky density and the model's scores on a sample of it.

    Parameters
    ----------
    name : str
        E.g. ``"detectable"``.
    density : float
        Lenses per deg^2, >= 0.
    density_err : float
        Standard error of ``density``, deg^-2.
    p_lens : array_like
        Model p(lens) of lenses drawn at random from the stratum.
    weights : array_like, optional
        Importance weights of those lenses (default equal).
    """

    name: str
    density: float
    density_err: float
    p_lens: Any
    weights: Any = None

    def __post_init__(self) -> None:
        p = np.asarray(self.p_lens, dtype=np.float64).ravel()
        if p.size == 0 or not np.all(np.isfinite(p)):
            raise ProbeValueError(f"stratum {self.name!r}: p_lens must be non-empty and finite")
        if not (self.density >= 0 and self.density_err >= 0):
            raise ProbeValueError(f"stratum {self.name!r}: density and density_err must be >= 0")
        object.__setattr__(self, "p_lens", p)
        if self.weights is not None:
            w = np.asarray(self.weights, dtype=np.float64).ravel()
            if w.size != p.size or np.any(w < 0) or not np.all(np.isfinite(w)) or w.sum() <= 0:
                raise ProbeValueError(f"stratum {self.name!r}: weights must be >= 0, one per lens")
            object.__setattr__(self, "weights", w)

    def completeness(self, threshold: float) -> tuple[float, float, float]:
        """``(C, k_eff, n_eff)`` at ``threshold``."""
        found = self.p_lens >= threshold
        if self.weights is None:
            n = float(self.p_lens.size)
            k = float(found.sum())
            return k / n, k, n
        w = self.weights
        c = float(np.sum(w * found) / np.sum(w))
        n_eff = float(w.sum() ** 2 / np.sum(w * w))
        return c, c * n_eff, n_eff


@dataclass(frozen=True)
class Yield:
    """Expected number of lenses found (see the module docstring for the formulas).

    Attributes
    ----------
    threshold : float
        Score threshold (found: ``p_lens >= threshold``).
    expected, low, high : float
        ``N`` and its interval at ``confidence`` (Monte Carlo and density errors).
    sd : float
        Standard deviation of the Monte Carlo draws of ``N``.
    poisson_sd : float
        ``sqrt(N)``: the sky's own scatter around the expectation (not in the interval).
    completeness : float
        ``sum rho_h C_h / sum rho_h``: completeness averaged over the population.
    density : float
        ``sum rho_h``, deg^-2.
    area_deg2 : float
        Survey area.
    strata : list of dict
        Per stratum: name, density, density_err, completeness, k, n, expected.
    """

    threshold: float
    expected: float
    low: float
    high: float
    sd: float
    poisson_sd: float
    completeness: float
    density: float
    area_deg2: float
    confidence: float
    strata: list[dict[str, Any]] = field(default_factory=list)
    method: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dict(self.__dict__)

    def __str__(self) -> str:
        return (
            f"expected {self.expected:.0f} lenses found [{self.low:.0f}, {self.high:.0f}] "
            f"({self.confidence:.0%}) at p >= {self.threshold:g} over {self.area_deg2:g} deg^2 "
            f"(population completeness {self.completeness:.4f}, density {self.density:.4g} "
            f"deg^-2; Poisson sd {self.poisson_sd:.0f})"
        )


def expected_yield(
    strata: Sequence[Stratum],
    area_deg2: float,
    threshold: float,
    *,
    confidence: float = 0.95,
    n_draws: int = 20000,
    rng: _rng.RngLike = 0,
) -> Yield:
    """Expected number of lenses a model finds at ``threshold`` over ``area_deg2``.

    Parameters
    ----------
    strata : sequence of Stratum
        The population's parts (their densities add up to the population's).
    area_deg2 : float
        Survey area, deg^2 (DES: 5000).
    threshold : float
        Found: ``p_lens >= threshold``.
    confidence : float
        Interval level.
    n_draws : int
        Monte Carlo draws of ``N`` for the interval.
    rng : Generator, int or None
        Seed of those draws.
    """
    if not strata:
        raise ProbeValueError("strata is empty")
    a = float(area_deg2)
    if not (math.isfinite(a) and a > 0):
        raise ProbeValueError(f"area_deg2 must be > 0; got {area_deg2!r}")
    c = float(confidence)
    if not 0 < c < 1:
        raise ProbeValueError(f"confidence must be in (0, 1); got {confidence!r}")
    gen = _rng.child(_rng.root_entropy(rng), _rng.BOOTSTRAP, 11)
    total = np.zeros(int(n_draws))
    rows: list[dict[str, Any]] = []
    expected, dens, found_density = 0.0, 0.0, 0.0
    for s in strata:
        comp, k, n = s.completeness(float(threshold))
        e = a * s.density * comp
        expected += e
        dens += s.density
        found_density += s.density * comp
        cdraw = gen.beta(k + 0.5, n - k + 0.5, size=total.size)
        rdraw = s.density + s.density_err * gen.standard_normal(total.size)
        total += a * np.clip(rdraw, 0.0, None) * cdraw
        rows.append(
            {
                "name": s.name,
                "density": s.density,
                "density_err": s.density_err,
                "completeness": comp,
                "k": k,
                "n": n,
                "expected": e,
            }
        )
    lo, hi = np.quantile(total, [(1 - c) / 2, (1 + c) / 2])
    return Yield(
        threshold=float(threshold),
        expected=expected,
        low=float(lo),
        high=float(hi),
        sd=float(total.std()),
        poisson_sd=math.sqrt(expected),
        completeness=found_density / dens if dens else 0.0,
        density=dens,
        area_deg2=a,
        confidence=c,
        strata=rows,
        method=(
            "N = A sum_h rho_h k_h/n_h; interval: percentiles of A sum_h rho_h* C_h* with "
            "C_h* ~ Beta(k_h + 1/2, n_h - k_h + 1/2), rho_h* ~ N(rho_h, err_h) clipped at 0"
        ),
    )
