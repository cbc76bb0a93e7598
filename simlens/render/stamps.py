"""Render truth rows into griz images: galsim for unlensed light, batched ray tracing for arcs.

Rendering is a pure function of a truth row and the survey: it draws no parameters, only the
noise, from the row's own ``seed``. So ``render(truth)[k] == render(truth.iloc[[k]])[0]`` bit for
bit, however rows are chunked or spread over processes.

How one image is made (per row):

1. Every component is drawn on a padded canvas (``pad`` of at least 5 PSF sigmas on each side,
   so light just outside the stamp still scatters in, and FFT wrap-around stays outside).
2. Lens light: the Sersic profile convolved with the PSF and the pixel response, made in
   k-space from galsim's transform of the truncated Sersic
   (:func:`simlens.render.lens_light.lens_spectrum`; exact, cusp included; galsim's real-space
   draw where that path declines). Gaussian PSFs are closed under convolution, so when the
   narrowest band's PSF is well sampled (sigma >=
   ``_MIN_SIGMA_PX`` = 0.9 px) the lens is drawn once at that PSF and the other bands follow
   by multiplying its Fourier transform by
   ``exp(-2 pi^2 (sigma_b^2 - sigma_min^2) f^2)``; this is exact up to aliasing of an image
   whose spectrum is already suppressed by ``exp(-2 pi^2 sigma_min^2 f^2)`` (measured: < 7e-5
   of the peak at sigma_min = 0.9 px, tested to 1e-4).
   Moffat PSFs (same beta, wider FWHM) follow the same way through the ratio of their analytic
   transforms (:func:`simlens.physics.psf.moffat_transfer`). Otherwise (a narrowest PSF sigma under
   0.9 px) galsim draws every band.
3. Lensed source: :func:`simlens.physics.lensing.lensed_source_grid` (adaptive supersampling)
   gives the pixel-integrated arc and its sub-pixel moments;
   :func:`simlens.render.fourier.source_spectrum` applies each band's PSF and the pixel response as
   if on the sub-pixel grid (on a canvas just larger
   than the patch when that is smaller than the stamp's).
4. Stars: galsim draws the PSF (with pixel response) at the star's flux.
5. Noise (``noise=True``): Gaussian with the Poisson variance of sky + object electrons and the
   read noise of ``n_exposures`` reads, in coadd counts (see :class:`simlens.survey.Survey`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import scipy.fft
from numpy.typing import NDArray

from simlens.errors import SimlensKeyError, SimlensValueError
from simlens.physics.morphology import galsim_components, pixel_components
from simlens.physics.psf import FWHM_TO_SIGMA, galsim_psf
from simlens.physics.sources import source_grid
from simlens.render.fourier import (
    add_spectra,
    band_ratios,
    draw_at,
    freq2,
    moment_spectrum,
    place,
    psf_tf,
    source_spectrum,
)
from simlens.render.lens_light import galsim_lens, lens_spectrum
from simlens.schema import absent_columns, extra_columns, flux_from_mag, required_columns
from simlens.survey import Survey

__all__ = ["canvas_size", "check_truth", "render_rows", "source_psf_scale"]

_MIN_SIGMA_PX = 0.9  # narrowest PSF sigma (pixels) for the shared lens-light draw: < 7e-5 of peak
_PAD_SIGMAS = 5.0

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


@dataclass
class _Setup:
    """What every component of one row's image shares: PSFs, fluxes, canvas, transfer functions.

    ``spec`` (per band, Fourier space) and ``real`` (per band, real space; made when first
    needed) collect the components; ``shared``: the narrowest band's PSF is well sampled, so
    galsim draws once and the other bands follow through ``ratios`` in k-space.
    """

    ps: float
    zp: float
    beta: float
    psf_profile: str
    fwhm: NDArray[np.float64]
    sig_px: NDArray[np.float64]
    f_lens: NDArray[np.float64]
    f_src: NDArray[np.float64]
    f_star: NDArray[np.float64]
    s_src: float  # the lensed source's PSF scale (source_psf_scale)
    n: int  # canvas size (pixels)
    pad: int  # stamp offset on the canvas (pixels)
    f2: NDArray[np.float32]
    tfs: list[NDArray[np.float32]]  # per-band PSF transfer functions (no pixel response)
    shared: bool
    k0: int  # the narrowest band
    ratios: list[NDArray[np.float32]]
    spec: NDArray[np.complex64]
    real: NDArray[np.float32] | None = None

    @property
    def nb(self) -> int:
        return len(self.fwhm)

    def real_planes(self) -> NDArray[np.float32]:
        """The real-space planes, made (zero) on first use."""
        if self.real is None:
            self.real = np.zeros((self.nb, self.n, self.n), dtype=np.float32)
        return self.real

    def gaussian_tfs(self, sig_px: NDArray[np.float64], f2: NDArray[np.float32]) -> list[Any]:
        """Gaussian PSF transfer functions of per-band sigmas ``sig_px`` on the grid of ``f2``."""
        return [np.exp(np.float32(-2.0 * np.pi**2 * sig_px[j] ** 2) * f2) for j in range(self.nb)]


def _setup(row: Any, survey: Survey, bands: Sequence[str], npix: int, psf_profile: str) -> _Setup:
    """PSFs, fluxes and canvas of one row (see :class:`_Setup`)."""
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
    sig_src = sig_px * s_src
    reach_px = float(max(sig_px.max(), sig_src.max() if f_src.any() else 0.0))
    n, pad = canvas_size(npix, reach_px)

    # Fourier-space contributions (single precision: errors ~1e-7 of the peak, 2x faster FFTs)
    spec = np.zeros((nb, n, n // 2 + 1), dtype=np.complex64)
    f2 = freq2(n)
    # per-band PSF transfer functions (no pixel response)
    if psf_profile == "gaussian":
        tfs = [np.exp(np.float32(-2.0 * np.pi**2 * sig_px[j] ** 2) * f2) for j in range(nb)]
    else:
        tfs = [psf_tf(psf_profile, fwhm[j], n, ps, beta) for j in range(nb)]
    # a well-sampled narrowest band: galsim draws once, the other bands follow in k-space
    shared = bool(sig_px.min() >= _MIN_SIGMA_PX)
    k0 = int(np.argmin(fwhm))
    ratios = band_ratios(tfs, k0, sig_px, f2, psf_profile) if shared else []
    return _Setup(
        ps,
        zp,
        beta,
        psf_profile,
        fwhm,
        sig_px,
        f_lens,
        f_src,
        f_star,
        s_src,
        n,
        pad,
        f2,
        tfs,
        shared,
        k0,
        ratios,
        spec,
    )


def _add_lens_light(row: Any, st: _Setup) -> None:
    """The lens galaxy's Sersic light: once in k-space for all bands, or by galsim per band."""
    nser = float(row.n_sersic_lens_light)
    if not _GALSIM_N_RANGE[0] <= nser <= _GALSIM_N_RANGE[1]:
        raise SimlensValueError(
            f"n_sersic_lens_light must be in {list(_GALSIM_N_RANGE)}, got {nser}"
        )
    ps, beta, profile, n = st.ps, st.beta, st.psf_profile, st.n
    if st.shared:
        k0 = st.k0
        if profile == "gaussian":
            s0 = st.sig_px[k0]

            def tf_of(m: int) -> NDArray[np.float32]:
                return np.exp(np.float32(-2.0 * np.pi**2 * s0**2) * freq2(m))
        else:

            def tf_of(m: int) -> NDArray[np.float32]:
                return psf_tf(profile, st.fwhm[k0], m, ps, beta)

        base_k = lens_spectrum(row, n, ps, tf_of)
        if base_k is None:  # a profile too extended to truncate: galsim draws it
            psf0 = galsim_psf(profile, st.fwhm[k0], beta=beta)
            base_k = scipy.fft.rfft2(galsim_lens(row, 1.0, psf0, n, ps).astype(np.float32))
        for j in range(st.nb):
            if st.f_lens[j] > 0:
                st.spec[j] += base_k * (np.float32(st.f_lens[j]) * st.ratios[j])
    else:
        st.real = np.zeros((st.nb, n, n), dtype=np.float32)
        for j in range(st.nb):
            if st.f_lens[j] > 0:
                psf = galsim_psf(profile, st.fwhm[j], beta=beta)
                st.real[j] += galsim_lens(row, st.f_lens[j], psf, n, ps)


