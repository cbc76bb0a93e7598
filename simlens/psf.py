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

import galsim
import numpy as np
from numpy.typing import NDArray

from .errors import SimlensValueError
from .survey import PSF_PROFILES, Survey

__all__ = ["FWHM_TO_SIGMA", "galsim_psf", "psf_fwhm_draws", "psf_transfer"]

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


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
    return np.asarray(np.exp(log_f) * psf_scale[:, None], dtype=np.float64)


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

    For a Gaussian it is analytic, ``exp(-2 pi^2 sigma^2 f^2)`` (sigma in pixels, f in cycles per
    pixel). For a Moffat galsim draws the PSF (no pixel response: the image it multiplies is
    already pixel-integrated) centred on pixel ``(n/2, n/2)`` and the transform is taken.
    """
    if profile == "gaussian":
        fx, fy = _freq_grid(n)
        sig = fwhm * FWHM_TO_SIGMA / pixel_scale
        return np.exp(-2.0 * np.pi**2 * sig**2 * (fx**2 + fy**2))
    psf = galsim_psf(profile, fwhm, beta=beta)
    # galsim's true centre of an even image is between pixels; shift it onto pixel n/2
    off = 0.5 if n % 2 == 0 else 0.0
    img = psf.drawImage(nx=n, ny=n, scale=pixel_scale, method="no_pixel", offset=(off, off))
    return np.fft.rfft2(np.fft.ifftshift(img.array.astype(np.float64)))
