"""Cosmological distances: a per-cosmology table, built once per process and interpolated.

:func:`distances` integrates ``1/E(z)`` on ``0 <= z <= Z_TABLE_MAX`` for an astropy ``Cosmology``
and returns a :class:`DistanceTable` (comoving, transverse, angular diameter and luminosity
distances, distance modulus, comoving volume element; relative error < 1e-6 against astropy,
checked in ``tests/simlens/test_population.py``). Also holds :func:`uniform_interp`, the table's
fast linear interpolation, and :func:`checked_array`, the finite-and-in-range argument check the
population relations share. :mod:`simlens.population.relations` re-exports the public names.

Units: distances Mpc, velocities km/s.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.integrate import cumulative_simpson

from simlens.constants import SPEED_OF_LIGHT_KM_S
from simlens.errors import SimlensValueError

__all__ = ["Z_TABLE_MAX", "DistanceTable", "checked_array", "distances", "uniform_interp"]

Array = NDArray[np.float64]

Z_TABLE_MAX = 10.0
"""Largest redshift of the distance table (sources are drawn at z <= 6)."""

_Z_TABLE_STEP = 5e-4  # linear interpolation error ~ step^2/8 * D_H ~ 1e-4 Mpc


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def checked_array(
    x: ArrayLike,
    name: str,
    lo: float = -math.inf,
    hi: float = math.inf,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> Array:
    """``x`` as a float array, every element finite and inside the stated interval."""
    a = np.asarray(x, dtype=np.float64)
    bad = ~np.isfinite(a)
    bad |= (a <= lo) if lo_open else (a < lo)
    bad |= (a >= hi) if hi_open else (a > hi)
    if np.any(bad):
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        first = a[bad].ravel()[0] if a.ndim else a
        raise SimlensValueError(
            f"{name}: every value must be finite and in {left}{lo:g}, {hi:g}{right}; got {first!r}"
        )
    return a


def _cosmology_key(cosmology: Any) -> str:
    if not hasattr(cosmology, "inv_efunc") or not hasattr(cosmology, "H0"):
        raise SimlensValueError(
            f"cosmology: must be an astropy Cosmology, got {type(cosmology).__name__}"
        )
    return f"{type(cosmology).__module__}.{type(cosmology).__qualname__}:{cosmology!r}"


def uniform_interp(x: Array, step: float, y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Linear interpolation of ``y`` tabulated at ``0, step, 2 step, ...`` (along axis 0).

    Equivalent to ``np.interp`` on a uniform grid starting at 0, but by index arithmetic
    rather than binary search: ~10x faster on unsorted input. ``x`` must lie inside the grid.
    """
    u = x / step
    i = np.minimum(u.astype(np.intp), y.shape[0] - 2)
    f = u - i
    if y.ndim > 1:
        f = f[..., None]
    return y[i] * (1.0 - f) + y[i + 1] * f


