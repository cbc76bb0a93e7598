"""Fourier-space helpers of the renderer: PSF transfer functions, the lensed source's spectrum
from its sub-pixel moments, band-to-band PSF ratios, and adding components to the spectra.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import galsim
import numpy as np
import scipy.fft
from numpy.typing import NDArray

from simlens.physics.lensing import LensedSourceGrid
from simlens.physics.psf import moffat_table, psf_transfer, radial_freq

__all__ = [
    "MOMENT_ORDER",
    "add_spectra",
    "band_ratios",
    "draw_at",
    "freq2",
    "moment_spectrum",
    "place",
    "psf_tf",
    "source_spectrum",
]

MOMENT_ORDER = 3  # sub-pixel moments of the lensed source the PSF sees (source_spectrum)


def psf_tf(profile: str, fwhm: float, n: int, ps: float, beta: float) -> NDArray[np.float32]:
    """:func:`simlens.physics.psf.psf_transfer` in float32; the Moffat's table (uniform in ``x``) is
    read by index instead of searched (~5x faster, same values to float32 rounding)."""
    if profile != "moffat":
        return psf_transfer(profile, fwhm, n, ps, beta=beta).astype(np.float32)
    xs, ts = _moffat_table_f32(float(beta))
    a = fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))
    t = _radial_freq_f32(n) * np.float32(2.0 * np.pi * a / ps / xs)
    np.minimum(t, np.float32(ts.size - 2), out=t)
    i = t.astype(np.intp)
    t -= i
    return ts[i] * (1.0 - t) + ts[i + 1] * t


@lru_cache(maxsize=16)
def _moffat_table_f32(beta: float) -> tuple[float, NDArray[np.float32]]:
    """Step and values of :func:`simlens.physics.psf.moffat_table` (float32, a 0 appended:
    beyond)."""
    xs, ts = moffat_table(beta)
    out = np.append(ts, [0.0, 0.0]).astype(np.float32)
    out.setflags(write=False)
    return float(xs[1] - xs[0]), out


@lru_cache(maxsize=16)
def _radial_freq_f32(n: int) -> NDArray[np.float32]:
    f = radial_freq(n).astype(np.float32)
    f.setflags(write=False)
    return f


def source_spectrum(
    grid: LensedSourceGrid,
    n: int,
    pad: int,
    order: int = MOMENT_ORDER,
    *,
    pixel_response: bool = True,
) -> NDArray[np.complex64] | None:
    """Fourier transform (``rfft2`` grid of an ``n`` x ``n`` canvas, stamp at ``pad``) of the
    lensed source as the PSF sees it, with the pixel response of the output pixels.

    A pixel-integrated image convolved with the PSF on the pixel grid puts every pixel's light
    at its centre: a source smaller than a pixel is then off by up to half a pixel (measured:
    13% of its peak at r_s = 0.03"). Each pixel's sub-pixel light distribution instead enters
    through its moments ``M_pq = sum I dx^p dy^q``
    (:class:`simlens.physics.lensing.LensedSourceGrid`):
    a shift ``d`` multiplies a spectrum by ``exp(-2 pi i f.d)``, so summed over the sub-samples
    ``F = sum_{p+q<=order} (-2 pi i fx)^p (-2 pi i fy)^q / (p! q!) FFT(M_pq)``, times the
    pixel response ``sinc(fx) sinc(fy)``. This equals convolving on the sub-pixel grid up to
    terms of order ``(pixel / PSF sigma)^(order+1)``. ``None`` if the patch is off the canvas.
    ``pixel_response=False`` leaves the sinc out, for a PSF image that already holds it.
    """
    return moment_spectrum(grid.moments, n, grid.y0 + pad, grid.x0 + pad, order, pixel_response)


def moment_spectrum(
    moments: NDArray[np.float64],
    n: int,
    y0: int,
    x0: int,
    order: int = MOMENT_ORDER,
    pixel_response: bool = True,
) -> NDArray[np.complex64] | None:
    """:func:`source_spectrum` of ``moments`` placed with ``[0, 0]`` at canvas pixel (y0, x0)."""
    k = (order + 1) * (order + 2) // 2
    planes = np.zeros((k, n, n), dtype=np.float32)
    i = 0
    for q in range(order + 1):
        for p in range(order + 1 - q):
            if not place(planes[i], moments[q, p], y0, x0):
                return None
            i += 1
    ks = scipy.fft.rfft2(planes, axes=(-2, -1))
    return np.einsum("kij,kij->ij", ks, _moment_factors(n, order, pixel_response))


@lru_cache(maxsize=16)
def _moment_factors(n: int, order: int, pixel_response: bool = True) -> NDArray[np.complex64]:
    """``(-2 pi i fx)^p (-2 pi i fy)^q / (p! q!) sinc(fx) sinc(fy)`` in :func:`source_spectrum`'s
    plane order."""
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    box = np.sinc(fx) * np.sinc(fy) if pixel_response else np.ones((n, n // 2 + 1))
    out = []
    for q in range(order + 1):
        for p in range(order + 1 - q):
            c = (-2j * np.pi * fx) ** p * (-2j * np.pi * fy) ** q
            out.append(c * box / (math.factorial(p) * math.factorial(q)))
    arr = np.stack(out).astype(np.complex64)
    arr.setflags(write=False)
    return arr


def band_ratios(
    tfs: Sequence[NDArray[np.float32]],
    k0: int,
    sig_px: NDArray[np.float64],
    f2: NDArray[np.float32],
    profile: str,
) -> list[NDArray[np.float32]]:
    """Transfer functions that turn band ``k0``'s PSF into each band's: ``T_j / T_k0``.

    Gaussian: ``exp(-2 pi^2 (sigma_j^2 - sigma_k0^2) f^2)`` in closed form. Moffat (same beta,
    wider FWHM): the ratio is <= 1 and smooth; where ``T_k0`` underflows the base image holds
    no power, so the ratio is set to 0 there.
    """
    if profile == "gaussian":
        d2 = sig_px**2 - sig_px[k0] ** 2
        return [np.exp(np.float32(-2.0 * np.pi**2 * d) * f2) for d in d2]
    t0 = tfs[k0]
    ok = t0 > 1e-30
    out = []
    for tf in tfs:
        r = np.zeros_like(t0)
        np.divide(tf, t0, out=r, where=ok)
        out.append(np.minimum(r, np.float32(1.0)))
    return out


def place(canvas: NDArray[np.float32], patch: NDArray[Any], y0: int, x0: int) -> bool:
    """Add ``patch`` with its ``[0, 0]`` at canvas pixel ``(y0, x0)``, clipped; False if off."""
    n = canvas.shape[0]
    h, w = patch.shape
    cy0, cx0 = max(y0, 0), max(x0, 0)
    cy1, cx1 = min(y0 + h, n), min(x0 + w, n)
    if cy1 <= cy0 or cx1 <= cx0:
        return False
    canvas[cy0:cy1, cx0:cx1] += patch[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    return True


def draw_at(
    obj: galsim.GSObject,
    psf: galsim.GSObject,
    n: int,
    ps: float,
    x: float,
    y: float,
    reach: float,
    sigma_px: float,
) -> NDArray[np.float32]:
    """``obj`` convolved with ``psf`` at ``(x, y)`` arcsec from the canvas centre, on an n x n
    canvas. With ``reach > 0`` galsim draws a small odd stamp (``reach`` + 6 PSF sigmas) that is
    added at the right place: a compact neighbour costs a small FFT, not a canvas-sized one."""
    conv = galsim.Convolve(obj, psf)
    if reach <= 0.0:
        return conv.drawImage(nx=n, ny=n, scale=ps, offset=(x / ps, y / ps)).array
    half = math.ceil(reach / ps + 6.0 * sigma_px) + 1
    s = 2 * half + 1
    if s >= n:
        return conv.drawImage(nx=n, ny=n, scale=ps, offset=(x / ps, y / ps)).array
    cc = (n - 1) / 2.0
    px, py = cc + x / ps, cc + y / ps
    ix, iy = round(px), round(py)
    sub = conv.drawImage(nx=s, ny=s, scale=ps, offset=(px - ix, py - iy)).array
    out = np.zeros((n, n), dtype=np.float32)
    place(out, sub, iy - half, ix - half)
    return out


def add_spectra(
    spec: NDArray[np.complex64],
    comps: list[tuple[NDArray[Any], NDArray[np.float64]]],
    tfs: Sequence[NDArray[Any]],
) -> None:
    """``spec[j] += FFT(sum_c flux_cj image_c) * tf_j``: one FFT per component when there is
    one, else the bands are combined in real space first (one FFT per band)."""
    nb = spec.shape[0]
    if len(comps) == 1:
        img, fl = comps[0]
        k = scipy.fft.rfft2(img.astype(np.float32, copy=False))
        for j in range(nb):
            if fl[j] > 0:
                spec[j] += k * (np.float32(fl[j]) * tfs[j])
        return
    for j in range(nb):
        if any(fl[j] > 0 for _, fl in comps):
            plane = sum(np.float32(fl[j]) * img for img, fl in comps if fl[j] > 0)
            spec[j] += scipy.fft.rfft2(np.asarray(plane, dtype=np.float32)) * tfs[j]


@lru_cache(maxsize=64)
def freq2(n: int) -> NDArray[np.float32]:
    """Squared frequency (cycles/pixel)^2 on the rfft2 grid of an n x n image."""
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    f2 = (fx**2 + fy**2).astype(np.float32)
    f2.setflags(write=False)
    return f2
