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

The parameters live in :mod:`simlens.population.parameters`, the distance tables in
:mod:`simlens.physics.distances`, the lens galaxies in :mod:`simlens.population.lens_galaxies`
and the sources in :mod:`simlens.population.source_galaxies`; this module holds the Einstein
radius and ellipticity relations and re-exports every public name.

Units: velocity dispersion km/s, angles arcsec, distances Mpc, magnitudes AB.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from simlens.constants import ARCSEC_PER_RAD, SPEED_OF_LIGHT_KM_S
from simlens.errors import SimlensValueError
from simlens.physics.distances import (
    Z_TABLE_MAX,
    DistanceTable,
    checked_array,
    distances,
    uniform_interp,
)
from simlens.population.lens_galaxies import (
    SIGMA_V_MIN_KM_S,
    lens_axis_ratio,
    lens_light_from_sigma,
    sample_lens_redshift,
    sample_velocity_dispersion,
    vdf_dn_dsigma,
    vdf_pdf,
)
from simlens.population.parameters import (
    PopulationParameters,
    load_population_parameters,
    population_parameters,
)
from simlens.population.source_galaxies import sample_sources, source_axis_ratio, source_size

__all__ = [
    "SIGMA_V_MIN_KM_S",
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
