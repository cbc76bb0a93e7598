"""Render truth rows into griz images: galsim for unlensed light, batched ray tracing for arcs.

Rendering is a pure function of a truth row and the survey: it draws no parameters, only the
noise, from the row's own ``seed``. So ``render(truth)[k] == render(truth.iloc[[k]])[0]`` bit for
bit, however rows are chunked or spread over processes.

How one image is made (per row):

1. Every component is drawn on a padded canvas (``pad`` of at least 5 PSF sigmas on each side,
   so light just outside the stamp still scatters in, and FFT wrap-around stays outside).
2. Lens light: the Sersic profile convolved with the PSF and the pixel response, made in
   k-space from galsim's transform of the truncated Sersic (:func:`_lens_spectrum`; exact, cusp
   included; galsim's real-space draw where that path declines). Gaussian PSFs are closed
   under convolution, so when the narrowest band's PSF is well sampled (sigma >=
   ``_MIN_SIGMA_PX`` = 0.9 px) the lens is drawn once at that PSF and the other bands follow
   by multiplying its Fourier transform by
   ``exp(-2 pi^2 (sigma_b^2 - sigma_min^2) f^2)``; this is exact up to aliasing of an image
   whose spectrum is already suppressed by ``exp(-2 pi^2 sigma_min^2 f^2)`` (measured: < 7e-5
   of the peak at sigma_min = 0.9 px, tested to 1e-4).
   Moffat PSFs (same beta, wider FWHM) follow the same way through the ratio of their analytic
   transforms (:func:`simlens.physics.psf.moffat_transfer`). Otherwise (a narrowest PSF sigma under
   0.9 px) galsim draws every band.
3. Lensed source: :func:`simlens.physics.lensing.lensed_source_grid` (adaptive supersampling)
   gives the pixel-integrated arc and its sub-pixel moments; :func:`source_spectrum` applies
   each band's PSF and the pixel response as if on the sub-pixel grid (on a canvas just larger
   than the patch when that is smaller than the stamp's).
4. Stars: galsim draws the PSF (with pixel response) at the star's flux.
5. Noise (``noise=True``): Gaussian with the Poisson variance of sky + object electrons and the
   read noise of ``n_exposures`` reads, in coadd counts (see :class:`simlens.survey.Survey`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import galsim
import numpy as np
import pandas as pd
import scipy.fft
from numpy.typing import NDArray

from simlens.errors import SimlensKeyError, SimlensValueError
from simlens.physics.lensing import LensedSourceGrid
from simlens.physics.morphology import galsim_components, pixel_components
from simlens.physics.psf import FWHM_TO_SIGMA, galsim_psf, moffat_table, psf_transfer, radial_freq
from simlens.physics.sources import source_grid
from simlens.schema import absent_columns, extra_columns, flux_from_mag, required_columns
from simlens.survey import Survey

__all__ = ["canvas_size", "render_rows", "source_psf_scale", "source_spectrum"]

_MIN_SIGMA_PX = 0.9  # narrowest PSF sigma (pixels) for the shared lens-light draw: < 7e-5 of peak
_PAD_SIGMAS = 5.0
_MOMENT_ORDER = 3  # sub-pixel moments of the lensed source the PSF sees (source_spectrum)

# Sersic indices galsim can draw
_GALSIM_N_RANGE = (0.3, 6.2)


def _flux(mag: float, zero_point: float) -> float:
    return flux_from_mag(mag, zero_point)


def canvas_size(npix: int, max_sigma_px: float) -> tuple[int, int]:
    pad = math.ceil(_PAD_SIGMAS * max_sigma_px) + 2
    n = scipy.fft.next_fast_len(npix + 2 * pad, real=True)
    while (n - npix) % 2:  # keep the stamp centred on the canvas centre
        n = scipy.fft.next_fast_len(n + 1, real=True)
    return n, (n - npix) // 2


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


def _galsim_lens(
    row: Any, flux: float, psf: galsim.GSObject, n: int, pixel_scale: float
) -> NDArray[np.float64]:
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


# k-space lens light (_lens_spectrum): galsim's transform of the truncated Sersic, tabulated
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


def _lens_spectrum(row: Any, n: int, ps: float, tf_of: Any) -> NDArray[np.complex64] | None:
    """``rfft2`` of the unit-flux lens light convolved with a PSF and the pixel response, as
    galsim draws it on an ``n`` x ``n`` canvas (:func:`_galsim_lens`), made in k-space.

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


def _psf_tf(profile: str, fwhm: float, n: int, ps: float, beta: float) -> NDArray[np.float32]:
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


