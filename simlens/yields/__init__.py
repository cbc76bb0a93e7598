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

from simlens.constants import ARCMIN2_PER_DEG2 as ARCMIN2_PER_DEG2
from simlens.constants import SR_PER_DEG2 as SR_PER_DEG2
from simlens.yields._density import LensDensity, lens_density, optical_depth, source_counts
from simlens.yields._fraction import SUMMARY_COLUMNS as SUMMARY_COLUMNS
from simlens.yields._fraction import DetectableFraction, detectable_fraction
from simlens.yields._inputs import lenspop_des_prediction, survey_area
from simlens.yields._sky import SkyDensity, sky_density

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
