"""Sky density of strong lenses for the simlens population, and the LensPop-detectable subset.

The population is the one :func:`simlens.sampling.truth.sample_lenses` draws
(``docs/population.md``):
deflectors from the Choi et al. (2007) velocity dispersion function on ``[100, sigma_v_max]``
km/s at ``0 < z_l <= z_max`` (non-evolving comoving density), sources from faint-galaxy counts
``dN/dm ~ 10**(0.33 i)`` on ``22 <= i <= 27`` with ``p(z_s | i)`` on ``[0, 6]``, and a system is a
strong lens when the source centre falls inside the Einstein radius (the SIS cross-section
``pi theta_E**2``) of a deflector in front of it (``z_s > z_l + 1e-3``, as the sampler).

Sky density (lenses per steradian), with ``theta_E = 4 pi (sigma/c)**2 D_ls/D_s``::

    Sigma = int di n_s(i) int dz_s p(z_s | i) tau(z_s)
    tau(z_s) = int_0^{min(z_s - 1e-3, z_max)} dz_l dV_c/dz_l/dOmega
               int dsigma h**3 dn/dsigma  pi theta_E**2
             = 16 pi**3 M4 int dz_l dV_c/dz_l/dOmega (D_ls/D_s)**2,
    M4 = h**3 int_100^400 dn/dsigma (sigma/c)**4 dsigma   (Mpc^-3),

``n_s(i)`` the source counts per magnitude per steradian (normalisation in
``catalogs/yields.toml``), ``tau`` the SIS optical depth (for a flat cosmology and
``z_s <= z_max``, ``tau = 16 pi**3 M4 D_C(z_s)**3 / 30``, Turner, Ostriker & Gott 1984). Both
integrals are done on grids (Simpson's rule); the sampler's joint distribution of
``(sigma, z_l, z_s, i)`` is this integrand normalised, so the density of any subset (e.g. the
LensPop-detectable lenses) is ``Sigma`` times its fraction among sampled lenses.

The detectable fraction is a Monte Carlo estimate with the simulator's own ``detectable``
column (:func:`simlens.sampling.truth.lensing_truth`: LensPop's four criteria,
:mod:`simlens.population.detectability`).
``method="prefilter"`` draws complete systems exactly as the free sampler does and ray
traces only those passing the sampler's cheap necessary conditions
(``sampling.may_be_detectable``, tested to reject no detectable system), which is ~10x faster
and unbiased; ``method="sampler"`` calls ``sample_lenses`` and reads its column.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from astropy.cosmology import Cosmology, Planck18
from numpy.typing import NDArray
from scipy import integrate, special, stats

from simlens._catalogs import load_toml
from simlens.errors import SimlensValueError
from simlens.population import lenspop_sources as plp
from simlens.population import relations as pop
from simlens.sampling import truth as sampling
from simlens.schema import empty_components, records
from simlens.survey import Survey, load_survey

__all__ = [
    "DetectableFraction",
    "LensDensity",
    "SkyDensity",
    "detectable_fraction",
    "lens_density",
    "lenspop_des_prediction",
    "optical_depth",
    "sky_density",
    "source_counts",
    "survey_area",
]

F64 = NDArray[np.float64]

SR_PER_DEG2 = (math.pi / 180.0) ** 2
ARCMIN2_PER_DEG2 = 3600.0
_BEHIND = 1e-3  # the sampler's "z_s > z_l + 1e-3"
_TRACE_BLOCK = 512  # candidates per seeded block of the Monte Carlo


def _entry(section: str, key: str) -> float:
    table = load_toml("yields.toml")
    try:
        e = table[section][key]
        return float(e["value"])
    except (KeyError, TypeError, ValueError):
        raise SimlensValueError(f"catalogs/yields.toml: [{section}] {key} is missing") from None


def survey_area(survey: str | Survey) -> float:
    """Footprint of a lens search on a survey preset, deg^2 (``catalogs/yields.toml``)."""
    name = survey.name if isinstance(survey, Survey) else str(survey)
    table = load_toml("yields.toml")["survey_area"]
    if name not in table:
        raise SimlensValueError(
            f"survey {name!r} has no area in catalogs/yields.toml [survey_area]; known: "
            f"{sorted(table)}; pass area= explicitly"
        )
    return float(table[name]["value"])


def lenspop_des_prediction() -> float:
    """LensPop's predicted number of detectable DES lenses (Collett 2015, optimal coadd): 2400."""
    return _entry("lenspop", "des_detectable")