def _add_lensed_source(row: Any, st: _Setup, npix: int, supersampling: int) -> None:
    """The lensed source: ray traced on the stamp grid, convolved with its own PSF."""
    ps, beta, profile, n, pad, nb = st.ps, st.beta, st.psf_profile, st.n, st.pad, st.nb
    fwhm_src, sig_src = st.fwhm * st.s_src, st.sig_px * st.s_src
    grid = source_grid(row, npix, ps, supersampling)
    m = scipy.fft.next_fast_len(max(grid.image.shape) + 2 * pad, real=True)
    if m < n:
        # a patch smaller than the canvas: convolved on its own canvas (pad on each side,
        # as the big one), then added in real space; ~4x fewer pixels to transform
        src_k = moment_spectrum(grid.moments, m, pad, pad)
        real = st.real_planes()
        if profile == "gaussian":
            tfm = st.gaussian_tfs(sig_src, freq2(m))
        else:
            tfm = [psf_tf(profile, fwhm_src[j], m, ps, beta) for j in range(nb)]
        src_spec = np.stack(
            [src_k * (np.float32(st.f_src[j]) * tfm[j]).astype(np.float32) for j in range(nb)]
        )
        src_planes = scipy.fft.irfft2(src_spec, s=(m, m), axes=(-2, -1))
        for j in range(nb):
            if st.f_src[j] > 0:
                place(real[j], src_planes[j], grid.y0, grid.x0)
        return
    src_k = source_spectrum(grid, n, pad)
    if src_k is None:
        return
    if st.s_src == 1.0:
        tf_src = st.tfs
    elif profile == "gaussian":
        tf_src = st.gaussian_tfs(sig_src, st.f2)
    else:
        tf_src = [psf_tf(profile, fwhm_src[j], n, ps, beta) for j in range(nb)]
    for j in range(nb):
        if st.f_src[j] > 0:
            st.spec[j] += src_k * (np.float32(st.f_src[j]) * tf_src[j])


