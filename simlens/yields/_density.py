"""The density integral: strong lenses of the simlens population per steradian and deg^2.

``Sigma = int di n_s(i) int dz_s p(z_s | i) tau(z_s)``, with ``tau`` the SIS optical depth of the
deflector population (the :mod:`simlens.yields` docstring has the derivation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.cosmology import Cosmology, Planck18
from numpy.typing import NDArray
from scipy import integrate, special, stats

from simlens.constants import ARCMIN2_PER_DEG2, SPEED_OF_LIGHT_KM_S, SR_PER_DEG2
from simlens.errors import SimlensValueError
from simlens.population import lenspop_sources as plp
from simlens.population import relations
from simlens.sampling import truth as sampling
from simlens.sampling.lens_systems import SOURCE_BEHIND_DZ
from simlens.yields._inputs import catalogue_value

__all__ = [
    "LensDensity",
    "lens_density",
    "lenspop_density",
    "optical_depth",
    "sigma_moment",
    "source_counts",
]

F64 = NDArray[np.float64]


def source_counts(mag_min: float = 22.0, mag_max: float = 27.0) -> float:
    """Number of sources per steradian with ``mag_min <= i <= mag_max`` (unlensed, AB).

    ``N(< i) = n_ref 10**(s (i - m_ref))`` with the population's slope ``s`` (0.33 dex/mag) and
    ``n_ref`` galaxies per arcmin^2 at ``m_ref`` (``catalogs/yields.toml``).
    """
    if not mag_min < mag_max:
        raise SimlensValueError(f"need mag_min < mag_max; got {mag_min}, {mag_max}")
    s = relations.population_parameters().source_count_slope
    n_ref, m_ref = (
        catalogue_value("source_counts", "n_ref"),
        catalogue_value("source_counts", "m_ref"),
    )
    per_arcmin2 = n_ref * (10.0 ** (s * (mag_max - m_ref)) - 10.0 ** (s * (mag_min - m_ref)))
    return per_arcmin2 * ARCMIN2_PER_DEG2 / SR_PER_DEG2


def sigma_moment(sigma_min: float, sigma_max: float, h: float) -> float:
    """``M4 = h**3 int dn/dsigma (sigma/c)**4 dsigma`` in Mpc^-3."""

    def f(s: float) -> float:
        return float(relations.vdf_dn_dsigma(s)) * (s / SPEED_OF_LIGHT_KM_S) ** 4

    val, _ = integrate.quad(f, sigma_min, sigma_max, epsabs=0.0, epsrel=1e-10, limit=200)
    return h**3 * val


def optical_depth(
    z_source: Any,
    cosmology: Cosmology = Planck18,
    *,
    sigma_min: float = relations.SIGMA_V_MIN_KM_S,
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
    m4 = sigma_moment(sigma_min, smax, h)
    table = relations.distances(cosmology)
    upper = np.clip(np.minimum(zs - SOURCE_BEHIND_DZ, zmax), 0.0, None)
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
    sigma_min: float = relations.SIGMA_V_MIN_KM_S,
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
        return lenspop_density(cosmology, mag_min, mag_max, sigma_min, sigma_max, z_lens_max, n_z)
    mag_min = 22.0 if mag_min is None else float(mag_min)
    mag_max = 27.0 if mag_max is None else float(mag_max)
    p = relations.population_parameters()
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


def lenspop_density(
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