# -------------------------------------------------------------------------------------------
# the density integral
# -------------------------------------------------------------------------------------------


def source_counts(mag_min: float = 22.0, mag_max: float = 27.0) -> float:
    """Number of sources per steradian with ``mag_min <= i <= mag_max`` (unlensed, AB).

    ``N(< i) = n_ref 10**(s (i - m_ref))`` with the population's slope ``s`` (0.33 dex/mag) and
    ``n_ref`` galaxies per arcmin^2 at ``m_ref`` (``catalogs/yields.toml``).
    """
    if not mag_min < mag_max:
        raise SimlensValueError(f"need mag_min < mag_max; got {mag_min}, {mag_max}")
    s = pop.population_parameters().source_count_slope
    n_ref, m_ref = _entry("source_counts", "n_ref"), _entry("source_counts", "m_ref")
    per_arcmin2 = n_ref * (10.0 ** (s * (mag_max - m_ref)) - 10.0 ** (s * (mag_min - m_ref)))
    return per_arcmin2 * ARCMIN2_PER_DEG2 / SR_PER_DEG2


def _sigma_moment(sigma_min: float, sigma_max: float, h: float) -> float:
    """``M4 = h**3 int dn/dsigma (sigma/c)**4 dsigma`` in Mpc^-3."""

    def f(s: float) -> float:
        return float(pop.vdf_dn_dsigma(s)) * (s / pop.SPEED_OF_LIGHT_KM_S) ** 4

    val, _ = integrate.quad(f, sigma_min, sigma_max, epsabs=0.0, epsrel=1e-10, limit=200)
    return h**3 * val


def optical_depth(
    z_source: Any,
    cosmology: Cosmology = Planck18,
    *,
    sigma_min: float = 100.0,
    sigma_max: float | None = None,
    z_lens_max: float | None = None,
    n_grid: int = 801,
) -> F64:
    """SIS strong-lensing optical depth of the deflector population for sources at ``z_source``.

    ``tau(z_s) = 16 pi**3 M4 int_0^{min(z_s - 1e-3, z_max)} dV_c/dz/dOmega (D_ls/D_s)**2 dz_l``:
    the probability that a source at ``z_s`` lies inside some deflector's Einstein radius
    (fraction of the sky, for tau << 1). Defaults are the sampler's (``sigma_v_max``,
    ``lens.z_max`` of ``catalogs/simulation.toml``).

    Parameters
    ----------
    z_source : array_like
        Source redshifts, in [0, 10].
    cosmology : astropy Cosmology
        Distances and the Hubble constant (``h**3`` of the VDF normalisation).
    sigma_min, sigma_max : float
        Velocity dispersion range, km/s.
    z_lens_max : float
        Largest deflector redshift.
    n_grid : int
        Points of the Simpson grid in z_l per source redshift.

    Returns
    -------
    ndarray
        tau, dimensionless, shape of ``z_source``.
    """
    cfg = sampling.SamplerSettings.load()
    smax = cfg["lens.sigma_v_max"] if sigma_max is None else float(sigma_max)
    zmax = cfg["lens.z_max"] if z_lens_max is None else float(z_lens_max)
    zs = np.atleast_1d(np.asarray(z_source, dtype=np.float64))
    h = float(cosmology.H0.to_value("km / (Mpc s)")) / 100.0
    m4 = _sigma_moment(sigma_min, smax, h)
    table = pop.distances(cosmology)
    upper = np.clip(np.minimum(zs - _BEHIND, zmax), 0.0, None)
    u = np.linspace(0.0, 1.0, n_grid)
    zl = upper[:, None] * u[None, :]
    zl_safe = np.maximum(zl, 1e-9)
    zs_b = np.broadcast_to(zs[:, None], zl.shape)
    ratio = table.angular_diameter_distance_z1z2(zl_safe, zs_b) / table.angular_diameter_distance(
        np.maximum(zs_b, 1e-9)
    )
    integrand = table.differential_comoving_volume(zl) * ratio**2
    g = integrate.simpson(integrand, x=u, axis=1) * upper
    tau = 16.0 * math.pi**3 * m4 * g
    out: F64 = tau.reshape(np.shape(z_source)) if np.ndim(z_source) else tau
    return out


