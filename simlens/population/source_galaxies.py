"""Background sources of the LensPop population: faint-galaxy counts, redshifts, sizes, shapes.

:mod:`simlens.population.relations` re-exports every name. Units: arcsec, AB mag.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from simlens.constants import ARCSEC_PER_RAD
from simlens.errors import SimlensValueError
from simlens.physics.distances import Z_TABLE_MAX, checked_array, distances
from simlens.population._common import check_n, check_rng, truncated_rayleigh
from simlens.population.parameters import population_parameters

Array = NDArray[np.float64]

__all__ = ["sample_sources", "source_axis_ratio", "source_size"]


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
    n, rng = check_n(n), check_rng(rng)
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
    rng = check_rng(rng)
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
    n, rng = check_n(n), check_rng(rng)
    scale = np.full(n, p.source_q_scale)
    return 1.0 - truncated_rayleigh(scale, 1.0 - p.source_q_min, rng)
