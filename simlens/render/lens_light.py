"""Lens light in the renderer: galsim's truncated Sersic, drawn by galsim or made in k-space.

:func:`lens_spectrum` builds the PSF-convolved, pixel-integrated lens light from galsim's own
transform of the truncated Sersic (tabulated once per index and truncation ratio), ~4x faster
than galsim's real-space draw (:func:`galsim_lens`), which remains the fallback.
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

__all__ = ["galsim_lens", "lens_spectrum", "prepare_galsim_tables"]


# trunc / scale-radius ratios: galsim tabulates a truncated Sersic once per (n, ratio), which
# costs ~0.1 s, so ratios come from this short list and the tables stay cached.
_TRUNC_RATIOS = tuple(float(2 ** (k / 2)) for k in range(2, 41))


def _trunc_ratio(r0: float, reach: float, ladder: Sequence[float] = _TRUNC_RATIOS) -> float:
    """Smallest listed truncation radius, in units of ``r0``, beyond ``reach`` arcsec (0: none)."""
    for r in ladder:
        if r * r0 >= reach:
            return r
    return 0.0


def prepare_galsim_tables(
    n_sersic: float = 4.0, *, npix: int = 100, pixel_scale: float = 0.263
) -> int:
    """Build galsim's Sersic tables for every truncation ratio lens galaxies of half-light
    radius 0.05-20 arcsec can need, so later timings do not include them (~1 s, once per
    process). Returns the number of tables touched."""
    r0_factor = _hlr_factor(n_sersic)
    reach = 0.5 * math.sqrt(2.0) * (npix + 40) * pixel_scale + 1.0
    ratios = {_trunc_ratio(h / r0_factor, reach) for h in np.geomspace(0.05, 20.0, 200)}
    for r in ratios:
        galsim.Sersic(n=n_sersic, scale_radius=1.0, trunc=r).maxk  # noqa: B018 (builds table)
    return len(ratios)


@lru_cache(maxsize=64)
def _hlr_factor(n: float) -> float:
    """Half-light radius / scale radius of an untruncated Sersic of index ``n``."""
    return float(galsim.Sersic(n=n, scale_radius=1.0).calculateHLRFactor())


def galsim_lens(
    row: Any, flux: float, psf: galsim.GSObject, n: int, pixel_scale: float
) -> NDArray[np.float64]:
    """The row's lens light (total ``flux``) convolved with ``psf``, drawn by galsim on an
    ``n`` x ``n`` canvas (pixel response included)."""
    nser = float(row.n_sersic_lens_light)
    hlr = float(row.R_sersic_lens_light)
    r0 = hlr / _hlr_factor(nser)
    ratio = _trunc_ratio(r0, 0.5 * math.sqrt(2.0) * n * pixel_scale + 1.0)
    # Truncating beyond the canvas corners changes nothing on the canvas but keeps galsim's
    # FFT small; flux_untruncated keeps the magnitude the total of the untruncated profile.
    # The profile is built at unit scale radius and dilated, so galsim's Hankel table (keyed on
    # n and trunc / r0, ~0.1 s to build) is shared by every image with the same ratio.
    gal = (
        galsim.Sersic(n=nser, scale_radius=1.0, flux=flux, trunc=ratio, flux_untruncated=True)
        .dilate(r0)
        .shear(g1=float(row.e1_lens_light), g2=float(row.e2_lens_light))
    )
    # lenstronomy e1/e2 with e = (1-q)/(1+q) is galsim's reduced shear g1/g2; galsim's shear
    # conserves area, so half_light_radius is the product-average radius as in lenstronomy.
    obj = galsim.Convolve(gal, psf)
    off = (
        float(row.center_x_lens_light) / pixel_scale,
        float(row.center_y_lens_light) / pixel_scale,
    )
    return obj.drawImage(nx=n, ny=n, scale=pixel_scale, offset=off).array.astype(np.float64)


# k-space lens light (lens_spectrum): galsim's transform of the truncated Sersic, tabulated
# against kappa = r0 |A k| (unit scale radius, A the shear matrix) on a grid uniform in
# u = ln(min(kappa, kappa_s)) + max(kappa - kappa_s, 0) / kappa_s, step _U_STEP: relative steps
# of 0.5% (interpolation error ~3e-6 of the transform) up to kappa_s, where the step reaches
# an eighth of the period (2 pi / trunc) of the ringing that the truncation edge puts in the
# transform, uniform steps beyond.
_U_STEP = 0.005


@lru_cache(maxsize=128)
def _sersic_transform(
    n_sersic: float, ratio: float, hi_exp: int
) -> tuple[float, float, NDArray[np.float32]]:
    """``(u0, kappa_s, F)``: galsim's transform of a unit-scale-radius Sersic truncated at
    ``ratio`` (> 0) scale radii, unit untruncated flux, on the ``u`` grid (``F[i]`` at ``u0 +
    i _U_STEP``) from ``kappa = 1e-3 / ratio`` (flat below) to ``kappa >= 2**hi_exp``."""
    prof = galsim.Sersic(n=n_sersic, scale_radius=1.0, trunc=ratio, flux_untruncated=True)
    per = round(1.0 / _U_STEP)
    step = 2.0 * math.pi / (8.0 * ratio)  # kappa step of the uniform part
    ks = per * step
    # the logarithmic part ends exactly at kappa_s: a whole number of steps from lo
    lo = ks * math.exp(-_U_STEP * math.ceil(math.log(ks * ratio / 1e-3) / _U_STEP))
    hi = max(2.0**hi_exp, 2.0 * ks)

    def row(i0: int, i1: int, dk: float) -> NDArray[np.float64]:
        """galsim's transform at kappa = i dk, i0 <= i <= i1 (one image row along kx)."""
        img = galsim.ImageCD(galsim.BoundsI(i0, i1, 0, 0), scale=dk)
        prof._drawKImage(img)
        return np.asarray(img.array[0].real)

    # below kappa_s: galsim's values at steps of 0.25% of each decade's start, interpolated
    # onto the logarithmic grid (their own interpolation error ~1e-6)
    ln = math.log(lo) + _U_STEP * np.arange(round(math.log(ks / lo) / _U_STEP))
    kk, ff = [], []
    d = math.floor(math.log10(lo))
    while 10.0**d < ks:
        dk = 10.0**d * 0.0025
        kk.append(np.arange(400, 4001) * dk)
        ff.append(row(400, 4000, dk))
        d += 1
    f_log = np.interp(np.exp(ln), np.concatenate(kk), np.concatenate(ff))
    f_lin = row(per, math.ceil(hi / step) + 1, step)
    f = np.concatenate([f_log, f_lin]).astype(np.float32)
    f.setflags(write=False)
    return math.log(lo), ks, f