@dataclass(frozen=True)
class LensDensity:
    """Sky density of strong lenses of the population model (see the module docstring).

    Attributes
    ----------
    per_deg2, per_sr : float
        Strong lenses (source centre inside theta_E) per deg^2 and per steradian.
    sources_per_deg2 : float
        Sources with ``mag_min <= i <= mag_max`` per deg^2.
    mean_optical_depth : float
        ``per_sr / sources per sr``: the fraction of those sources that are strongly lensed.
    settings : dict
        Ranges, cosmology and grid sizes used.
    """

    per_deg2: float
    per_sr: float
    sources_per_deg2: float
    mean_optical_depth: float
    settings: dict[str, Any] = field(default_factory=dict)


def lens_density(
    cosmology: Cosmology = Planck18,
    *,
    mag_min: float | None = None,
    mag_max: float | None = None,
    source_population: str = plp.DEEP_FIELD,
    z_source_max: float = 6.0,
    sigma_min: float = 100.0,
    sigma_max: float | None = None,
    z_lens_max: float | None = None,
    n_mag: int = 501,
    n_z: int = 1201,
) -> LensDensity:
    """Strong lenses per deg^2: ``Sigma = int di n_s(i) int dz_s p(z_s | i) tau(z_s)``.

    ``p(z_s | i) = z**2 exp(-z/z0(i)) / (2 z0**3)`` truncated to ``[0, z_source_max]`` and
    renormalised, as :func:`simlens.population.relations.sample_sources`; ``tau`` from
    :func:`optical_depth`. Defaults are the sampler's ranges, so the result is the density of the
    population that ``sample_lenses`` draws from: ``22 <= i <= 27`` for the deep-field sources.

    ``source_population="lenspop"``: LensPop's sources (:mod:`simlens.population.lenspop_sources`),
    ``Sigma = n_s <tau(z_s)>`` with ``n_s`` = 0.06 arcsec^-2 and the mean over the rows of its
    catalogue, every magnitude unless ``mag_min``/``mag_max`` select some (``n_s`` then scales
    with the share of rows kept); ``z_source_max`` and ``n_mag`` do not apply.
    """
    plp.check_source_population(source_population)
    if source_population == plp.LENSPOP:
        return _lenspop_density(cosmology, mag_min, mag_max, sigma_min, sigma_max, z_lens_max, n_z)
    mag_min = 22.0 if mag_min is None else float(mag_min)
    mag_max = 27.0 if mag_max is None else float(mag_max)
    p = pop.population_parameters()
    mags = np.linspace(mag_min, mag_max, n_mag)
    z = np.linspace(0.0, z_source_max, n_z)
    tau = optical_depth(
        z, cosmology, sigma_min=sigma_min, sigma_max=sigma_max, z_lens_max=z_lens_max
    )
    z0 = p.source_z0_slope * mags + p.source_z0_intercept
    k = p.source_gamma_shape
    # gamma(k, scale z0) density truncated to [0, z_source_max]
    pdf = stats.gamma.pdf(z[None, :], k, scale=z0[:, None])
    pdf /= special.gammainc(k, z_source_max / z0)[:, None]
    mean_tau = integrate.simpson(pdf * tau[None, :], x=z, axis=1)
    a = p.source_count_slope * math.log(10.0)
    weights = np.exp(a * (mags - mag_max))  # dN/dm shape; normalised below
    mean_tau_all = float(integrate.simpson(weights * mean_tau, x=mags)) / float(
        integrate.simpson(weights, x=mags)
    )
    n_src = source_counts(mag_min, mag_max)
    per_sr = n_src * mean_tau_all
    return LensDensity(
        per_deg2=per_sr * SR_PER_DEG2,
        per_sr=per_sr,
        sources_per_deg2=n_src * SR_PER_DEG2,
        mean_optical_depth=mean_tau_all,
        settings={
            "cosmology": repr(cosmology),
            "source_population": source_population,
            "mag_i": [mag_min, mag_max],
            "z_source_max": z_source_max,
            "sigma_v": [sigma_min, sigma_max],
            "z_lens_max": z_lens_max,
            "grid": {"mag": n_mag, "z_source": n_z},
        },
    )


