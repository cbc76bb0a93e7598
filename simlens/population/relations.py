"""LensPop-style population ingredients: lenses, sources, distances, Einstein radii.

The relations follow Collett (2015, ApJ 811, 20; "LensPop") and the papers it draws on; every
number is read from ``catalogs/population.toml`` (value, unit, source) into the frozen
:class:`PopulationParameters`. ``docs/population.md`` lists each relation with its source and the
checks measured in ``tests/simlens/test_population.py``.

Every function is pure and vectorised: arrays in, arrays out. Random draws use the
``numpy.random.Generator`` passed in, never the global state. Cosmology is always an argument
(an astropy ``Cosmology``); distances come from a per-cosmology table (:func:`distances`),
built once per process by integrating ``1/E(z)`` and interpolated (relative error < 1e-6
against astropy, checked in the tests).

The parameters live in :mod:`simlens.population.parameters` and the distance tables in
:mod:`simlens.physics.distances`; this module re-exports their public names.

Units: velocity dispersion km/s, angles arcsec, distances Mpc, magnitudes AB.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special
from scipy.integrate import cumulative_trapezoid

from simlens.constants import ARCSEC_PER_RAD, SPEED_OF_LIGHT_KM_S
from simlens.errors import SimlensValueError
from simlens.physics.distances import (
    Z_TABLE_MAX,
    DistanceTable,
    checked_array,
    distances,
    uniform_interp,
)
from simlens.population.parameters import (
    PopulationParameters,
    load_population_parameters,
    population_parameters,
)

__all__ = [
    "SPEED_OF_LIGHT_KM_S",
    "Z_TABLE_MAX",
    "DistanceTable",
    "PopulationParameters",
    "axis_ratio_angle",
    "distances",
    "einstein_radius",
    "ellipticity_components",
    "lens_axis_ratio",
    "lens_light_from_sigma",
    "load_population_parameters",
    "population_parameters",
    "sample_lens_redshift",
    "sample_sources",
    "sample_velocity_dispersion",
    "sigma_from_einstein_radius",
    "source_axis_ratio",
    "source_size",
    "uniform_interp",
    "vdf_dn_dsigma",
    "vdf_pdf",
]

Array = NDArray[np.float64]

_N_CDF_GRID = 4001  # grid points of the inverse-CDF samplers


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise SimlensValueError(f"n: must be an integer >= 0, got {n!r}")
    return int(n)


def _check_rng(rng: np.random.Generator) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise SimlensValueError(
            f"rng: must be a numpy.random.Generator (e.g. np.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    return rng


# --------------------------------------------------------------------------------------------
# Inverse-CDF sampling on a grid
# --------------------------------------------------------------------------------------------


def _sample_grid(x: Array, pdf: Array, n: int, rng: np.random.Generator) -> Array:
    """Draw ``n`` values from the (unnormalised) tabulated ``pdf`` by inverse CDF."""
    cdf = cumulative_trapezoid(pdf, x, initial=0.0)
    cdf /= cdf[-1]
    return np.interp(rng.random(n), cdf, x)


# --------------------------------------------------------------------------------------------
# Lenses: velocity dispersion function and redshifts
# --------------------------------------------------------------------------------------------


def vdf_dn_dsigma(sigma: ArrayLike) -> Array:
    """Choi et al. (2007) velocity dispersion function, number density per km/s.

    dn/dsigma = phi_* (sigma/sigma_*)^alpha exp[-(sigma/sigma_*)^beta] beta / Gamma(alpha/beta)
    / sigma  (Sheth et al. 2003 form), non-evolving.

    Parameters
    ----------
    sigma : array_like
        Velocity dispersion in km/s, > 0.

    Returns
    -------
    ndarray
        dn/dsigma in h^3 Mpc^-3 (km/s)^-1.
    """
    p = population_parameters()
    s = checked_array(sigma, "sigma", 0.0, lo_open=True)
    x = s / p.vdf_sigma_star
    norm = p.vdf_phi_star * p.vdf_beta / special.gamma(p.vdf_alpha / p.vdf_beta)
    return norm * x**p.vdf_alpha * np.exp(-(x**p.vdf_beta)) / s


def vdf_pdf(
    sigma: ArrayLike,
    *,
    sigma_min: float = 100.0,
    sigma_max: float = 400.0,
    weight_power: float = 0.0,
) -> Array:
    """Probability density of the velocity dispersion, per km/s, on [sigma_min, sigma_max].

    The Choi et al. (2007) VDF (:func:`vdf_dn_dsigma`) times ``sigma**weight_power``,
    normalised to unit integral over [sigma_min, sigma_max]; zero outside.

    Parameters
    ----------
    sigma : array_like
        Velocity dispersion in km/s.
    sigma_min, sigma_max : float
        Support in km/s, 0 < sigma_min < sigma_max.
    weight_power : float
        Extra weight sigma^p; 4 gives the lensing-cross-section-weighted (theta_E^2 ~ sigma^4)
        distribution of lenses. Default 0: the galaxy population.

    Returns
    -------
    ndarray
        Density in (km/s)^-1, shape of ``sigma``.
    """
    lo, hi = _check_sigma_range(sigma_min, sigma_max)
    s = checked_array(sigma, "sigma", 0.0, lo_open=True)
    grid = np.linspace(lo, hi, _N_CDF_GRID)
    norm = np.trapezoid(vdf_dn_dsigma(grid) * grid**weight_power, grid)
    inside = (s >= lo) & (s <= hi)
    out = np.where(inside, vdf_dn_dsigma(s) * s**weight_power / norm, 0.0)
    return out


def _check_sigma_range(sigma_min: float, sigma_max: float) -> tuple[float, float]:
    lo = float(checked_array(sigma_min, "sigma_min", 0.0, lo_open=True))
    hi = float(checked_array(sigma_max, "sigma_max", 0.0, population_parameters().lens_sigma_max))
    if not lo < hi:
        raise SimlensValueError(f"sigma_min, sigma_max: need sigma_min < sigma_max; got {lo}, {hi}")
    return lo, hi


def sample_velocity_dispersion(
    n: int,
    rng: np.random.Generator,
    *,
    sigma_min: float = 100.0,
    sigma_max: float = 400.0,
    weight_power: float = 0.0,
) -> Array:
    """Draw velocity dispersions (km/s) from the Choi et al. (2007) VDF.

    Inverse-CDF sampling of :func:`vdf_pdf` on a 4001-point grid.

    Parameters
    ----------
    n : int
        Number of draws, >= 0.
    rng : numpy.random.Generator
        Source of randomness.
    sigma_min, sigma_max : float
        Range in km/s (LensPop uses sigma >= 100 km/s); sigma_max <= lens_light.sigma_max.
    weight_power : float
        Extra weight sigma^p (4: lensing cross-section). Default 0.

    Returns
    -------
    ndarray
        Shape (n,), km/s.
    """
    n, rng = _check_n(n), _check_rng(rng)
    lo, hi = _check_sigma_range(sigma_min, sigma_max)
    grid = np.linspace(lo, hi, _N_CDF_GRID)
    return _sample_grid(grid, vdf_dn_dsigma(grid) * grid**weight_power, n, rng)


def sample_lens_redshift(
    n: int,
    rng: np.random.Generator,
    cosmology: Any,
    *,
    z_min: float = 0.0,
    z_max: float = 2.0,
) -> Array:
    """Draw lens redshifts with density proportional to the comoving volume dV_c/dz.

    With a non-evolving VDF (LensPop, Collett 2015) the deflector density per unit redshift is
    n_gal dV_c/dz, independent of sigma, so redshift and velocity dispersion are independent.

    Parameters
    ----------
    n : int
        Number of draws, >= 0.
    rng : numpy.random.Generator
        Source of randomness.
    cosmology : astropy.cosmology.Cosmology
        Cosmology of dV_c/dz.
    z_min, z_max : float
        Redshift range, 0 <= z_min < z_max <= Z_TABLE_MAX (LensPop: z_max = 2).

    Returns
    -------
    ndarray
        Shape (n,).
    """
    n, rng = _check_n(n), _check_rng(rng)
    lo = float(checked_array(z_min, "z_min", 0.0, Z_TABLE_MAX))
    hi = float(checked_array(z_max, "z_max", 0.0, Z_TABLE_MAX, lo_open=True))
    if not lo < hi:
        raise SimlensValueError(f"z_min, z_max: need z_min < z_max; got {lo}, {hi}")
    table = distances(cosmology)
    grid = np.linspace(lo, hi, _N_CDF_GRID)
    return _sample_grid(grid, table.differential_comoving_volume(grid), n, rng)


# --------------------------------------------------------------------------------------------
# Lens light and shape
# --------------------------------------------------------------------------------------------


def lens_light_from_sigma(
    sigma: ArrayLike,
    z: ArrayLike,
    rng: np.random.Generator,
    cosmology: Any,
    *,
    scatter: bool = True,
) -> tuple[Array, Array]:
    """Rest-frame SDSS-r absolute magnitude and effective radius of an early-type lens.

    Hyde & Bernardi (2009) relations as used by LensPop:
    log10 sigma = c0 + c1 M_r + c2 M_r^2 solved for M_r (the bright branch), plus Gaussian
    scatter in M_r; log10(R_e/kpc) = r0 + r1 V + r2 V^2 with V = log10 sigma, plus lognormal
    scatter. R_e is converted to arcsec with the angular diameter distance D_A(z).

    Parameters
    ----------
    sigma : array_like
        Velocity dispersion in km/s, in (0, lens_light.sigma_max].
    z : array_like
        Lens redshift, in (0, Z_TABLE_MAX]; broadcast with ``sigma``.
    rng : numpy.random.Generator
        Source of the scatter (unused when ``scatter`` is False).
    cosmology : astropy.cosmology.Cosmology
        Cosmology of D_A.
    scatter : bool
        Add the catalogued scatter (default). False gives the mean relations.

    Returns
    -------
    abs_mag_r : ndarray
        Rest-frame SDSS r absolute magnitude (AB), broadcast shape.
    r_eff_arcsec : ndarray
        Effective (half-light) radius in arcsec, broadcast shape.
    """
    p = population_parameters()
    rng = _check_rng(rng)
    s = checked_array(sigma, "sigma", 0.0, p.lens_sigma_max, lo_open=True)
    zz = checked_array(z, "z", 0.0, Z_TABLE_MAX, lo_open=True)
    s, zz = np.broadcast_arrays(s, zz)
    v = np.log10(s)
    c0, c1, c2 = p.sigma_mag_coefficients
    # c2 M^2 + c1 M + (c0 - V) = 0 (c2 < 0). Of the two roots, the one on the physical branch
    # (M > vertex -c1/(2 c2), where sigma rises with luminosity) is LensPop's choice.
    disc = c1 * c1 - 4.0 * c2 * (c0 - v)
    mag = (-c1 - np.sqrt(disc)) / (2.0 * c2)
    r0, r1, r2 = p.size_sigma_coefficients
    log_r = r0 + r1 * v + r2 * v * v
    if scatter:
        mag = mag + rng.normal(0.0, p.lens_mag_scatter, s.shape)
        log_r = log_r + rng.normal(0.0, p.lens_size_scatter, s.shape)
    r_kpc = 10.0**log_r
    d_a_kpc = distances(cosmology).angular_diameter_distance(zz) * 1e3
    return mag, r_kpc / d_a_kpc * ARCSEC_PER_RAD


def _truncated_rayleigh(scale: Array, x_max: float, rng: np.random.Generator) -> Array:
    """Rayleigh(scale) draws conditioned on x <= x_max (exact inverse CDF, no pile-up)."""
    f_max = -np.expm1(-(x_max**2) / (2.0 * scale**2))  # CDF at x_max
    u = rng.random(scale.shape) * f_max
    return scale * np.sqrt(-2.0 * np.log1p(-u))


def lens_axis_ratio(sigma: ArrayLike, rng: np.random.Generator) -> Array:
    """Axis ratio of lens light and mass: q = 1 - Rayleigh(s), s = 0.378 - 0.000572 sigma.

    Collett (2015) sect. 2.1; the Rayleigh draw is truncated so that q >= q_min = 0.2 (a
    redraw, as LensPop's rejection, rather than a clip that would pile up objects at q_min).

    Parameters
    ----------
    sigma : array_like
        Velocity dispersion in km/s, in (0, lens_light.sigma_max].
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    ndarray
        q in [q_min, 1], shape of ``sigma``.
    """
    p = population_parameters()
    rng = _check_rng(rng)
    s = checked_array(sigma, "sigma", 0.0, p.lens_sigma_max, lo_open=True)
    scale = p.lens_q_scale_intercept + p.lens_q_scale_slope * s
    return 1.0 - _truncated_rayleigh(np.atleast_1d(scale), 1.0 - p.lens_q_min, rng).reshape(s.shape)


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


def sample_sources(
    n: int,
    rng: np.random.Generator,
    *,
    mag_min: float = 22.0,
    mag_max: float = 27.0,
    z_min: ArrayLike = 0.0,
    z_max: float = 6.0,
) -> dict[str, Array]:
    """Draw unlensed source i-band magnitudes and redshifts.

    Magnitudes follow power-law counts dN/dm ~ 10^(0.33 m) (Metcalfe et al. 2001) on
    [mag_min, mag_max]. Redshifts follow p(z | i) ~ z^2 exp(-z/z0(i)), z0 = 0.0598 i - 1.0846
    (fitted to the COSMOS photo-z medians of Ilbert et al. 2009), truncated to [z_min, z_max]:
    the truncation acts on p(z | i) only, the magnitude distribution is not re-weighted.

    Parameters
    ----------
    n : int
        Number of sources, >= 0.
    rng : numpy.random.Generator
        Source of randomness.
    mag_min, mag_max : float
        Magnitude range (AB, i band); mag_min > 18.14 (where z0 > 0), mag_min < mag_max <= 40.
    z_min : array_like
        Lower redshift bound, scalar or shape (n,) (e.g. the lens redshift of each system),
        in [0, z_max).
    z_max : float
        Upper redshift bound, <= 6.

    Returns
    -------
    dict of ndarray
        ``"mag_i"`` (unlensed AB magnitude) and ``"z_source"``, each of shape (n,).
    """
    p = population_parameters()
    n, rng = _check_n(n), _check_rng(rng)
    m1 = float(checked_array(mag_min, "mag_min", p.source_mag_min, 40.0, lo_open=True))
    m2 = float(checked_array(mag_max, "mag_max", p.source_mag_min, 40.0, lo_open=True))
    if not m1 < m2:
        raise SimlensValueError(f"mag_min, mag_max: need mag_min < mag_max; got {m1}, {m2}")
    zhi = float(checked_array(z_max, "z_max", 0.0, 6.0, lo_open=True))
    zlo = checked_array(z_min, "z_min", 0.0, zhi, hi_open=True)
    if zlo.ndim > 1 or (zlo.ndim == 1 and zlo.size != n):
        raise SimlensValueError(f"z_min: must be a scalar or of shape ({n},); got {zlo.shape}")
    zlo = np.broadcast_to(zlo, (n,))
    u1, u2 = rng.random(n), rng.random(n)
    # inverse CDF of 10^(a m) on [m1, m2], written in terms of offsets from m2 for accuracy
    a = p.source_count_slope * math.log(10.0)
    mag = m2 + np.log1p(-u1 * -np.expm1(-a * (m2 - m1))) / a
    z0 = p.source_z0_slope * mag + p.source_z0_intercept
    k = p.source_gamma_shape
    # upper-tail probabilities Q(k, z/z0) keep precision for large z_min/z0
    q_hi = special.gammaincc(k, zlo / z0)
    q_lo = special.gammaincc(k, zhi / z0)
    if np.any(q_hi <= 0):
        raise SimlensValueError("z_min: too far in the tail of p(z | i) to sample (z_min/z0 > 700)")
    qv = q_lo + u2 * (q_hi - q_lo)
    z = special.gammainccinv(k, qv) * z0
    z = np.clip(z, zlo, zhi)
    return {"mag_i": mag, "z_source": z}


def source_size(
    mag_i: ArrayLike,
    z: ArrayLike,
    rng: np.random.Generator,
    cosmology: Any,
    *,
    scatter: bool = True,
) -> Array:
    """Effective (half-light) radius of a star-forming source, arcsec.

    log10(R_e/kpc) = log10 R_ref - 0.4 alpha (M - M_ref) - eta log10[(1+z)/(1+z_ref)] + N(0, 0.26)
    with M = i - DM(z) + 2.5 log10(1+z) (the AB absolute magnitude at rest wavelength
    7800 A/(1+z), i.e. a flat-f_nu K-correction, close to the rest UV where the size relations
    are measured); alpha = 0.27 (Shibuya et al. 2015), eta = 1.2 (Mosleh et al. 2012),
    R_ref = 2 kpc at M_ref = -21, z_ref = 2 (a choice), scatter 0.26 dex (Shibuya et al. 2015).

    Parameters
    ----------
    mag_i : array_like
        Unlensed apparent i magnitude (AB), in [10, 40].
    z : array_like
        Source redshift, in (0, Z_TABLE_MAX]; broadcast with ``mag_i``.
    rng : numpy.random.Generator
        Source of the scatter.
    cosmology : astropy.cosmology.Cosmology
        Cosmology of DM(z) and D_A(z).
    scatter : bool
        Add the 0.26 dex lognormal scatter (default).

    Returns
    -------
    ndarray
        R_e in arcsec, broadcast shape.
    """
    p = population_parameters()
    rng = _check_rng(rng)
    m = checked_array(mag_i, "mag_i", 10.0, 40.0)
    zz = checked_array(z, "z", 0.0, Z_TABLE_MAX, lo_open=True)
    m, zz = np.broadcast_arrays(m, zz)
    table = distances(cosmology)
    abs_mag = m - table.distmod(zz) + 2.5 * np.log10(1.0 + zz)
    log_r = (
        math.log10(p.source_r_ref)
        - 0.4 * p.source_luminosity_slope * (abs_mag - p.source_mag_ref)
        - p.source_evolution_slope * np.log10((1.0 + zz) / (1.0 + p.source_z_ref))
    )
    if scatter:
        log_r = log_r + rng.normal(0.0, p.source_size_scatter, m.shape)
    d_a_kpc = table.angular_diameter_distance(zz) * 1e3
    return 10.0**log_r / d_a_kpc * ARCSEC_PER_RAD


def source_axis_ratio(n: int, rng: np.random.Generator) -> Array:
    """Source axis ratio q = 1 - Rayleigh(0.3), truncated to q >= 0.2 (Collett 2015).

    Parameters
    ----------
    n : int
        Number of draws, >= 0.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    ndarray
        Shape (n,), q in [0.2, 1].
    """
    p = population_parameters()
    n, rng = _check_n(n), _check_rng(rng)
    scale = np.full(n, p.source_q_scale)
    return 1.0 - _truncated_rayleigh(scale, 1.0 - p.source_q_min, rng)


# --------------------------------------------------------------------------------------------
# Einstein radius
# --------------------------------------------------------------------------------------------


def _distance_ratio(z_lens: ArrayLike, z_source: ArrayLike, cosmology: Any) -> Array:
    """D_ls/D_s, 0 where z_source <= z_lens."""
    zl = checked_array(z_lens, "z_lens", 0.0, Z_TABLE_MAX, lo_open=True)
    zs = checked_array(z_source, "z_source", 0.0, Z_TABLE_MAX, lo_open=True)
    zl, zs = np.broadcast_arrays(zl, zs)
    table = distances(cosmology)
    ratio = table.angular_diameter_distance_z1z2(zl, zs) / table.angular_diameter_distance(zs)
    return np.where(zs > zl, ratio, 0.0)


def einstein_radius(
    sigma: ArrayLike, z_lens: ArrayLike, z_source: ArrayLike, cosmology: Any
) -> Array:
    """Einstein radius of a singular isothermal sphere/ellipsoid, arcsec.

    theta_E = 4 pi (sigma/c)^2 D_ls/D_s (e.g. Collett 2015 eq. 1); 0 when z_source <= z_lens.

    Parameters
    ----------
    sigma : array_like
        Velocity dispersion in km/s, >= 0.
    z_lens, z_source : array_like
        Redshifts in (0, Z_TABLE_MAX]; broadcast together with ``sigma``.
    cosmology : astropy.cosmology.Cosmology
        Cosmology of the angular diameter distances.

    Returns
    -------
    ndarray
        theta_E in arcsec, broadcast shape.
    """
    s = checked_array(sigma, "sigma", 0.0)
    ratio = _distance_ratio(z_lens, z_source, cosmology)
    return 4.0 * math.pi * (s / SPEED_OF_LIGHT_KM_S) ** 2 * ratio * ARCSEC_PER_RAD


def sigma_from_einstein_radius(
    theta_E: ArrayLike,
    z_lens: ArrayLike,
    z_source: ArrayLike,
    cosmology: Any,
) -> Array:
    """Velocity dispersion (km/s) giving Einstein radius ``theta_E``; inverse of
    :func:`einstein_radius`.

    sigma = c sqrt(theta_E / (4 pi D_ls/D_s)).

    Parameters
    ----------
    theta_E : array_like
        Einstein radius in arcsec, >= 0.
    z_lens, z_source : array_like
        Redshifts in (0, Z_TABLE_MAX] with z_source > z_lens wherever theta_E > 0.
    cosmology : astropy.cosmology.Cosmology
        Cosmology of the angular diameter distances.

    Returns
    -------
    ndarray
        sigma in km/s, broadcast shape.

    Raises
    ------
    SimlensValueError
        theta_E > 0 for a source not behind its lens.
    """
    t = checked_array(theta_E, "theta_E", 0.0)
    ratio = _distance_ratio(z_lens, z_source, cosmology)
    t, ratio = np.broadcast_arrays(t, ratio)
    if np.any((t > 0) & (ratio <= 0)):
        raise SimlensValueError(
            "z_source: must exceed z_lens wherever theta_E > 0 (no lensing otherwise)"
        )
    safe = np.where(ratio > 0, ratio, 1.0)
    return SPEED_OF_LIGHT_KM_S * np.sqrt(t / ARCSEC_PER_RAD / (4.0 * math.pi * safe))


# --------------------------------------------------------------------------------------------
# Ellipticity (lenstronomy convention)
# --------------------------------------------------------------------------------------------


def ellipticity_components(q: ArrayLike, phi: ArrayLike) -> tuple[Array, Array]:
    """Ellipticity components (e1, e2) from axis ratio and position angle.

    lenstronomy's convention (``Util.param_util.phi_q2_ellipticity``):
    e = (1 - q)/(1 + q), e1 = e cos 2 phi, e2 = e sin 2 phi.

    Parameters
    ----------
    q : array_like
        Axis ratio in (0, 1].
    phi : array_like
        Position angle in radians, measured from the x axis towards y (any real value).

    Returns
    -------
    e1, e2 : ndarray
        Broadcast shape of ``q`` and ``phi``.
    """
    qq = checked_array(q, "q", 0.0, 1.0, lo_open=True)
    ph = checked_array(phi, "phi")
    e = (1.0 - qq) / (1.0 + qq)
    return e * np.cos(2.0 * ph), e * np.sin(2.0 * ph)


def axis_ratio_angle(e1: ArrayLike, e2: ArrayLike) -> tuple[Array, Array]:
    """Axis ratio and position angle from (e1, e2); inverse of :func:`ellipticity_components`.

    phi = arctan2(e2, e1)/2 in (-pi/2, pi/2], q = (1 - e)/(1 + e) with e = sqrt(e1^2 + e2^2)
    (lenstronomy's ``ellipticity2phi_q``).

    Parameters
    ----------
    e1, e2 : array_like
        Ellipticity components with e1^2 + e2^2 < 1.

    Returns
    -------
    q, phi : ndarray
        Axis ratio in (0, 1] and position angle in radians.
    """
    a1, a2 = checked_array(e1, "e1", -1.0, 1.0), checked_array(e2, "e2", -1.0, 1.0)
    e = np.hypot(a1, a2)
    if np.any(e >= 1.0):
        raise SimlensValueError("e1, e2: need e1^2 + e2^2 < 1")
    return (1.0 - e) / (1.0 + e), 0.5 * np.arctan2(a2, a1)
