"""The detectable fraction: a Monte Carlo estimate of the share of the population's strong lenses
that are LensPop-detectable (the :mod:`simlens.yields` docstring says how).

Randomness: block ``b`` of :data:`TRACE_BLOCK` candidates draws from
``SeedSequence(entropy, spawn_key=(b,))``; the rows kept for rendering get their noise seeds and
neighbours under ``SeedSequence(entropy, spawn_key=(KEPT_ROWS_KEY + s,))``
(:mod:`simlens.streams`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from astropy.cosmology import Cosmology, Planck18
from scipy import stats

from simlens.errors import SimlensValueError
from simlens.population import lenspop_sources as plp
from simlens.sampling import truth as sampling
from simlens.schema import empty_components, records
from simlens.streams import KEPT_DETECTABLE, KEPT_OTHERS, KEPT_ROWS_KEY
from simlens.survey import Survey, load_survey

__all__ = [
    "SUMMARY_COLUMNS",
    "TRACE_BLOCK",
    "DetectableFraction",
    "detectable_fraction",
    "free_candidates",
    "wilson_interval",
]

TRACE_BLOCK = 512  # candidates per seeded block of the Monte Carlo

SUMMARY_COLUMNS = (
    "theta_E",
    "z_lens",
    "z_source",
    "mag_lens_i",
    "mag_source_unlensed_i",
    "magnification",
    "mag_source_g",
)


@dataclass(frozen=True)
class DetectableFraction:
    """Monte Carlo fraction of the population's strong lenses that are LensPop-detectable.

    Attributes
    ----------
    n, k : int
        Lenses drawn, detectable among them.
    fraction, low, high : float
        ``k / n`` and its Wilson interval at ``confidence``.
    stderr : float
        Binomial standard error ``sqrt(f (1 - f) / n)``.
    confidence : float
        Level of ``low, high``.
    n_traced : int
        Lenses ray traced (after the cheap cuts; ``n`` for ``method="sampler"``).
    method : str
        "prefilter" or "sampler".
    detectable : pandas.DataFrame
        Truth columns (:data:`SUMMARY_COLUMNS`) of the detectable lenses.
    rows : pandas.DataFrame or None
        With ``keep_rows=True`` (method "prefilter"): complete, renderable truth tables of the
        detectable lenses, a random sample of the detectable population (``sim.render(rows)``).
    others : pandas.DataFrame or None
        Likewise, the first ``keep_others`` lenses drawn that are not detectable.
    """

    n: int
    k: int
    fraction: float
    low: float
    high: float
    stderr: float
    confidence: float
    n_traced: int
    method: str
    detectable: pd.DataFrame
    rows: pd.DataFrame | None = None
    others: pd.DataFrame | None = None

    def medians(self) -> dict[str, float]:
        """Median of each summary column over the detectable lenses."""
        return {c: float(self.detectable[c].median()) for c in self.detectable.columns}


def wilson_interval(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval of a binomial fraction ``k / n`` at level ``confidence``."""
    z = float(stats.norm.ppf(0.5 + confidence / 2.0))
    f = k / n
    den = 1.0 + z * z / n
    centre = (f + z * z / (2 * n)) / den
    half = z / den * math.sqrt(f * (1 - f) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def free_candidates(
    m: int,
    rng: np.random.Generator,
    survey: Survey,
    cosmology: Cosmology,
    psf_scale: float = 1.0,
    source_population: str | None = None,
) -> pd.DataFrame:
    """``m`` complete free-population lens systems as ``sample_lenses`` builds them (no S/N)."""
    cfg = sampling.SamplerSettings.load()
    bands = survey.band_names
    sp = plp.survey_source_population(survey) if source_population is None else source_population
    systems = sampling.draw_lens_systems(m, rng, cosmology, cfg, None, source_population=sp)
    cols = empty_components(m, bands)
    cols.update(systems)
    cols.update(sampling.knot_columns(m, rng, cfg, "sersic"))
    cols["knot_sigma_source"] = np.maximum(
        cfg["clumpy.knot_sigma"] * np.asarray(cols["R_sersic_source"]), cfg["clumpy.knot_sigma_min"]
    )
    df = sampling.with_psf_columns(pd.DataFrame(cols), survey, np.full(m, psf_scale), rng)
    df["label"] = 1
    df["kind"] = "lens"
    return df


def detectable_fraction(
    n: int,
    *,
    survey: str | Survey = "des-y3",
    cosmology: Cosmology = Planck18,
    rng: int = 0,
    npix: int = 100,
    supersampling: int = 3,
    method: str = "prefilter",
    confidence: float = 0.95,
    psf_scale: float = 1.0,
    keep_rows: bool = False,
    keep_others: int = 0,
    neighbours: bool = True,
    source_population: str | None = None,
) -> DetectableFraction:
    """Fraction of the free lens population that is LensPop-detectable, by Monte Carlo.

    Parameters
    ----------
    n : int
        Lenses to draw (> 0). The fraction is ~0.45% at DR1 depth: ``n = 40000`` gives ~180
        detectable lenses, a ~7.5% relative error.
    survey, cosmology, npix, supersampling
        As :class:`simlens.Simulator`.
    rng : int
        Seed; block ``b`` of 512 candidates uses ``SeedSequence(rng, spawn_key=(b,))``.
    method : {"prefilter", "sampler"}
        Ray trace only candidates passing the sampler's cheap necessary cuts (default), or call
        ``sample_lenses`` (no neighbours) and read its ``detectable`` column.
    confidence : float
        Level of the Wilson interval.
    psf_scale : float
        Ratio of every band's PSF FWHM to the preset's (as the sampler's control), e.g. ~1.43 for
        LensPop's DES coadd seeing (the worst of 10 exposures: 1.60/1.38/1.23" in g/r/i).
    keep_rows, keep_others : bool, int
        Also return renderable truth tables of the detectable lenses and of the first
        ``keep_others`` non-detectable ones ("prefilter" only): seeded per row for noise, with
        interloping neighbours when ``neighbours``. They are random draws from each stratum, so a
        model's completeness on them estimates its completeness on the population.
    source_population : {None, "deep-field", "lenspop"}
        Sources of the lenses (``"prefilter"`` only); ``None``: the preset's own (``"lenspop"``
        for ``lenspop-des``, :func:`simlens.population.lenspop_sources.survey_source_population`).
    """
    surv, entropy = _checked_setup(
        n, survey, rng, method, psf_scale, keep_rows, keep_others, source_population
    )
    rows: pd.DataFrame | None = None
    others: pd.DataFrame | None = None
    if method == "sampler":
        det = _sampler_detectable(n, surv, cosmology, npix, supersampling, entropy, psf_scale)
        traced = int(n)
    else:
        mc = _trace(
            n,
            surv,
            cosmology,
            npix,
            supersampling,
            entropy,
            psf_scale,
            source_population,
            keep_rows,
            keep_others,
        )
        det, traced = mc.detectable, mc.traced
        if keep_rows:
            rows = _renderable(mc.full, surv, npix, entropy, KEPT_DETECTABLE, neighbours)
        if keep_others:
            others = _renderable(mc.others, surv, npix, entropy, KEPT_OTHERS, neighbours)
    return _result(n, det, traced, confidence, method, rows, others)


def _result(
    n: int,
    det: pd.DataFrame,
    traced: int,
    confidence: float,
    method: str,
    rows: pd.DataFrame | None,
    others: pd.DataFrame | None,
) -> DetectableFraction:
    """The fraction of detectable lenses ``det`` among ``n``, with its interval and error."""
    k = len(det)
    low, high = wilson_interval(k, int(n), confidence)
    f = k / n
    return DetectableFraction(
        n=int(n),
        k=k,
        fraction=f,
        low=low,
        high=high,
        stderr=math.sqrt(f * (1.0 - f) / n),
        confidence=confidence,
        n_traced=traced,
        method=method,
        detectable=det,
        rows=rows,
        others=others,
    )


def _checked_setup(
    n: Any,
    survey: str | Survey,
    rng: int,
    method: str,
    psf_scale: Any,
    keep_rows: bool,
    keep_others: int,
    source_population: str | None,
) -> tuple[Survey, int]:
    """Check :func:`detectable_fraction`'s arguments; its survey and seed entropy."""
    if not (isinstance(psf_scale, float | int) and psf_scale > 0):
        raise SimlensValueError(f"psf_scale must be > 0, got {psf_scale!r}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n <= 0:
        raise SimlensValueError(f"n must be a positive integer, got {n!r}")
    if method not in ("prefilter", "sampler"):
        raise SimlensValueError(f"method must be 'prefilter' or 'sampler', got {method!r}")
    surv = load_survey(survey)
    if source_population is not None:
        plp.check_source_population(source_population)
        if method != "prefilter":
            raise SimlensValueError("source_population needs method='prefilter'")
    entropy = sampling.resolve_entropy(rng)
    if (keep_rows or keep_others) and method != "prefilter":
        raise SimlensValueError("keep_rows/keep_others need method='prefilter'")
    return surv, entropy


def _sampler_detectable(
    n: int,
    survey: Survey,
    cosmology: Cosmology,
    npix: int,
    supersampling: int,
    entropy: int,
    psf_scale: float,
) -> pd.DataFrame:
    """``method="sampler"``: the summary columns of the detectable rows of ``sample_lenses``."""
    df = sampling.sample_lenses(
        int(n),
        survey=survey,
        cosmology=cosmology,
        npix=npix,
        rng=entropy,
        supersampling=supersampling,
        psf_scale=float(psf_scale),
        neighbours=False,
    )
    return df.loc[df["detectable"].astype(bool), list(SUMMARY_COLUMNS)].reset_index(drop=True)


@dataclass
class _Traced:
    """What the prefilter Monte Carlo found: detectable summaries, rows kept, lenses traced."""

    detectable: pd.DataFrame
    traced: int
    full: list[dict[str, Any]]
    others: list[dict[str, Any]]


def _trace(
    n: int,
    survey: Survey,
    cosmology: Cosmology,
    npix: int,
    supersampling: int,
    entropy: int,
    psf_scale: float,
    source_population: str | None,
    keep_rows: bool,
    keep_others: int,
) -> _Traced:
    """``method="prefilter"``: draw ``n`` candidates in seeded blocks and ray trace those that
    pass the sampler's cheap cuts; keep the detectable ones (and the first ``keep_others``
    others)."""
    cfg = sampling.SamplerSettings.load()
    cols = list(SUMMARY_COLUMNS)
    found: list[dict[str, Any]] = []
    full: list[dict[str, Any]] = []
    other: list[dict[str, Any]] = []
    traced = 0
    for b in range(math.ceil(n / TRACE_BLOCK)):
        m = min(TRACE_BLOCK, n - b * TRACE_BLOCK)
        brng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(b,)))
        cand = free_candidates(
            TRACE_BLOCK, brng, survey, cosmology, float(psf_scale), source_population
        ).iloc[:m]
        maybe = sampling.may_be_detectable(cand, survey)
        for j, row in enumerate(records(cand)):
            if maybe[j]:
                traced += 1
                grid = sampling.row_grid(row, survey, npix, supersampling)
                row.update(sampling.lensing_truth(row, survey, npix, cfg, grid=grid))
            for band in survey.band_names:
                row[f"mag_source_{band}"] = row[f"mag_source_unlensed_{band}"] - 2.5 * math.log10(
                    row["magnification"]
                )
            if maybe[j] and row["detectable"]:
                found.append({c: row[c] for c in cols})
                if keep_rows:
                    full.append(row)
            elif len(other) < keep_others:
                other.append(row)
    return _Traced(pd.DataFrame(found, columns=cols), traced, full, other)


def _renderable(
    rows: list[dict[str, Any]], survey: Survey, npix: int, entropy: int, stream: int, nb: bool
) -> pd.DataFrame:
    """Truth rows as ``sample_lenses`` returns them: per-row noise seeds, neighbours, order."""
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    # noise seeds from a stream of their own (spawn key (i, 1) under a derived entropy)
    key = (KEPT_ROWS_KEY + stream,)
    sub = int(np.random.SeedSequence(entropy, spawn_key=key).generate_state(1)[0])
    df["seed"] = sampling.row_seeds(sub, 0, len(df))
    return sampling.order_columns(sampling.with_neighbours(df, nb, survey, npix, sub, 0, 0))