def _lenspop_density(
    cosmology: Cosmology,
    mag_min: float | None,
    mag_max: float | None,
    sigma_min: float,
    sigma_max: float | None,
    z_lens_max: float | None,
    n_z: int,
) -> LensDensity:
    """:func:`lens_density` for LensPop's catalogue sources."""
    cat = plp.lenspop_source_catalogue()
    i = cat["mag_i"].to_numpy(dtype=float)
    zs = cat["z_source"].to_numpy(dtype=float)
    lo = -np.inf if mag_min is None else float(mag_min)
    hi = np.inf if mag_max is None else float(mag_max)
    if not lo < hi:
        raise SimlensValueError(f"need mag_min < mag_max; got {mag_min}, {mag_max}")
    sel = (i >= lo) & (i <= hi)
    if not sel.any():
        raise SimlensValueError(f"no LensPop catalogue source has {mag_min} <= i <= {mag_max}")
    # tau is smooth in z_s: a fine grid and linear interpolation (< 1e-4 relative)
    z = np.linspace(0.0, float(zs.max()), n_z)
    tau = optical_depth(
        z, cosmology, sigma_min=sigma_min, sigma_max=sigma_max, z_lens_max=z_lens_max
    )
    # the sum over all rows, divided by all rows: the density of the kept ones
    mean_tau_all = float(np.interp(zs[sel], z, tau).mean())
    src_deg2 = plp.lenspop_source_density() * float(sel.mean())
    per_deg2 = src_deg2 * mean_tau_all
    return LensDensity(
        per_deg2=per_deg2,
        per_sr=per_deg2 / SR_PER_DEG2,
        sources_per_deg2=src_deg2,
        mean_optical_depth=mean_tau_all,
        settings={
            "cosmology": repr(cosmology),
            "source_population": plp.LENSPOP,
            "mag_i": [mag_min, mag_max],
            "sigma_v": [sigma_min, sigma_max],
            "z_lens_max": z_lens_max,
            "grid": {"z_source": n_z, "catalogue_rows": int(sel.sum())},
        },
    )


# -------------------------------------------------------------------------------------------
# the detectable fraction (Monte Carlo)
# -------------------------------------------------------------------------------------------

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


def _wilson(k: int, n: int, confidence: float) -> tuple[float, float]:
    z = float(stats.norm.ppf(0.5 + confidence / 2.0))
    f = k / n
    den = 1.0 + z * z / n
    centre = (f + z * z / (2 * n)) / den
    half = z / den * math.sqrt(f * (1 - f) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def _free_candidates(
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
    sys = sampling.draw_lens_systems(m, rng, cosmology, cfg, None, source_population=sp)
    cols = empty_components(m, bands)
    cols.update(sys)
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
    cols = list(SUMMARY_COLUMNS)
    rows: pd.DataFrame | None = None
    others: pd.DataFrame | None = None
    if (keep_rows or keep_others) and method != "prefilter":
        raise SimlensValueError("keep_rows/keep_others need method='prefilter'")
    if method == "sampler":
        df = sampling.sample_lenses(
            int(n),
            survey=surv,
            cosmology=cosmology,
            npix=npix,
            rng=entropy,
            supersampling=supersampling,
            psf_scale=float(psf_scale),
            neighbours=False,
        )
        det = df.loc[df["detectable"].astype(bool), cols].reset_index(drop=True)
        traced = int(n)
    else:
        cfg = sampling.SamplerSettings.load()
        found: list[dict[str, Any]] = []
        full: list[dict[str, Any]] = []
        other: list[dict[str, Any]] = []
        traced = 0
        for b in range(math.ceil(n / _TRACE_BLOCK)):
            m = min(_TRACE_BLOCK, n - b * _TRACE_BLOCK)
            brng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(b,)))
            cand = _free_candidates(
                _TRACE_BLOCK, brng, surv, cosmology, float(psf_scale), source_population
            ).iloc[:m]
            maybe = sampling.may_be_detectable(cand, surv)
            for j, row in enumerate(records(cand)):
                if maybe[j]:
                    traced += 1
                    grid = sampling.row_grid(row, surv, npix, supersampling)
                    row.update(sampling.lensing_truth(row, surv, npix, cfg, grid=grid))
                for band in surv.band_names:
                    row[f"mag_source_{band}"] = row[
                        f"mag_source_unlensed_{band}"
                    ] - 2.5 * math.log10(row["magnification"])
                if maybe[j] and row["detectable"]:
                    found.append({c: row[c] for c in cols})
                    if keep_rows:
                        full.append(row)
                elif len(other) < keep_others:
                    other.append(row)
        det = pd.DataFrame(found, columns=cols)
        if keep_rows:
            rows = _renderable(full, surv, npix, entropy, 0, neighbours)
        if keep_others:
            others = _renderable(other, surv, npix, entropy, 1, neighbours)
    k = len(det)
    low, high = _wilson(k, int(n), confidence)
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