# --------------------------------------------------------------------------------------------
# Distances
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DistanceTable:
    """Distances of one cosmology tabulated on ``0 <= z <= Z_TABLE_MAX`` (Mpc).

    Built by :func:`distances`; evaluation is linear interpolation (microseconds per 1e5
    points). Curvature is handled as in Hogg (1999, astro-ph/9905116) eqs. 16 and 19.

    Attributes
    ----------
    z : ndarray
        Redshift grid.
    comoving : ndarray
        Line-of-sight comoving distance D_C(z) in Mpc.
    efunc : ndarray
        E(z) = H(z)/H0.
    hubble_distance : float
        D_H = c/H0 in Mpc.
    omega_k : float
        Curvature density today, Omega_k0.
    name : str
        repr of the cosmology the table was built from.
    """

    z: Array
    comoving: Array
    efunc: Array
    hubble_distance: float
    omega_k: float
    name: str

    def _check(self, z: ArrayLike, name: str = "z") -> Array:
        return checked_array(z, name, 0.0, Z_TABLE_MAX)

    @property
    def step(self) -> float:
        """Spacing of the redshift grid."""
        return float(self.z[1] - self.z[0])

    def _dc(self, z: Array) -> Array:
        return uniform_interp(z, self.step, self.comoving)

    def _transverse(self, dc: Array) -> Array:
        # Hogg 1999 eq. 16: D_M from D_C for open/closed geometries.
        ok, dh = self.omega_k, self.hubble_distance
        if abs(ok) < 1e-12:
            return dc
        s = math.sqrt(abs(ok))
        if ok > 0:
            return dh / s * np.sinh(s * dc / dh)
        return dh / s * np.sin(s * dc / dh)

    def comoving_distance(self, z: ArrayLike) -> Array:
        """Line-of-sight comoving distance D_C(z) in Mpc."""
        return self._dc(self._check(z))

    def comoving_transverse_distance(self, z: ArrayLike) -> Array:
        """Transverse comoving distance D_M(z) in Mpc."""
        return self._transverse(self.comoving_distance(z))

    def angular_diameter_distance(self, z: ArrayLike) -> Array:
        """Angular diameter distance D_A(z) = D_M/(1+z) in Mpc."""
        zz = self._check(z)
        return self._transverse(self._dc(zz)) / (1.0 + zz)

    def angular_diameter_distance_z1z2(self, z1: ArrayLike, z2: ArrayLike) -> Array:
        """Angular diameter distance between z1 and z2 in Mpc (negative when z2 < z1).

        D_A(z1, z2) = D_M(D_C(z2) - D_C(z1)) / (1 + z2), as astropy's
        ``angular_diameter_distance_z1z2``.
        """
        a1, a2 = self._check(z1, "z1"), self._check(z2, "z2")
        dc = self._dc(a2) - self._dc(a1)
        return self._transverse(dc) / (1.0 + a2)

    def luminosity_distance(self, z: ArrayLike) -> Array:
        """Luminosity distance D_L(z) = (1+z) D_M in Mpc."""
        zz = self._check(z)
        return self._transverse(self._dc(zz)) * (1.0 + zz)

    def distmod(self, z: ArrayLike) -> Array:
        """Distance modulus 5 log10(D_L / 10 pc) in mag; requires z > 0."""
        zz = checked_array(z, "z", 0.0, Z_TABLE_MAX, lo_open=True)
        return 5.0 * np.log10(self.luminosity_distance(zz)) + 25.0

    def differential_comoving_volume(self, z: ArrayLike) -> Array:
        """dV_c/dz/dOmega = D_H D_M^2 / E(z) in Mpc^3 per steradian per unit redshift."""
        zz = self._check(z)
        dm = self._transverse(self._dc(zz))
        return self.hubble_distance * dm**2 / uniform_interp(zz, self.step, self.efunc)


_DIST_LOCK = threading.Lock()
_DIST_CACHE: dict[str, DistanceTable] = {}
_DIST_CACHE_MAX = 16


def distances(cosmology: Any) -> DistanceTable:
    """The distance table of ``cosmology``, built once per process and cosmology.

    Parameters
    ----------
    cosmology : astropy.cosmology.Cosmology
        Any astropy FLRW cosmology (uses ``inv_efunc``, ``H0`` and ``Ok0``).

    Returns
    -------
    DistanceTable
        Interpolating table on ``0 <= z <= Z_TABLE_MAX``.

    Notes
    -----
    D_C(z) = D_H int_0^z dz'/E(z') is integrated with Simpson's rule on a 5e-4 grid (the
    integrand is smooth), giving a relative error below 1e-6 against astropy's quadrature.
    """
    key = _cosmology_key(cosmology)
    with _DIST_LOCK:
        table = _DIST_CACHE.get(key)
    if table is not None:
        return table
    z = np.linspace(0.0, Z_TABLE_MAX, round(Z_TABLE_MAX / _Z_TABLE_STEP) + 1)
    inv_e = np.asarray(cosmology.inv_efunc(z), dtype=np.float64)
    dh = float(SPEED_OF_LIGHT_KM_S / cosmology.H0.to_value("km / (Mpc s)"))
    dc = dh * cumulative_simpson(inv_e, x=z, initial=0.0)
    table = DistanceTable(
        z=z,
        comoving=dc,
        efunc=1.0 / inv_e,
        hubble_distance=dh,
        omega_k=float(cosmology.Ok0),
        name=repr(cosmology),
    )
    for a in (table.z, table.comoving, table.efunc):
        a.setflags(write=False)
    with _DIST_LOCK:
        if len(_DIST_CACHE) >= _DIST_CACHE_MAX:
            _DIST_CACHE.pop(next(iter(_DIST_CACHE)))
        _DIST_CACHE.setdefault(key, table)
        return _DIST_CACHE[key]
