"""LensPop lens galaxies: velocity dispersion function, redshifts, light and shape.

Collett (2015) and the papers it draws on; numbers from ``catalogs/population.toml``.
:mod:`simlens.population.relations` re-exports every name. Units: km/s, arcsec, AB mag.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from simlens.constants import ARCSEC_PER_RAD
from simlens.errors import SimlensValueError
from simlens.physics.distances import Z_TABLE_MAX, checked_array, distances
from simlens.population._common import (
    N_CDF_GRID,
    check_n,
    check_rng,
    sample_grid,
    truncated_rayleigh,
)
from simlens.population.parameters import population_parameters

Array = NDArray[np.float64]

__all__ = [
    "SIGMA_V_MIN_KM_S",
    "lens_axis_ratio",
    "lens_light_from_sigma",
    "sample_lens_redshift",
    "sample_velocity_dispersion",
    "vdf_dn_dsigma",
    "vdf_pdf",
]

#: Lower bound of the deflectors' velocity dispersion (km/s): LensPop's population starts at
#: 100 km/s; sampling, the density integral and the detectable fraction all use this bound.
SIGMA_V_MIN_KM_S = 100.0


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
    sigma_min: float = SIGMA_V_MIN_KM_S,
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
    grid = np.linspace(lo, hi, N_CDF_GRID)
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
    sigma_min: float = SIGMA_V_MIN_KM_S,
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
    n, rng = check_n(n), check_rng(rng)
    lo, hi = _check_sigma_range(sigma_min, sigma_max)
    grid = np.linspace(lo, hi, N_CDF_GRID)
    return sample_grid(grid, vdf_dn_dsigma(grid) * grid**weight_power, n, rng)


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
    n, rng = check_n(n), check_rng(rng)
    lo = float(checked_array(z_min, "z_min", 0.0, Z_TABLE_MAX))
    hi = float(checked_array(z_max, "z_max", 0.0, Z_TABLE_MAX, lo_open=True))
    if not lo < hi:
        raise SimlensValueError(f"z_min, z_max: need z_min < z_max; got {lo}, {hi}")
    table = distances(cosmology)
    grid = np.linspace(lo, hi, N_CDF_GRID)
    return sample_grid(grid, table.differential_comoving_volume(grid), n, rng)


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
    rng = check_rng(rng)
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
    rng = check_rng(rng)
    s = checked_array(sigma, "sigma", 0.0, p.lens_sigma_max, lo_open=True)
    scale = p.lens_q_scale_intercept + p.lens_q_scale_slope * s
    return 1.0 - truncated_rayleigh(np.atleast_1d(scale), 1.0 - p.lens_q_min, rng).reshape(s.shape)