@lru_cache(maxsize=16)
def _kspace_grid(
    n: int,
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """Frequencies (cycles/pixel) fx (1, n//2+1) and fy (n, 1) of the rfft2 grid of an n x n
    canvas, and the pixel response sinc(fx) sinc(fy) there."""
    fy = np.fft.fftfreq(n)[:, None].astype(np.float32)
    fx = np.fft.rfftfreq(n)[None, :].astype(np.float32)
    box = (np.sinc(fx) * np.sinc(fy)).astype(np.float32)
    for a in (fx, fy, box):
        a.setflags(write=False)
    return fx, fy, box


def lens_spectrum(row: Any, n: int, ps: float, tf_of: Any) -> NDArray[np.complex64] | None:
    """``rfft2`` of the unit-flux lens light convolved with a PSF and the pixel response, as
    galsim draws it on an ``n`` x ``n`` canvas (:func:`galsim_lens`), made in k-space.

    The truncated, sheared Sersic's transform (galsim's, tabulated by :func:`_sersic_transform`)
    times the PSF transfer ``tf_of(N)`` (a function of the canvas size), the pixel response and
    the centre's phase is sampled on an N x N grid with N large enough that the periodic copies
    of the truncated profile fall outside the n x n canvas; it is brought to real space, cut
    to the canvas and transformed back. Two FFTs and an interpolation in place of galsim's
    real-space draw at its own (larger) FFT size: ~4x faster, same image to < 1e-4 of the peak
    (tests/simlens/test_render.py). ``None`` (then galsim draws it) where the profile reaches
    too far to be truncated, or is truncated where it is brighter than 1e-4 of its centre, or
    where the PSF is too narrow for the pixel grid's frequencies to hold the image.
    """
    nser = float(row.n_sersic_lens_light)
    hlr = float(row.R_sersic_lens_light)
    r0 = hlr / _hlr_factor(nser)
    reach = 0.5 * math.sqrt(2.0) * n * ps + 1.0
    ratio = _trunc_ratio(r0, reach)  # galsim's own tables for these ratios are shared
    # the edge's ringing is resolved only where the edge is faint (< 1e-4 of the centre)
    if ratio <= 0.0 or ratio ** (1.0 / nser) < math.log(1e4):
        return None
    cx = float(row.center_x_lens_light) / ps
    cy = float(row.center_y_lens_light) / ps
    shear = galsim.Shear(g1=float(row.e1_lens_light), g2=float(row.e2_lens_light))
    # the light ends ratio * r0 from the centre before the shear, up to sqrt((1 + g) / (1 - g))
    # times that after it; its periodic copies (period big) then stay off the canvas
    g = min(shear.g, 0.999)
    extent = ratio * r0 * math.sqrt((1.0 + g) / (1.0 - g))
    need = n / 2.0 + extent / ps + max(abs(cx), abs(cy)) + 2.0
    big = scipy.fft.next_fast_len(max(n, math.ceil(need)), real=True)
    fx, fy, box = _kspace_grid(big)
    # kappa = r0 |A k| with k = 2 pi f / ps (rad/arcsec) and galsim's shear matrix A
    a = shear.getMatrix()
    s = 2.0 * np.pi * r0 / ps
    ux = (a[0, 0] * s) * fx + (a[0, 1] * s) * fy
    uy = (a[1, 0] * s) * fx + (a[1, 1] * s) * fy
    kap = np.sqrt(ux * ux + uy * uy)
    u0, ks, ft = _sersic_transform(nser, ratio, max(math.ceil(math.log2(float(kap.max()))), -60))
    u = np.log(np.clip(kap, np.float32(math.exp(u0)), np.float32(ks)))
    u += np.maximum(kap - np.float32(ks), 0.0) * np.float32(1.0 / ks)
    t = (u - np.float32(u0)) * np.float32(1.0 / _U_STEP)
    np.clip(t, 0.0, ft.size - 1.001, out=t)
    i = t.astype(np.intp)
    t -= i
    spec = ft[i] * (1.0 - t) + ft[i + 1] * t
    tf = tf_of(big)
    # frequencies beyond the pixel grid's Nyquist are left out, not folded in (aliased) as
    # galsim does: only where the PSF and pixel leave < 5e-4 of them (sigma >~ 1.2 px; the
    # error is ~0.1 of that, in units of the peak)
    if float(tf[0, -1]) * (2.0 / math.pi) > 5e-4:
        return None
    spec *= box
    spec *= tf
    # centre of the profile on the big grid: the canvas is its [o:o+n, o:o+n] cut
    o = (big - n) // 2
    px = np.exp(-2j * np.pi * fx * (o + (n - 1) / 2.0 + cx)).astype(np.complex64)
    py = np.exp(-2j * np.pi * fy * (o + (n - 1) / 2.0 + cy)).astype(np.complex64)
    img = scipy.fft.irfft2(spec * px * py, s=(big, big))
    return scipy.fft.rfft2(img[o : o + n, o : o + n])
