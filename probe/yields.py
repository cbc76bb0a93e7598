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

import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from probe import rng as _rng
from probe.adapters.simulators import DEFAULT_POPULATION, DEFAULT_SIMULATOR
from probe.adapters.specs import load_callable
from probe.errors import ProbeValueError

__all__ = ["QUESTIONS", "Stratum", "SurveyYields", "Yield", "expected_yield", "survey_yields"]

#: The three numbers a yield report gives, each with the question it answers.
QUESTIONS: dict[str, str] = {
    "detectable": (
        "detectable lenses: strong lenses that pass LensPop's four criteria (Collett 2015 and "
        "its released code: best-band source S/N > 20 with the lens light in the noise, "
        "magnification > 3, mu r_s > seeing FWHM, 2 theta_E^2 >= 4 r_s^2 + FWHM^2); no finder"
    ),
    "detectable_found": (
        "detectable lenses found at threshold p: detectable lenses the model scores p >= t "
        "(sky density of the detectable stratum x area x the model's completeness on it)"
    ),
    "all_flagged": (
        "all strong lenses flagged at threshold p: strong lenses of the whole population "
        "(source centre inside theta_E), detectable or not, the model scores p >= t"
    ),
}


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


@dataclass
class SurveyYields:
    """Expected yields of several models over one simulated survey population.

    Attributes
    ----------
    sky : Any
        ``simlens.yields.SkyDensity``: strong and LensPop-detectable lens densities, the survey
        footprint and LensPop's own prediction.
    yields : dict of str to list of Yield
        Per model, one :class:`Yield` per threshold: all strong lenses flagged
        (``QUESTIONS["all_flagged"]``; both strata).
    n_detectable, n_other : int
        Lenses scored in each stratum (the same images for every model).
    detectable_found : dict of str to list of Yield
        Per model and threshold, detectable lenses found (``QUESTIONS["detectable_found"]``;
        the detectable stratum only).
    detectable_rows : pandas.DataFrame or None
        Truth table of the detectable lenses scored (selection functions are drawn from it:
        :func:`probe.studies.population.population_selection`).
    detectable_scores : dict of str to ndarray
        Per model, p(lens) of those lenses, in row order.
    """

    sky: Any
    yields: dict[str, list[Yield]]
    n_detectable: int
    n_other: int
    detectable_found: dict[str, list[Yield]] = field(default_factory=dict)
    detectable_rows: Any = None
    detectable_scores: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary; ``questions`` defines each number."""
        return {
            "questions": dict(QUESTIONS),
            "sky": self.sky.as_dict(),
            "n_detectable_scored": self.n_detectable,
            "n_other_scored": self.n_other,
            "yields": {m: [y.as_dict() for y in ys] for m, ys in self.yields.items()},
            "detectable_found": {
                m: [y.as_dict() for y in ys] for m, ys in self.detectable_found.items()
            },
        }


def survey_yields(
    models: Mapping[str, Callable[[np.ndarray], Any]],
    thresholds: Sequence[float],
    *,
    survey: str = "des-y3",
    area: float | None = None,
    n_density: int = 40000,
    n_other: int = 500,
    n: int = 0,
    rng: int = 0,
    npix: int | None = None,
    simulator: str = DEFAULT_SIMULATOR,
    population: str = DEFAULT_POPULATION,
) -> SurveyYields:
    """Expected lenses each model finds over a survey, from simlens's lens population.

    Draws ``n_density`` strong lenses of the population (simlens), keeps the LensPop-detectable
    ones and the first ``n_other`` others, renders them once at ``survey`` and scores them with
    every model; two strata ("detectable", "not detectable") weighted by their sky densities
    give :func:`expected_yield` at each threshold.

    Parameters
    ----------
    models : mapping of name -> callable
        ``predict(images) -> p(lens)`` per model (e.g. ``probe.Probe(m).predict``).
    thresholds : sequence of float
        Score thresholds.
    survey : str
        simlens survey preset (DES: "des-y3", 5000 deg^2 footprint).
    area : float, optional
        Search area, deg^2 (default: the preset's footprint).
    n_density : int
        Population draws for the detectable fraction (about 0.4% are detectable at DR1 depth).
    n_other : int
        Non-detectable lenses scored.
    n : int
        Score at most this many detectable lenses (0: all).
    rng : int
        Seed of the population draws and of the yield intervals.
    npix : int, optional
        Stamp size, pixels (simulator default if unset).
    simulator : str
        ``"module:callable"`` building the simulator from ``survey=`` (and ``npix=``).
    population : str
        Module with ``detectable_fraction`` and ``sky_density`` (as :mod:`simlens.yields`).
    """
    if not models:
        raise ProbeValueError("models is empty; give at least one name -> predict callable")
    make_sim, yields_module = _load_population(simulator, population)
    sim = make_sim(survey=survey) if npix is None else make_sim(survey=survey, npix=npix)
    frac = _draw_population(sim, yields_module, n_density, n_other, rng)
    sky = yields_module.sky_density(sim.survey, cosmology=sim.cosmology, area=area, fraction=frac)
    det = frac.rows.iloc[:n] if n else frac.rows
    x_det = sim.render(det)
    others = frac.others if frac.others is not None else det.iloc[:0]
    x_other = sim.render(others) if len(others) else None
    out: dict[str, list[Yield]] = {}
    found: dict[str, list[Yield]] = {}
    scores: dict[str, Any] = {}
    for name, predict in models.items():
        scores[name] = np.asarray(predict(x_det), dtype=np.float64).reshape(-1)
        strata = _strata(sky, scores[name], predict, x_other)
        out[name] = [expected_yield(strata, sky.area_deg2, t, rng=rng) for t in thresholds]
        found[name] = [expected_yield(strata[:1], sky.area_deg2, t, rng=rng) for t in thresholds]
    return SurveyYields(sky, out, len(det), len(others), found, det.reset_index(drop=True), scores)


def _load_population(simulator: str, population: str) -> tuple[Callable[..., Any], Any]:
    """The simulator factory ``simulator`` and the population module ``population``.

    probe stays simulator-agnostic: both are named, not imported, here (simlens by default).
    """
    try:
        make_sim = load_callable(simulator, default_attr="Simulator")
        yields_module = importlib.import_module(population)
    except (ImportError, AttributeError) as err:
        raise ProbeValueError(
            f"survey_yields needs simulator {simulator!r} and population {population!r}: {err}"
        ) from err
    return make_sim, yields_module


def _draw_population(sim: Any, yields_module: Any, n_density: int, n_other: int, rng: int) -> Any:
    """``yields_module.detectable_fraction`` of ``n_density`` draws at ``sim``'s survey,
    keeping the detectable lenses' rows and ``n_other`` others; refuses a draw with no
    detectable lens."""
    frac = yields_module.detectable_fraction(
        int(n_density),
        survey=sim.survey,
        cosmology=sim.cosmology,
        rng=rng,
        npix=sim.npix,
        keep_rows=True,
        keep_others=int(n_other),
        neighbours=sim.neighbours,
    )
    if frac.rows is None or not len(frac.rows):
        raise ProbeValueError(
            f"no detectable lens among n_density={n_density} draws; raise n_density"
        )
    return frac


def _strata(
    sky: Any,
    detectable_scores: np.ndarray,
    predict: Callable[[np.ndarray], Any],
    x_other: np.ndarray | None,
) -> list[Stratum]:
    """The strata of one model: "detectable" (scores ``detectable_scores``) and, when others
    were rendered (``x_other``), "not detectable" (scored here with ``predict``), each weighted
    by its sky density from ``sky``."""
    strata = [
        Stratum("detectable", sky.detectable_per_deg2, sky.detectable_stderr, detectable_scores)
    ]
    if x_other is not None:
        strata.append(
            Stratum(
                "not detectable",
                sky.strong_per_deg2 - sky.detectable_per_deg2,
                sky.detectable_stderr,
                np.asarray(predict(x_other)).reshape(-1),
            )
        )
    return strata