def _add_galsim_components(st: _Setup, gcomps: list[Any]) -> None:
    """Components galsim draws (companion, neighbours): once if ``shared``, else per band."""
    ps, beta, profile, n = st.ps, st.beta, st.psf_profile, st.n
    if st.shared:
        k0 = st.k0
        psf0 = galsim_psf(profile, st.fwhm[k0], beta=beta)
        base = [
            (draw_at(obj, psf0, n, ps, x, y, r, st.sig_px[k0]), fl) for obj, fl, r, x, y in gcomps
        ]
        add_spectra(st.spec, base, st.ratios)
        return
    real = st.real_planes()
    for obj, fl, _r, x, y in gcomps:
        for j in range(st.nb):
            if fl[j] > 0:
                psf = galsim_psf(profile, st.fwhm[j], beta=beta)
                real[j] += fl[j] * draw_at(obj, psf, n, ps, x, y, 0.0, 0.0)


def _add_pixel_components(st: _Setup, pcomps: list[Any]) -> None:
    """Components drawn on the stamp grid without PSF (spiral disk, arc): convolved here."""
    placed = []
    for comp, fl in pcomps:
        canvas = np.zeros((st.n, st.n), dtype=np.float32)
        if place(canvas, comp.image, comp.y0 + st.pad, comp.x0 + st.pad):
            placed.append((canvas, fl))
    if placed:
        add_spectra(st.spec, placed, st.tfs)


def _add_star(row: Any, st: _Setup) -> None:
    """A star: galsim draws the PSF at the star's flux in each band."""
    ps, n = st.ps, st.n
    off = (float(row.center_x_star) / ps, float(row.center_y_star) / ps)
    real = st.real_planes()
    for j in range(st.nb):
        if st.f_star[j] > 0:
            psf = galsim_psf(st.psf_profile, st.fwhm[j], beta=st.beta).withFlux(st.f_star[j])
            real[j] += psf.drawImage(nx=n, ny=n, scale=ps, offset=off).array


def _add_noise(out: NDArray[np.float32], row: Any, survey: Survey, bands: Sequence[str]) -> None:
    """Gaussian noise (in place) with the Poisson variance of sky + object electrons, plus read
    noise, from the row's own ``seed``."""
    npix, nb = out.shape[0], out.shape[-1]
    consts = _noise_constants(survey, tuple(bands))
    rng = np.random.default_rng(int(row.seed))
    eps = rng.standard_normal((npix, npix, nb), dtype=np.float32)
    var = np.maximum(out, 0.0) * consts[0] + consts[1]
    out += np.sqrt(var) * eps


def _render_one(
    row: Any,
    survey: Survey,
    bands: Sequence[str],
    npix: int,
    noise: bool,
    psf_profile: str,
    supersampling: int,
) -> NDArray[np.float32]:
    """One row's image ``(npix, npix, n_bands)``: the steps of the module docstring in order."""
    st = _setup(row, survey, bands, npix, psf_profile)
    if st.f_lens.any():
        _add_lens_light(row, st)
    # components drawn by galsim (companion, neighbours), and pixel components drawn on the
    # stamp grid without PSF (lensed source, spiral disk, arc)
    reach = 0.5 * math.sqrt(2.0) * st.n * st.ps + 1.0
    gcomps = galsim_components(row, tuple(bands), st.zp, reach)
    if st.f_src.any():
        _add_lensed_source(row, st, npix, supersampling)
    pcomps = pixel_components(row, tuple(bands), st.zp, npix, st.ps, st.pad)
    if gcomps:
        _add_galsim_components(st, gcomps)
    if pcomps:
        _add_pixel_components(st, pcomps)
    if st.f_star.any():
        _add_star(row, st)

    n, pad = st.n, st.pad
    planes = scipy.fft.irfft2(st.spec, s=(n, n), axes=(-2, -1))
    if st.real is not None:
        planes += st.real
    crop = (slice(pad, pad + npix), slice(pad, pad + npix))
    out = np.ascontiguousarray(np.moveaxis(planes[:, crop[0], crop[1]], 0, -1), dtype=np.float32)
    if noise:
        _add_noise(out, row, survey, bands)
    return out


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