def _renderable(
    records: list[dict[str, Any]], survey: Survey, npix: int, entropy: int, stream: int, nb: bool
) -> pd.DataFrame:
    """Truth rows as ``sample_lenses`` returns them: per-row noise seeds, neighbours, order."""
    if not records:
        return pd.DataFrame()
    df = pd.DataFrame(records)
    # noise seeds from a stream of their own (spawn key (i, 1) under a derived entropy)
    sub = int(np.random.SeedSequence(entropy, spawn_key=(2**20 + stream,)).generate_state(1)[0])
    df["seed"] = sampling.row_seeds(sub, 0, len(df))
    return sampling.order_columns(sampling.with_neighbours(df, nb, survey, npix, sub, 0, 0))


# -------------------------------------------------------------------------------------------
# putting it together
# -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SkyDensity:
    """Strong and LensPop-detectable lenses on the sky for a survey.

    Attributes
    ----------
    survey : str
        Survey preset name.
    area_deg2 : float
        Search footprint, deg^2.
    strong_per_deg2 : float
        All strong lenses of the population (the integral), per deg^2.
    detectable_per_deg2, detectable_low, detectable_high, detectable_stderr : float
        ``strong_per_deg2`` times the detectable fraction, its interval (Wilson, from the
        fraction; the integral itself is exact to < 0.1%) and standard error, per deg^2.
    n_strong, n_detectable, n_detectable_low, n_detectable_high : float
        The same times the area: expected numbers over the footprint.
    lenspop_prediction : float
        LensPop's own DES number (about 2400 detectable lenses, Collett 2015).
    density : LensDensity
        The integral's details.
    fraction : DetectableFraction
        The Monte Carlo's details.
    """

    survey: str
    area_deg2: float
    strong_per_deg2: float
    detectable_per_deg2: float
    detectable_low: float
    detectable_high: float
    detectable_stderr: float
    n_strong: float
    n_detectable: float
    n_detectable_low: float
    n_detectable_high: float
    lenspop_prediction: float
    density: LensDensity
    fraction: DetectableFraction

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no per-lens table)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("density", "fraction")}
        out["density"] = asdict(self.density)
        fr = self.fraction
        out["fraction"] = {
            "n": fr.n,
            "k": fr.k,
            "fraction": fr.fraction,
            "low": fr.low,
            "high": fr.high,
            "confidence": fr.confidence,
            "n_traced": fr.n_traced,
            "method": fr.method,
            "medians_detectable": fr.medians() if fr.k else {},
        }
        return out


def sky_density(
    survey: str | Survey = "des-y3",
    *,
    n: int = 20000,
    rng: int = 0,
    cosmology: Cosmology = Planck18,
    area: float | None = None,
    npix: int = 100,
    method: str = "prefilter",
    confidence: float = 0.95,
    psf_scale: float = 1.0,
    fraction: DetectableFraction | None = None,
    source_population: str | None = None,
) -> SkyDensity:
    """Strong-lens and LensPop-detectable densities and counts over a survey footprint.

    ``area`` (deg^2) defaults to the preset's footprint (:func:`survey_area`); ``n`` lenses are
    drawn for the detectable fraction (:func:`detectable_fraction`), unless ``fraction`` (a
    result of it, for this survey and cosmology) is given. ``source_population``
    (``"deep-field"`` or ``"lenspop"``) replaces the preset's own sources, e.g. to see what
    LensPop's DES configuration gives with the deep-field sources of ``des-y3``.
    """
    surv = load_survey(survey)
    a = survey_area(surv) if area is None else float(area)
    if not a > 0:
        raise SimlensValueError(f"area must be > 0 deg^2, got {area!r}")
    sp = plp.survey_source_population(surv) if source_population is None else source_population
    dens = lens_density(cosmology, source_population=sp)
    frac = (
        fraction
        if fraction is not None
        else detectable_fraction(
            n,
            survey=surv,
            cosmology=cosmology,
            rng=rng,
            npix=npix,
            method=method,
            confidence=confidence,
            psf_scale=psf_scale,
            source_population=source_population,
        )
    )
    s = dens.per_deg2
    return SkyDensity(
        survey=surv.name,
        area_deg2=a,
        strong_per_deg2=s,
        detectable_per_deg2=s * frac.fraction,
        detectable_low=s * frac.low,
        detectable_high=s * frac.high,
        detectable_stderr=s * frac.stderr,
        n_strong=s * a,
        n_detectable=s * frac.fraction * a,
        n_detectable_low=s * frac.low * a,
        n_detectable_high=s * frac.high * a,
        lenspop_prediction=lenspop_des_prediction(),
        density=dens,
        fraction=frac,
    )