def _render_one(
    row: Any,
    survey: Survey,
    bands: Sequence[str],
    npix: int,
    noise: bool,
    psf_profile: str,
    supersampling: int,
) -> NDArray[np.float32]:
    ps = survey.pixel_scale
    zp = survey.zero_point
    beta = survey.moffat_beta
    nb = len(bands)
    fwhm = np.array([float(getattr(row, f"psf_fwhm_{b}")) for b in bands])
    sig_px = fwhm * FWHM_TO_SIGMA / ps

    f_lens = np.array([_flux(float(getattr(row, f"mag_lens_{b}")), zp) for b in bands])
    f_src = np.array([_flux(float(getattr(row, f"mag_source_unlensed_{b}")), zp) for b in bands])
    f_star = np.array([_flux(float(getattr(row, f"mag_star_{b}")), zp) for b in bands])
    # the lensed source's own PSF (optional column; absent or NaN: the row's PSF)
    s_src = source_psf_scale(row)
    fwhm_src, sig_src = fwhm * s_src, sig_px * s_src
    reach_px = float(max(sig_px.max(), sig_src.max() if f_src.any() else 0.0))
    n, pad = canvas_size(npix, reach_px)
    crop = (slice(pad, pad + npix), slice(pad, pad + npix))

    # Fourier-space contributions (single precision: errors ~1e-7 of the peak, 2x faster FFTs)
    spec = np.zeros((nb, n, n // 2 + 1), dtype=np.complex64)
    real: NDArray[np.float32] | None = None  # real-space contributions, made when needed
    f2 = _freq2(n)
    # per-band PSF transfer functions (no pixel response)
    if psf_profile == "gaussian":
        tfs = [np.exp(np.float32(-2.0 * np.pi**2 * sig_px[j] ** 2) * f2) for j in range(nb)]
    else:
        tfs = [_psf_tf(psf_profile, fwhm[j], n, ps, beta) for j in range(nb)]
    # a well-sampled narrowest band: galsim draws once, the other bands follow in k-space
    shared = sig_px.min() >= _MIN_SIGMA_PX
    k0 = int(np.argmin(fwhm))
    ratios = _band_ratios(tfs, k0, sig_px, f2, psf_profile) if shared else []

    if f_lens.any():
        nser = float(row.n_sersic_lens_light)
        if not _GALSIM_N_RANGE[0] <= nser <= _GALSIM_N_RANGE[1]:
            raise SimlensValueError(
                f"n_sersic_lens_light must be in {list(_GALSIM_N_RANGE)}, got {nser}"
            )
        if shared:
            if psf_profile == "gaussian":
                s0 = sig_px[k0]

                def tf_of(m: int) -> NDArray[np.float32]:
                    return np.exp(np.float32(-2.0 * np.pi**2 * s0**2) * _freq2(m))
            else:

                def tf_of(m: int) -> NDArray[np.float32]:
                    return _psf_tf(psf_profile, fwhm[k0], m, ps, beta)

            base_k = _lens_spectrum(row, n, ps, tf_of)
            if base_k is None:  # a profile too extended to truncate: galsim draws it
                psf0 = galsim_psf(psf_profile, fwhm[k0], beta=beta)
                base_k = scipy.fft.rfft2(_galsim_lens(row, 1.0, psf0, n, ps).astype(np.float32))
            for j in range(nb):
                if f_lens[j] > 0:
                    spec[j] += base_k * (np.float32(f_lens[j]) * ratios[j])
        else:
            real = np.zeros((nb, n, n), dtype=np.float32)
            for j in range(nb):
                if f_lens[j] > 0:
                    psf = galsim_psf(psf_profile, fwhm[j], beta=beta)
                    real[j] += _galsim_lens(row, f_lens[j], psf, n, ps)

    # components drawn by galsim (companion, neighbours), and pixel components drawn on the
    # stamp grid without PSF (lensed source, spiral disk, arc)
    reach = 0.5 * math.sqrt(2.0) * n * ps + 1.0
    gcomps = galsim_components(row, tuple(bands), zp, reach)
    if f_src.any():
        grid = source_grid(row, npix, ps, supersampling)
        m = scipy.fft.next_fast_len(max(grid.image.shape) + 2 * pad, real=True)
        if m < n:
            # a patch smaller than the canvas: convolved on its own canvas (pad on each side,
            # as the big one), then added in real space; ~4x fewer pixels to transform
            src_k = _moment_spectrum(grid.moments, m, pad, pad)
            if real is None:
                real = np.zeros((nb, n, n), dtype=np.float32)
            if psf_profile == "gaussian":
                fm = _freq2(m)
                tfm = [
                    np.exp(np.float32(-2.0 * np.pi**2 * sig_src[j] ** 2) * fm) for j in range(nb)
                ]
            else:
                tfm = [_psf_tf(psf_profile, fwhm_src[j], m, ps, beta) for j in range(nb)]
            src_spec = np.stack(
                [src_k * (np.float32(f_src[j]) * tfm[j]).astype(np.float32) for j in range(nb)]
            )
            src_planes = scipy.fft.irfft2(src_spec, s=(m, m), axes=(-2, -1))
            for j in range(nb):
                if f_src[j] > 0:
                    _place(real[j], src_planes[j], grid.y0, grid.x0)
        else:
            src_k = source_spectrum(grid, n, pad)
            if src_k is not None:
                if s_src == 1.0:
                    tf_src = tfs
                elif psf_profile == "gaussian":
                    tf_src = [
                        np.exp(np.float32(-2.0 * np.pi**2 * sig_src[j] ** 2) * f2)
                        for j in range(nb)
                    ]
                else:
                    tf_src = [_psf_tf(psf_profile, fwhm_src[j], n, ps, beta) for j in range(nb)]
                for j in range(nb):
                    if f_src[j] > 0:
                        spec[j] += src_k * (np.float32(f_src[j]) * tf_src[j])
    pcomps = pixel_components(row, tuple(bands), zp, npix, ps, pad)

    if gcomps:
        if shared:
            psf0 = galsim_psf(psf_profile, fwhm[k0], beta=beta)
            base = [
                (_draw_at(obj, psf0, n, ps, x, y, r, sig_px[k0]), fl) for obj, fl, r, x, y in gcomps
            ]
            _add_spectra(spec, base, ratios)
        else:
            if real is None:
                real = np.zeros((nb, n, n), dtype=np.float32)
            for obj, fl, _r, x, y in gcomps:
                for j in range(nb):
                    if fl[j] > 0:
                        psf = galsim_psf(psf_profile, fwhm[j], beta=beta)
                        real[j] += fl[j] * _draw_at(obj, psf, n, ps, x, y, 0.0, 0.0)

    if pcomps:
        placed = []
        for comp, fl in pcomps:
            canvas = np.zeros((n, n), dtype=np.float32)
            if _place(canvas, comp.image, comp.y0 + pad, comp.x0 + pad):
                placed.append((canvas, fl))
        if placed:
            _add_spectra(spec, placed, tfs)

    if f_star.any():
        off = (float(row.center_x_star) / ps, float(row.center_y_star) / ps)
        if real is None:
            real = np.zeros((nb, n, n), dtype=np.float32)
        for j in range(nb):
            if f_star[j] > 0:
                psf = galsim_psf(psf_profile, fwhm[j], beta=beta).withFlux(f_star[j])
                real[j] += psf.drawImage(nx=n, ny=n, scale=ps, offset=off).array

    planes = scipy.fft.irfft2(spec, s=(n, n), axes=(-2, -1))
    if real is not None:
        planes += real
    out = np.ascontiguousarray(np.moveaxis(planes[:, crop[0], crop[1]], 0, -1), dtype=np.float32)

    if noise:
        # Gaussian with the Poisson variance of sky + object electrons, plus read noise
        consts = _noise_constants(survey, tuple(bands))
        rng = np.random.default_rng(int(row.seed))
        eps = rng.standard_normal((npix, npix, nb), dtype=np.float32)
        var = np.maximum(out, 0.0) * consts[0] + consts[1]
        out += np.sqrt(var) * eps
    return out


def source_spectrum(
    grid: LensedSourceGrid,
    n: int,
    pad: int,
    order: int = _MOMENT_ORDER,
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
    return _moment_spectrum(grid.moments, n, grid.y0 + pad, grid.x0 + pad, order, pixel_response)


def _moment_spectrum(
    moments: NDArray[np.float64],
    n: int,
    y0: int,
    x0: int,
    order: int = _MOMENT_ORDER,
    pixel_response: bool = True,
) -> NDArray[np.complex64] | None:
    """:func:`source_spectrum` of ``moments`` placed with ``[0, 0]`` at canvas pixel (y0, x0)."""
    k = (order + 1) * (order + 2) // 2
    planes = np.zeros((k, n, n), dtype=np.float32)
    i = 0
    for q in range(order + 1):
        for p in range(order + 1 - q):
            if not _place(planes[i], moments[q, p], y0, x0):
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


def _band_ratios(
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


def _place(canvas: NDArray[np.float32], patch: NDArray[Any], y0: int, x0: int) -> bool:
    """Add ``patch`` with its ``[0, 0]`` at canvas pixel ``(y0, x0)``, clipped; False if off."""
    n = canvas.shape[0]
    h, w = patch.shape
    cy0, cx0 = max(y0, 0), max(x0, 0)
    cy1, cx1 = min(y0 + h, n), min(x0 + w, n)
    if cy1 <= cy0 or cx1 <= cx0:
        return False
    canvas[cy0:cy1, cx0:cx1] += patch[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    return True


def _draw_at(
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
    _place(out, sub, iy - half, ix - half)
    return out


def _add_spectra(
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
def _freq2(n: int) -> NDArray[np.float32]:
    """Squared frequency (cycles/pixel)^2 on the rfft2 grid of an n x n image."""
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    f2 = (fx**2 + fy**2).astype(np.float32)
    f2.setflags(write=False)
    return f2


@lru_cache(maxsize=16)
def _noise_constants(
    survey: Survey, bands: tuple[str, ...]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Per band: 1 / electrons_per_count and the background variance (counts^2)."""
    inv_epc = np.array([1.0 / survey.electrons_per_count(b) for b in bands], dtype=np.float32)
    bkg = np.array([survey.background_sigma(b) ** 2 for b in bands], dtype=np.float32)
    return inv_epc, bkg


def check_truth(truth: pd.DataFrame, bands: Sequence[str]) -> None:
    """Raise if ``truth`` lacks a column :func:`render_rows` needs or holds NaN/inf."""
    if not isinstance(truth, pd.DataFrame):
        raise SimlensValueError(f"truth must be a pandas DataFrame, got {type(truth).__name__}")
    missing = [c for c in required_columns(bands) if c not in truth.columns]
    if missing:
        raise SimlensKeyError(f"truth is missing column(s) needed to render: {', '.join(missing)}")
    for c in required_columns(bands):
        v = truth[c].to_numpy()
        if c.startswith("mag_") and v.dtype.kind == "f":
            v = np.where(np.isnan(v), 0.0, v)  # NaN magnitude: no light in that component
        if v.dtype.kind in "fc" and not np.all(np.isfinite(v)):
            bad = int(np.flatnonzero(~np.isfinite(v))[0])
            raise SimlensValueError(f"truth column {c!r} is NaN or infinite at row {bad}")
    fw = truth[[f"psf_fwhm_{b}" for b in bands]].to_numpy(dtype=float)
    if np.any(fw <= 0):
        raise SimlensValueError("truth psf_fwhm_<band> must be > 0 arcsec")


def source_psf_scale(row: Any) -> float:
    """The lensed source's PSF FWHM over the row's (``psf_scale_source``; 1 when absent or NaN).

    The "real-galaxy" PSF test (Jacobs et al., section 4.2): lens and neighbours keep the PSF
    of ``psf_fwhm_<band>`` and only the lensed source is convolved with ``psf_scale_source``
    times it.
    """
    v = float(getattr(row, "psf_scale_source", 1.0))
    if not math.isfinite(v):
        return 1.0
    if v <= 0.0:
        raise SimlensValueError(f"psf_scale_source must be > 0 (or NaN: unused), got {v}")
    return v


def render_rows(
    truth: pd.DataFrame,
    survey: Survey,
    *,
    npix: int,
    noise: bool = True,
    psf_profile: str | None = None,
    supersampling: int = 3,
) -> NDArray[np.float32]:
    """Render every row of ``truth`` into a float32 ``(n, npix, npix, n_bands)`` array (counts).

    ``psf_profile`` overrides the survey's (``"gaussian"`` or ``"moffat"``). ``supersampling``
    is the refined sub-pixel grid of the lensed source (see
    :func:`simlens.physics.lensing.lensed_source_grid`).
    """
    bands = survey.band_names
    missing = [c for c in extra_columns(bands) if c not in getattr(truth, "columns", ())]
    if missing and isinstance(
        truth, pd.DataFrame
    ):  # tables written before these components existed: those components are absent
        truth = truth.assign(
            **{c: v for c, v in absent_columns(len(truth), bands).items() if c in missing}
        )
    check_truth(truth, bands)
    profile = psf_profile or survey.psf_profile
    out = np.empty((len(truth), npix, npix, len(bands)), dtype=np.float32)
    for k, row in enumerate(truth.itertuples(index=False)):
        out[k] = _render_one(row, survey, bands, npix, noise, profile, supersampling)
    return out
