"""Point-spread functions: per-image seeing draws and galsim PSF profiles.

Seeing varies from image to image: the FWHM in band ``b`` is lognormal around the preset,
``ln FWHM_b = ln(FWHM0_b) + s * (sqrt(rho) * eps_0 + sqrt(1 - rho) * eps_b)`` with one shared
``eps_0`` per image (seeing is correlated across bands: the same nights and atmosphere) and an
independent ``eps_b`` per band, all standard normal. ``s`` is the preset's ``log_scatter`` and
``rho`` its ``band_correlation``. When the preset quotes a *mean* FWHM, ``FWHM0`` is
``mean * exp(-s^2 / 2)`` so that the distribution's mean is the quoted value; for a *median*,
``FWHM0`` is the median itself. ``psf_scale`` multiplies every draw.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import galsim
import numpy as np
from numpy.typing import NDArray
from scipy.special import gamma as gamma_fn
from scipy.special import kv

from simlens.errors import SimlensValueError
from simlens.survey import PSF_PROFILES, Survey

__all__ = [
    "FWHM_TO_SIGMA",
    "galsim_psf",
    "moffat_table",
    "moffat_transfer",
    "psf_fwhm_draws",
    "psf_transfer",
    "radial_freq",
    "scale_psf_fwhm",
]

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


def scale_psf_fwhm(fwhm: NDArray[np.float64], factor: Any) -> NDArray[np.float64]:
    """The PSF-scale rule: ``psf_scale`` multiplies the FWHM of every band alike.

    ``fwhm`` (arcsec) times ``factor`` (broadcast); :func:`psf_fwhm_draws` applies a row's
    ``psf_scale`` with it, and ``Simulator.vary`` the ratio of the new ``psf_scale`` to the old.
    """
    return np.asarray(fwhm * factor, dtype=np.float64)


def psf_fwhm_draws(
    survey: Survey, psf_scale: NDArray[np.float64], rng: np.random.Generator
) -> NDArray[np.float64]:
    """Draw per-image, per-band PSF FWHM (arcsec), shape ``(n, n_bands)``.

    ``psf_scale`` (shape ``(n,)``) multiplies the draws: ``psf_scale = 2`` doubles every FWHM.
    """
    psf_scale = np.asarray(psf_scale, dtype=float)
    n = psf_scale.shape[0]
    s = survey.psf_log_scatter
    rho = survey.psf_band_correlation
    base = np.array([b.psf_fwhm for b in survey.bands])
    if survey.psf_statistic == "mean":
        base = base * math.exp(-(s**2) / 2.0)
    eps0 = rng.standard_normal((n, 1))
    epsb = rng.standard_normal((n, base.size))
    log_f = np.log(base)[None, :] + s * (math.sqrt(rho) * eps0 + math.sqrt(1.0 - rho) * epsb)
    return scale_psf_fwhm(np.exp(log_f), psf_scale[:, None])


@lru_cache(maxsize=4096)
def _galsim_psf_cached(profile: str, fwhm: float, beta: float) -> galsim.GSObject:
    if profile == "gaussian":
        return galsim.Gaussian(fwhm=fwhm)
    return galsim.Moffat(beta=beta, fwhm=fwhm)


def galsim_psf(profile: str, fwhm: float, *, beta: float = 3.0) -> galsim.GSObject:
    """A unit-flux galsim PSF of the given ``fwhm`` (arcsec): ``"gaussian"`` or ``"moffat"``."""
    if profile not in PSF_PROFILES:
        raise SimlensValueError(f"psf_profile must be one of {PSF_PROFILES}, got {profile!r}")
    if not (fwhm > 0 and math.isfinite(fwhm)):
        raise SimlensValueError(f"psf fwhm must be a positive number of arcsec, got {fwhm!r}")
    return _galsim_psf_cached(profile, float(fwhm), float(beta))


def _freq_grid(n: int) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    return fx, fy


def psf_transfer(
    profile: str, fwhm: float, n: int, pixel_scale: float, *, beta: float = 3.0
) -> NDArray[np.complex128] | NDArray[np.float64]:
    """Transfer function of the PSF on the ``rfft2`` grid of an ``n`` x ``n`` image.

    Both are analytic (no pixel response): for a Gaussian ``exp(-2 pi^2 sigma^2 f^2)`` (sigma in
    pixels, f in cycles per pixel), for a Moffat :func:`moffat_transfer`.
    """
    if profile == "gaussian":
        fx, fy = _freq_grid(n)
        sig = fwhm * FWHM_TO_SIGMA / pixel_scale
        return np.exp(-2.0 * np.pi**2 * sig**2 * (fx**2 + fy**2))
    if profile not in PSF_PROFILES:
        raise SimlensValueError(f"psf_profile must be one of {PSF_PROFILES}, got {profile!r}")
    a = fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))
    x = radial_freq(n) * (2.0 * np.pi * a / pixel_scale)
    xs, ts = moffat_table(float(beta))
    return np.interp(x, xs, ts, right=0.0)


@lru_cache(maxsize=16)
def radial_freq(n: int) -> NDArray[np.float64]:
    fx, fy = _freq_grid(n)
    f = np.hypot(fx, fy)
    f.setflags(write=False)
    return f


@lru_cache(maxsize=16)
def moffat_table(beta: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """:func:`moffat_transfer` against ``x = 2 pi f a`` on a fine grid (linear interpolation
    error < 1e-6; beyond the grid the transform is < 1e-12)."""
    a = 1.0 / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))  # fwhm = 1
    xs = np.linspace(0.0, 40.0 + 2.0 * beta, 40001)
    return xs, moffat_transfer(xs / (2.0 * np.pi * a), 1.0, beta)


def moffat_transfer(f: NDArray[np.floating], fwhm: float, beta: float) -> NDArray[np.float64]:
    """Fourier transform of a unit-flux, untruncated Moffat (galsim's ``Moffat(beta, fwhm)``)
    at spatial frequencies ``f`` (cycles per arcsec): with ``a = fwhm / (2 sqrt(2^(1/beta) -
    1))`` and ``x = 2 pi f a``, ``T = 2^(2 - beta) / Gamma(beta - 1) x^(beta - 1)
    K_(beta - 1)(x)`` (1 at f = 0). Tested against galsim's ``kValue``."""
    if not beta > 1.0:
        raise SimlensValueError(f"moffat beta must be > 1, got {beta!r}")
    a = fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))
    x = 2.0 * np.pi * np.asarray(f, dtype=np.float64) * a
    nu = beta - 1.0
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        t = 2.0 ** (1.0 - nu) / gamma_fn(nu) * x**nu * kv(nu, x)
    return np.where(x > 0, np.nan_to_num(t, nan=0.0, posinf=0.0), 1.0)
